// digits: the "Inside the network" panel. For the current drawing it shows what every layer
// computed: the 28×28 input the network read, each hidden layer's neurons as a grid of squares
// lit by how active they are, and the ten outputs. It follows the readings through the events
// app.js announces ('digits:reading' after every answer, live ones too; 'digits:cleared' after an
// erase) and draws the `activations` that POST /api/predict returns (docs/api.md).
'use strict';

(() => {
  const CELL = 12;  // backing pixels per neuron square, a 2-pixel gap included
  const GAP = 2;
  const ORDINALS = ['first', 'second', 'third', 'fourth', 'fifth', 'sixth'];

  // ---- the panel's frame, built here so index.html needs only the <script> ----

  const panel = document.createElement('details');
  panel.id = 'inside';
  panel.className = 'card inside';
  panel.dataset.state = 'empty';
  panel.innerHTML =
    '<summary><span class="inside-title">Inside the network</span>' +
    '<span class="inside-summary muted">what each layer computes for your drawing</span></summary>' +
    '<p class="inside-intro">Your drawing flows through the layers in turn. Every neuron adds up the values of the layer before it, ' +
    'each multiplied by a weight it learned in training, and passes the sum on if it is positive. ' +
    '<strong>Brighter squares are more active neurons.</strong></p>' +
    '<div class="inside-layers" id="inside-layers"></div>' +
    '<p class="inside-status muted" id="inside-status" aria-live="off">Draw a digit to see the network at work.</p>';
  const layout = document.querySelector('main.layout');
  layout.after(panel);
  // Open beside a large drawing area; folded on a phone, where the pad and the answer come first.
  panel.open = window.matchMedia('(min-width: 761px)').matches;

  // Enter on the focused heading opens or folds the panel, as on any <summary>; without this the
  // page's own Enter (read the drawing) would take it.
  panel.querySelector('summary').addEventListener('keydown', (event) => {
    if (event.key === 'Enter') event.stopPropagation();
  });

  const layersBox = panel.querySelector('#inside-layers');
  const statusLine = panel.querySelector('#inside-status');
  let blocks = [];     // one per drawn layer: { kind, element, canvas?, cells?, caption, columns, rows, units, values }
  let shapeKey = '';   // the layer sizes the blocks were built for

  // ---- colours: dark for silent, brighter and warmer for more active ----

  // Stops of a perceptual ramp after matplotlib's "inferno", from 0 to 1. Silent is a dim gray a
  // step above the card's background, so the grid of neurons shows even when few are active.
  const RAMP = [[42, 48, 64], [80, 30, 120], [165, 45, 105], [240, 110, 60], [252, 230, 140]];
  const NEGATIVE = [90, 140, 255];  // for activations below zero (tanh): a blue

  function rampColour(t) {
    if (t < 0) {
      const f = Math.min(1, -t);
      return RAMP[0].map((c, i) => Math.round(c + (NEGATIVE[i] - c) * f));
    }
    const position = Math.min(1, t) * (RAMP.length - 1);
    const below = Math.min(RAMP.length - 2, Math.floor(position));
    const f = position - below;
    return RAMP[below].map((c, i) => Math.round(c + (RAMP[below + 1][i] - c) * f));
  }
  const css = ([r, g, b]) => `rgb(${r}, ${g}, ${b})`;

  // A grid for n neurons: as square as the count allows, wider than tall, with no empty squares
  // when n has a divisor near its square root (256 → 16×16, 128 → 16×8, 50 → 10×5).
  function gridShape(units) {
    const root = Math.sqrt(units);
    for (let columns = Math.ceil(root); columns <= Math.floor(2 * root); columns++) {
      if (units % columns === 0) return { columns, rows: units / columns };
    }
    const columns = Math.ceil(root);
    return { columns, rows: Math.ceil(units / columns) };
  }

  // ---- building the blocks for a network's shape ----

  function describeHidden(index, units, hiddenCount) {
    const which = hiddenCount === 1 ? 'the hidden layer' : `the ${ORDINALS[index] || `#${index + 1}`} hidden layer`;
    const what = index === 0 ? 'Each one looks for its own pattern of ink among the pixels.'
                             : 'They read the layer before, not the pixels: patterns of patterns.';
    return `Each square is one of the ${units} neurons of ${which}; brighter = more active. ${what}`;
  }

  function makeBlock(kind, heading, size, caption) {
    const element = document.createElement('figure');
    element.className = `inside-layer inside-${kind}`;
    element.dataset.layer = heading;
    element.innerHTML = '<div class="inside-heading"><span class="inside-name"></span><span class="inside-size muted"></span></div>' +
      '<div class="inside-picture"></div><figcaption></figcaption>';
    element.querySelector('.inside-name').textContent = heading;
    element.querySelector('.inside-size').textContent = size;
    element.querySelector('figcaption').textContent = caption;
    layersBox.append(element);
    return element;
  }

  function build(sizes) {
    layersBox.replaceChildren();
    blocks = [];
    // The input: the 28×28 image the network read.
    const input = makeBlock('input', 'Input', '784 pixels',
      'Your drawing as the network reads it: cropped, scaled into 20 × 20 and centred in 28 × 28, like the digits it learned from.');
    const inputCanvas = document.createElement('canvas');
    inputCanvas.width = 28;
    inputCanvas.height = 28;
    inputCanvas.setAttribute('role', 'img');
    inputCanvas.setAttribute('aria-label', 'The 28 by 28 pixel input');
    input.querySelector('.inside-picture').append(inputCanvas);
    blocks.push({ kind: 'input', element: input, canvas: inputCanvas });

    // The hidden layers: a grid of neurons each.
    const hiddenCount = sizes.length - 1;
    sizes.slice(0, -1).forEach((units, index) => {
      const { columns, rows } = gridShape(units);
      const block = makeBlock('hidden', `Hidden layer ${index + 1}`, `${units} neurons`, describeHidden(index, units, hiddenCount));
      const canvas = document.createElement('canvas');
      canvas.width = columns * CELL - GAP;
      canvas.height = rows * CELL - GAP;
      canvas.setAttribute('role', 'img');
      canvas.setAttribute('aria-label', `The ${units} neurons of hidden layer ${index + 1}, lit by their activity`);
      block.querySelector('.inside-picture').append(canvas);
      const entry = { kind: 'hidden', element: block, canvas, columns, rows, units, values: null, index };
      canvas.addEventListener('mousemove', (event) => showNeuron(entry, event));
      blocks.push(entry);
    });

    // The output: one square per digit.
    const classes = sizes[sizes.length - 1];
    const output = makeBlock('output', 'Output', `${classes} neurons, one per digit`,
      'Softmax turns the ten sums into probabilities that add up to 100%. The brightest is the answer.');
    const list = document.createElement('ol');
    list.className = 'inside-digits';
    list.setAttribute('aria-label', 'The output neurons');
    const cells = [];
    for (let digit = 0; digit < classes; digit++) {
      const item = document.createElement('li');
      item.innerHTML = '<span class="inside-digit"></span><span class="inside-percent"></span>';
      item.querySelector('.inside-digit').textContent = digit;
      list.append(item);
      cells.push(item);
    }
    output.querySelector('.inside-picture').append(list);
    blocks.push({ kind: 'output', element: output, cells });
    clear();
  }

  // The tooltip of a neuron square: its number and value.
  function showNeuron(entry, event) {
    if (!entry.values) {
      entry.canvas.title = '';
      return;
    }
    const box = entry.canvas.getBoundingClientRect();
    const column = Math.floor(((event.clientX - box.left) / box.width) * entry.columns);
    const row = Math.floor(((event.clientY - box.top) / box.height) * entry.rows);
    const neuron = row * entry.columns + column;
    entry.canvas.title = neuron >= 0 && neuron < entry.values.length
      ? `neuron ${neuron + 1} of hidden layer ${entry.index + 1}: ${entry.values[neuron].toFixed(2)}` : '';
  }

  // ---- drawing a reading ----

  function paintInput(canvas, input) {
    const context = canvas.getContext('2d');
    context.fillStyle = '#000';
    context.fillRect(0, 0, canvas.width, canvas.height);
    if (!input) return;
    const image = context.createImageData(input.width, input.height);
    input.pixels.forEach((v, i) => image.data.set([v, v, v, 255], 4 * i));
    context.putImageData(image, 0, 0);
  }

  // Each neuron's square, lit by its value over the layer's largest (so the pattern shows at any
  // scale); all dark when values is null.
  function paintGrid(entry, values) {
    const context = entry.canvas.getContext('2d');
    context.clearRect(0, 0, entry.canvas.width, entry.canvas.height);
    let largest = 0;
    if (values) for (const v of values) largest = Math.max(largest, Math.abs(v));
    for (let n = 0; n < entry.units; n++) {
      const t = values && largest > 0 ? values[n] / largest : 0;
      context.fillStyle = css(rampColour(t));
      context.fillRect((n % entry.columns) * CELL, Math.floor(n / entry.columns) * CELL, CELL - GAP, CELL - GAP);
    }
  }

  function paintOutput(cells, probabilities) {
    const top = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
    cells.forEach((cell, digit) => {
      const p = probabilities ? probabilities[digit] : 0;
      const colour = rampColour(p);
      cell.style.backgroundColor = css(colour);
      cell.style.color = p > 0.45 ? '#111' : '';
      cell.classList.toggle('top', digit === top);
      const shown = !probabilities ? '' : p >= 0.9995 ? '100%' : p < 0.0005 ? '0%' : `${(100 * p).toFixed(p < 0.1 ? 1 : 0)}%`;
      cell.querySelector('.inside-percent').textContent = shown;
      cell.setAttribute('aria-label', probabilities ? `${digit}: ${shown}` : `${digit}: no reading`);
    });
  }

  function captionFor(entry, layer) {
    const active = layer.values.filter((v) => v > 0).length;
    const base = describeHidden(entry.index, entry.units, blocks.filter((b) => b.kind === 'hidden').length);
    return layer.function === 'relu'
      ? `${base} Now ${active} of ${entry.units} are active; the rest summed to less than zero and pass on 0 (ReLU).`
      : base;
  }

  function show(reading) {
    const layers = reading.activations;
    if (!Array.isArray(layers) || layers.length < 1) return;
    const sizes = layers.map((layer) => layer.values.length);
    const key = sizes.join('-');
    if (key !== shapeKey) {
      shapeKey = key;
      build(sizes);
    }
    for (const entry of blocks) {
      if (entry.kind === 'input') paintInput(entry.canvas, reading.input);
      if (entry.kind === 'hidden') {
        const layer = layers[entry.index];
        entry.values = layer.values;
        paintGrid(entry, layer.values);
        entry.element.querySelector('figcaption').textContent = captionFor(entry, layer);
      }
      if (entry.kind === 'output') paintOutput(entry.cells, layers[layers.length - 1].values);
    }
    panel.dataset.state = 'reading';
    statusLine.textContent = `The network reads a ${reading.digit}: follow it from the pixels to the answer.`;
  }

  function clear() {
    for (const entry of blocks) {
      if (entry.kind === 'input') paintInput(entry.canvas, null);
      if (entry.kind === 'hidden') {
        entry.values = null;
        paintGrid(entry, null);
        entry.element.querySelector('figcaption').textContent =
          describeHidden(entry.index, entry.units, blocks.filter((b) => b.kind === 'hidden').length);
      }
      if (entry.kind === 'output') paintOutput(entry.cells, null);
    }
    panel.dataset.state = 'empty';
    statusLine.textContent = 'Draw a digit to see the network at work.';
  }

  document.addEventListener('digits:reading', (event) => show(event.detail.reading));
  document.addEventListener('digits:cleared', clear);

  // Draw the empty layers from the model's shape before the first reading.
  fetch('/api/model')
    .then((response) => response.json())
    .then((model) => {
      if (shapeKey || !Array.isArray(model.layers)) return;  // a reading came first and built them
      shapeKey = model.layers.slice(1).join('-');
      build(model.layers.slice(1));
    })
    .catch(() => {});  // without it the panel is built by the first reading
})();
