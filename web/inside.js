// digits: the "Inside the network" panel. For the current drawing it shows what every layer
// computed: the 28×28 input the network read, each hidden layer's neurons as a grid of squares
// lit by how active they are, and the ten outputs. For a convolutional network also the first
// convolution's learned kernels (from GET /api/model) and each conv and pooling layer's maps, one
// small grey picture per channel. It follows the readings through the events
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

  const intro = panel.querySelector('.inside-intro');
  const INTRO = intro.innerHTML;
  const CONV_INTRO = ' A <strong>convolution</strong> slides small kernels it learned over the image: each makes one map, ' +
    'a grey picture that is bright where its pattern is.';
  const layersBox = panel.querySelector('#inside-layers');
  const statusLine = panel.querySelector('#inside-status');
  let blocks = [];     // one per drawn layer: { kind, element, canvas?, cells?, caption, columns, rows, units, values }
  let shapeKey = '';   // the layers the blocks were built for
  let kernels = null;  // the first convolution's kernels from GET /api/model, or null

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

  function describeDense(units) {
    return `Each square is one of the ${units} neurons of this dense layer; brighter = more active. Every one reads all the maps before it: whole shapes, not strokes.`;
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

  // A network's layers as the panel draws them, from a reading's `activations` or from GET
  // /api/model: { kind: 'dense', units } or { kind: 'conv2d' | 'maxpool2', shape: [C, H, W] }; the
  // last is the output.
  function layoutOfReading(layers) {
    return layers.map((layer) => (Array.isArray(layer.shape)
      ? { kind: layer.kind === 'maxpool2' ? 'maxpool2' : 'conv2d', shape: layer.shape }
      : { kind: 'dense', units: layer.values.length }));
  }
  function layoutOfModel(model) {
    if (!Array.isArray(model.network)) return model.layers.slice(1).map((units) => ({ kind: 'dense', units }));
    // A batch norm is drawn with the layer before it (the reading gives their output as one entry).
    return model.network.filter((layer) => layer.kind !== 'flatten' && layer.kind !== 'batchnorm').map((layer) => (layer.kind === 'dense'
      ? { kind: 'dense', units: layer.output[0] } : { kind: layer.kind, shape: layer.output }));
  }
  const layoutKey = (layout) => layout.map((l) => (l.shape ? `${l.kind}:${l.shape.join('x')}` : `${l.units}`)).join('-');

  // One canvas of `count` tiles, each width × height, in a grid with a gap between them: the maps
  // of a layer or the kernels of a convolution, one small picture each.
  function makeTiles(block, count, width, height, label) {
    const { columns, rows } = gridShape(count);
    const gap = Math.max(1, Math.round(width / 8));
    const canvas = document.createElement('canvas');
    canvas.width = columns * (width + gap) - gap;
    canvas.height = rows * (height + gap) - gap;
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', label);
    Object.assign(canvas.dataset, { tiles: count, columns, tileWidth: width, tileHeight: height, gap });  // for the browser test
    block.querySelector('.inside-picture').append(canvas);
    return { canvas, columns, rows, gap, width, height, count };
  }

  function makeMaps(layout, index, convNumber, poolNumber) {
    const layer = layout[index];
    const [channels, height, width] = layer.shape;
    const size = `${channels} maps of ${height} × ${width}`;
    const conv = layer.kind === 'conv2d';
    const heading = conv ? `Convolution ${convNumber}` : `Max pooling ${poolNumber}`;
    const block = makeBlock('maps', heading, size, describeMaps(layer, index));
    if (channels > 16) block.classList.add('inside-wide');  // two columns, so each picture stays visible
    const entry = { kind: 'maps', element: block, layer, index, heading, bytes: null,
      ...makeTiles(block, channels, width, height, `The ${size} of ${heading.toLowerCase()}, one grey picture per channel`) };
    entry.canvas.addEventListener('mousemove', (event) => showMap(entry, event));
    return entry;
  }

  function describeMaps(layer, index) {
    const channels = layer.shape[0];
    if (layer.kind === 'maxpool2') {
      return `The maps before, half the size: each pixel keeps the largest of a 2 × 2 block, so a pattern found a pixel to the side counts the same.`;
    }
    return index === 0
      ? `Each of the ${channels} filters slides a small kernel it learned over your drawing; its picture is bright where the kernel's pattern is.`
      : `Each of the ${channels} filters reads all the maps before it at once: bright where a pattern of patterns is.`;
  }

  function build(layout) {
    layersBox.replaceChildren();
    blocks = [];
    const hasMaps = layout.some((layer) => layer.shape);
    intro.innerHTML = hasMaps ? INTRO + CONV_INTRO : INTRO;
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

    // A first convolution's kernels: what it learned, the same for every drawing.
    if (layout[0].kind === 'conv2d') {
      const block = makeBlock('kernels', 'Kernels of convolution 1', `${layout[0].shape[0]} learned patterns`,
        'The weights each filter of the first convolution learned: light where it wants ink, dark where it wants none, grey for weights near 0.');
      blocks.push({ kind: 'kernels', element: block, tiles: null });
    }

    // The hidden layers: maps for a conv or pooling layer, a grid of neurons for a dense one.
    const hiddenCount = layout.length - 1;
    let convs = 0;
    let pools = 0;
    let denses = 0;
    layout.slice(0, -1).forEach((layer, index) => {
      if (layer.shape) {
        if (layer.kind === 'conv2d') convs++; else pools++;
        blocks.push(makeMaps(layout, index, convs, pools));
        return;
      }
      const units = layer.units;
      const { columns, rows } = gridShape(units);
      denses++;
      const heading = hasMaps ? `Dense layer ${denses}` : `Hidden layer ${index + 1}`;
      const block = makeBlock('hidden', heading, `${units} neurons`,
        hasMaps ? describeDense(units) : describeHidden(index, units, hiddenCount));
      const canvas = document.createElement('canvas');
      canvas.width = columns * CELL - GAP;
      canvas.height = rows * CELL - GAP;
      canvas.setAttribute('role', 'img');
      canvas.setAttribute('aria-label', `The ${units} neurons of ${heading.toLowerCase()}, lit by their activity`);
      block.querySelector('.inside-picture').append(canvas);
      const entry = { kind: 'hidden', element: block, canvas, columns, rows, units, values: null, index, heading, hasMaps };
      canvas.addEventListener('mousemove', (event) => showNeuron(entry, event));
      blocks.push(entry);
    });

    // The output: one square per digit, and a wide one labelled "none" for a model with "not a
    // digit" (an eleventh output).
    const classes = layout[layout.length - 1].units;
    const withNone = classes === 11;
    const output = withNone
      ? makeBlock('output', 'Output', '11 neurons: one per digit, one for "not a digit"',
        'Softmax turns the eleven sums into probabilities that add up to 100%. The brightest is the answer: a digit, or "none" when the drawing does not look like one.')
      : makeBlock('output', 'Output', `${classes} neurons, one per digit`,
        'Softmax turns the ten sums into probabilities that add up to 100%. The brightest is the answer.');
    const list = document.createElement('ol');
    list.className = 'inside-digits';
    list.setAttribute('aria-label', 'The output neurons');
    const cells = [];
    for (let digit = 0; digit < classes; digit++) {
      const item = document.createElement('li');
      item.innerHTML = '<span class="inside-digit"></span><span class="inside-percent"></span>';
      const none = withNone && digit === 10;
      item.querySelector('.inside-digit').textContent = none ? 'none' : digit;
      item.dataset.label = none ? 'not a digit' : String(digit);
      item.classList.toggle('inside-none', none);
      list.append(item);
      cells.push(item);
    }
    output.querySelector('.inside-picture').append(list);
    blocks.push({ kind: 'output', element: output, cells });
    paintKernels();
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
      ? `neuron ${neuron + 1} of ${entry.heading.toLowerCase()}: ${entry.values[neuron].toFixed(2)}` : '';
  }

  // Which tile of a tiled canvas the mouse is over, or -1.
  function tileAt(tiles, event) {
    const box = tiles.canvas.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.width) * tiles.canvas.width;
    const y = ((event.clientY - box.top) / box.height) * tiles.canvas.height;
    const column = Math.floor(x / (tiles.width + tiles.gap));
    const row = Math.floor(y / (tiles.height + tiles.gap));
    const tile = row * tiles.columns + column;
    return column < tiles.columns && tile >= 0 && tile < tiles.count ? tile : -1;
  }

  // The tooltip of a map: its channel and its largest value.
  function showMap(entry, event) {
    const tile = entry.bytes ? tileAt(entry, event) : -1;
    if (tile < 0) {
      entry.canvas.title = '';
      return;
    }
    const size = entry.width * entry.height;
    let largest = 0;
    for (let i = tile * size; i < (tile + 1) * size; i++) largest = Math.max(largest, entry.bytes[i]);
    const value = entry.low + (largest / 255) * (entry.high - entry.low);
    entry.canvas.title = `map ${tile + 1} of ${entry.heading.toLowerCase()}: largest value ${value.toFixed(2)}`;
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

  // Draws tile t from values[t·w·h …] as grey levels 0–255; every tile dim when values is null.
  function paintTiles(tiles, grey) {
    const context = tiles.canvas.getContext('2d');
    context.clearRect(0, 0, tiles.canvas.width, tiles.canvas.height);
    const size = tiles.width * tiles.height;
    for (let t = 0; t < tiles.count; t++) {
      const x = (t % tiles.columns) * (tiles.width + tiles.gap);
      const y = Math.floor(t / tiles.columns) * (tiles.height + tiles.gap);
      if (!grey) {
        context.fillStyle = css(RAMP[0]);
        context.fillRect(x, y, tiles.width, tiles.height);
        continue;
      }
      const image = context.createImageData(tiles.width, tiles.height);
      for (let i = 0; i < size; i++) {
        const v = grey(t * size + i);
        image.data.set([v, v, v, 255], 4 * i);
      }
      context.putImageData(image, x, y);
    }
  }

  // A map layer's bytes (base64 in the reading; 0 = its smallest value, 255 = its largest).
  function decodeMaps(layer) {
    if (typeof layer.maps !== 'string') return null;
    const text = atob(layer.maps);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }

  function paintMaps(entry, layer) {
    entry.bytes = layer ? decodeMaps(layer) : null;
    entry.low = layer ? layer.low : 0;
    entry.high = layer ? layer.high : 0;
    const bytes = entry.bytes;
    paintTiles(entry, bytes ? (i) => bytes[i] : null);
    const caption = entry.element.querySelector('figcaption');
    caption.textContent = describeMaps(entry.layer, entry.index);
    if (!layer) return;
    if (!bytes) {
      caption.textContent += ' (Too many values to send with every reading: not shown.)';
      return;
    }
    const size = entry.width * entry.height;
    let lit = 0;
    for (let t = 0; t < entry.count; t++) {
      for (let i = t * size; i < (t + 1) * size; i++) {
        if (bytes[i] > 0) {
          lit++;
          break;
        }
      }
    }
    caption.textContent += ` Now ${lit} of ${entry.count} light up somewhere.`;
  }

  // The first convolution's kernels, grey 128 for a weight of 0, lighter for positive weights,
  // darker for negative, scaled by the largest weight of them all.
  function paintKernels() {
    const entry = blocks.find((b) => b.kind === 'kernels');
    if (!entry || !kernels) return;
    const [count, channels, height, width] = kernels.shape;
    if (!entry.tiles) {
      entry.tiles = makeTiles(entry.element, count, width, height, `The ${count} kernels of the first convolution, ${height} × ${width} weights each`);
      entry.element.querySelector('.inside-size').textContent = `${kernels.count} learned patterns of ${height} × ${width}` +
        (count < kernels.count ? ` (the first ${count} shown)` : '');
    }
    let largest = 0;
    for (const w of kernels.values) largest = Math.max(largest, Math.abs(w));
    const size = channels * height * width;  // a kernel's weights; the first channel's are drawn
    paintTiles(entry.tiles, (i) => {
      const t = Math.floor(i / (height * width));
      const w = kernels.values[t * size + (i % (height * width))];
      return Math.round(128 + (largest > 0 ? (127 * w) / largest : 0));
    });
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
      const label = cell.dataset.label;
      cell.setAttribute('aria-label', probabilities ? `${label}: ${shown}` : `${label}: no reading`);
    });
  }

  function captionFor(entry, layer) {
    const active = layer.values.filter((v) => v > 0).length;
    const base = hiddenCaption(entry);
    return layer.function === 'relu'
      ? `${base} Now ${active} of ${entry.units} are active; the rest summed to less than zero and pass on 0 (ReLU).`
      : base;
  }

  // The page asks for the layers' outputs only while the panel is open (app.js, `activations` in
  // docs/api.md). A reading without them, made while it was folded, empties it; opening it then
  // has the drawing read again, with them.
  let lacking = false;  // the last reading came without the layers' outputs
  panel.addEventListener('toggle', () => {
    if (panel.open && lacking) document.dispatchEvent(new CustomEvent('digits:activations-wanted'));
  });

  // `which` names the digit of a number shown (number.js: the one under the pointer), or is absent.
  function show(reading, which) {
    const layers = reading.activations;
    lacking = !Array.isArray(layers);
    if (lacking) {
      if (panel.dataset.state === 'reading') clear();
      lacking = true;  // clear() forgets it: there is a drawing to read again
      return;
    }
    if (layers.length < 1) return;
    const layout = layoutOfReading(layers);
    const key = layoutKey(layout);
    if (key !== shapeKey) {
      shapeKey = key;
      build(layout);
    }
    for (const entry of blocks) {
      if (entry.kind === 'input') paintInput(entry.canvas, reading.input);
      if (entry.kind === 'hidden') {
        const layer = layers[entry.index];
        entry.values = layer.values;
        paintGrid(entry, layer.values);
        entry.element.querySelector('figcaption').textContent = captionFor(entry, layer);
      }
      if (entry.kind === 'maps') paintMaps(entry, layers[entry.index]);
      if (entry.kind === 'output') paintOutput(entry.cells, layers[layers.length - 1].values);
    }
    panel.dataset.state = 'reading';
    statusLine.textContent = reading.not_a_digit
      ? 'The network reads no digit here ("none"): follow it from the pixels to the answer.'
      : which
      ? `The network reads ${which} of your number as a ${reading.digit}: follow it from the pixels to the answer. Point at another digit to see it.`
      : `The network reads a ${reading.digit}: follow it from the pixels to the answer.`;
  }

  function hiddenCaption(entry) {
    return entry.hasMaps ? describeDense(entry.units) : describeHidden(entry.index, entry.units, blocks.filter((b) => b.kind === 'hidden').length);
  }

  function clear() {
    lacking = false;
    for (const entry of blocks) {
      if (entry.kind === 'input') paintInput(entry.canvas, null);
      if (entry.kind === 'hidden') {
        entry.values = null;
        paintGrid(entry, null);
        entry.element.querySelector('figcaption').textContent = hiddenCaption(entry);
      }
      if (entry.kind === 'maps') paintMaps(entry, null);
      if (entry.kind === 'output') paintOutput(entry.cells, null);
    }
    panel.dataset.state = 'empty';
    statusLine.textContent = 'Draw a digit to see the network at work.';
  }

  document.addEventListener('digits:reading', (event) => show(event.detail.reading));
  document.addEventListener('digits:digit-selected', (event) => show(event.detail.reading, event.detail.label));
  document.addEventListener('digits:cleared', clear);

  // Draw the empty layers from the model's shape before the first reading, and the first
  // convolution's kernels; again after the model has learned (its kernels moved).
  function describeModel() {
    fetch('/api/model')
      .then((response) => response.json())
      .then((model) => {
        kernels = model.kernels && Array.isArray(model.kernels.shape) ? model.kernels : null;
        if (!Array.isArray(model.layers)) return;
        const layout = layoutOfModel(model);
        if (!shapeKey) {  // else a reading came first and built them
          shapeKey = layoutKey(layout);
          build(layout);
        }
        paintKernels();
      })
      .catch(() => {});  // without it the panel is built by the first reading
  }
  describeModel();
  document.addEventListener('digits:model-changed', describeModel);
})();
