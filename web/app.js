// digits: the drawing page. Strokes are kept as lists of points in units of the pad's height, so
// the pad can be redrawn at any size or pixel density, and the drawing sent to the server is
// rendered afresh 280 pixels tall (white on black, like MNIST) rather than resampled from the
// screen. For one digit the pad is square; for a number (number.js) it is `aspect` times as wide
// and the drawing goes to /api/read instead of /api/predict.
'use strict';

const SEND_SIZE = 280;        // pixels of the PNG's height (and width, for one digit) sent to the server
const PEN_WIDTH = 0.065;      // pen diameter as a fraction of the pad's height (18 px at 280)
const LIVE_INTERVAL_MS = 250; // while drawing, at most one live reading this often

const pad = document.getElementById('pad');
const padHint = document.getElementById('pad-hint');
const seen = document.getElementById('seen');
const result = document.getElementById('result');
const digitOut = document.getElementById('digit');
const statusOut = document.getElementById('status');
const bars = document.getElementById('bars');
const tellButton = document.getElementById('tell');
const eraseButton = document.getElementById('erase');

const strokes = [];        // each an array of {x, y}: y in [0, 1], x in [0, aspect]
let activeStroke = null;   // the stroke under the pointer, if one is being drawn
let activePointer = null;
let unsureBelow = 0.7;     // replaced by the server's rule from /api/model
let aspect = 1;            // the pad's width over its height: 1 for a digit, wider for a number
let mode = 'digit';        // 'digit' (POST /api/predict) or 'number' (POST /api/read), set by number.js

// ---- the pad ----

function padContext() {
  const context = pad.getContext('2d');
  const side = pad.clientHeight;
  const scale = pad.height / Math.max(side, 1);
  context.setTransform(scale, 0, 0, scale, 0, 0);  // draw in CSS pixels, render at device pixels
  return { context, side };
}

// Sizes the pad's backing store to its on-screen size times the device's pixel ratio, so strokes
// are sharp on high-DPI screens, then redraws every stroke.
function fitPad() {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(pad.clientWidth * ratio));
  const height = Math.max(1, Math.round(pad.clientHeight * ratio));
  if (pad.width !== width || pad.height !== height) {
    pad.width = width;
    pad.height = height;
  }
  redraw();
}

function paintStrokes(context, side, list) {
  context.fillStyle = '#000';
  context.fillRect(0, 0, side * aspect, side);
  context.strokeStyle = '#fff';
  context.fillStyle = '#fff';
  context.lineCap = 'round';
  context.lineJoin = 'round';
  context.lineWidth = PEN_WIDTH * side;
  for (const stroke of list) paintStroke(context, side, stroke);
}

// A smooth curve through the points: quadratic Béziers from midpoint to midpoint, with each
// sampled point as the control point. A single tap is a dot.
function paintStroke(context, side, stroke) {
  if (stroke.length === 0) return;
  const at = (p) => [p.x * side, p.y * side];
  if (stroke.length === 1) {
    const [x, y] = at(stroke[0]);
    context.beginPath();
    context.arc(x, y, (PEN_WIDTH * side) / 2, 0, 2 * Math.PI);
    context.fill();
    return;
  }
  context.beginPath();
  let [x0, y0] = at(stroke[0]);
  context.moveTo(x0, y0);
  for (let i = 1; i < stroke.length - 1; i++) {
    const [x1, y1] = at(stroke[i]);
    const [x2, y2] = at(stroke[i + 1]);
    context.quadraticCurveTo(x1, y1, (x1 + x2) / 2, (y1 + y2) / 2);
  }
  const [xn, yn] = at(stroke[stroke.length - 1]);
  context.lineTo(xn, yn);
  context.stroke();
}

function redraw() {
  const { context, side } = padContext();
  paintStrokes(context, side, strokes);
  padHint.classList.toggle('hidden', strokes.length > 0);
}

function pointFrom(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: Math.min(aspect, Math.max(0, (event.clientX - box.left) / box.height)),
    y: Math.min(1, Math.max(0, (event.clientY - box.top) / box.height)),
  };
}

pad.addEventListener('pointerdown', (event) => {
  if (activeStroke || (event.pointerType === 'mouse' && event.button !== 0)) return;
  event.preventDefault();
  // Take focus from a button clicked earlier, so Enter then reads the drawing instead of
  // pressing that button again (Erase, say).
  pad.focus({ preventScroll: true });
  pad.setPointerCapture(event.pointerId);
  activePointer = event.pointerId;
  activeStroke = [pointFrom(event)];
  strokes.push(activeStroke);
  redraw();
  scheduleLiveReading();
});

pad.addEventListener('pointermove', (event) => {
  if (event.pointerId !== activePointer || !activeStroke) return;
  event.preventDefault();
  // Coalesced events carry every sample the device made since the last frame: smoother curves.
  const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const sample of samples.length ? samples : [event]) activeStroke.push(pointFrom(sample));
  redraw();
  scheduleLiveReading();
});

function endStroke(event) {
  if (event.pointerId !== activePointer) return;
  activeStroke = null;
  activePointer = null;
  readDrawing({ announce: true });
}
pad.addEventListener('pointerup', endStroke);
pad.addEventListener('pointercancel', endStroke);

new ResizeObserver(fitPad).observe(pad);
window.matchMedia(`(resolution: ${window.devicePixelRatio}dppx)`).addEventListener?.('change', fitPad);

// ---- reading the drawing ----

// The drawing as the server should see it: strokes rendered SEND_SIZE tall, white on black.
function drawingAsPng() {
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(SEND_SIZE * aspect);
  canvas.height = SEND_SIZE;
  paintStrokes(canvas.getContext('2d'), SEND_SIZE, strokes);
  return canvas.toDataURL('image/png');
}

let requestNumber = 0;     // the newest reading asked for; older answers are dropped
let inFlight = false;
let liveTimer = null;
let lastLiveAt = 0;

function scheduleLiveReading() {
  if (liveTimer) return;
  const wait = Math.max(0, LIVE_INTERVAL_MS - (performance.now() - lastLiveAt));
  liveTimer = setTimeout(() => {
    liveTimer = null;
    if (inFlight) return scheduleLiveReading();  // one live request at a time
    lastLiveAt = performance.now();
    readDrawing({ announce: false });
  }, wait);
}

// Every layer's output comes with a reading only while "Inside the network" (inside.js) is open
// to draw it (`activations`, docs/api.md): for the built-in model it is 95% of the answer's bytes
// and a fifth of the server's work. Opened later, the panel asks for the drawing to be read again.
function wantsActivations() {
  const inside = document.getElementById('inside');
  return !inside || inside.open;
}

async function readDrawing({ announce }) {
  // An announced reading covers the whole drawing: a live one still pending from the last stroke
  // would answer after it and leave its sentence unsaid.
  if (announce) {
    clearTimeout(liveTimer);
    liveTimer = null;
  }
  if (strokes.length === 0) {
    showNothing(`There is nothing to read yet. Draw ${mode === 'number' ? 'a number' : 'a digit'} first.`);
    return;
  }
  const number = ++requestNumber;
  inFlight = true;
  try {
    const drawing = drawingAsPng();
    const response = await fetch(mode === 'number' ? '/api/read' : '/api/predict', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(mode === 'number' ? { image: drawing } : { image: drawing, activations: wantsActivations() }),
    });
    const body = await response.json().catch(() => ({}));
    if (number !== requestNumber) return;  // the drawing has changed since this was asked
    if (response.ok && Array.isArray(body.digits)) {
      showNumber(body, announce, drawing);
    } else if (response.ok) {
      showReading(body, announce, drawing);
    } else if (body.error && body.error.code === 'empty_drawing') {
      showNothing('There is nothing to read: the drawing is too faint or empty.');
    } else {
      showError(body.error ? body.error.message : `The server answered ${response.status}.`);
    }
  } catch (error) {
    if (number === requestNumber) showError('Cannot reach the digits server. Is it still running?');
  } finally {
    inFlight = false;
  }
}

// ---- showing the result ----

// One bar per digit; a model with "not a digit" (an eleventh output, docs/api.md) adds one more,
// labelled "none".
function buildBars(withNone) {
  bars.replaceChildren();
  bars.classList.toggle('with-none', withNone);
  const labels = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  if (withNone) labels.push('none');
  for (const label of labels) {
    const item = document.createElement('li');
    item.innerHTML =
      `<span class="label">${label}</span>` +
      '<span class="track" aria-hidden="true"><span class="fill"></span></span>' +
      '<span class="value">–</span>';
    item.dataset.label = label;
    item.classList.toggle('none', label === 'none');
    item.setAttribute('aria-label', `${spoken(label)}: no reading`);
    bars.append(item);
  }
}

const spoken = (label) => (label === 'none' ? 'not a digit' : label);

function percent(p) {
  const value = 100 * p;
  return value >= 99.95 ? '100%' : value < 0.05 ? '0%' : `${value.toFixed(value < 10 ? 1 : 0)}%`;
}

// probabilities: one per bar (the ten digits', then "not a digit"'s when there is that bar), or null.
function setBars(probabilities) {
  const top = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
  [...bars.children].forEach((item, index) => {
    const p = probabilities ? probabilities[index] : 0;
    const label = spoken(item.dataset.label);
    item.querySelector('.fill').style.width = `${(100 * p).toFixed(1)}%`;
    item.querySelector('.value').textContent = probabilities ? percent(p) : '–';
    item.classList.toggle('top', index === top);
    item.setAttribute('aria-label', probabilities ? `${label}: ${percent(p)}` : `${label}: no reading`);
  });
}

// A reading's bars: the ten digits', and "not a digit"'s when the model has that output.
function readingBars(reading) {
  const withNone = reading.not_a_digit_probability != null;
  if (withNone !== bars.classList.contains('with-none')) buildBars(withNone);
  return withNone ? [...reading.probabilities, reading.not_a_digit_probability] : reading.probabilities;
}

function setSeen(input) {
  const context = seen.getContext('2d');
  context.fillStyle = '#000';
  context.fillRect(0, 0, seen.width, seen.height);
  if (!input) return;
  const image = context.createImageData(input.width, input.height);
  input.pixels.forEach((v, i) => {
    image.data.set([v, v, v, 255], 4 * i);
  });
  context.putImageData(image, 0, 0);
}

function setState(state, digitText, message, announce) {
  result.dataset.state = state;
  digitOut.textContent = digitText;
  // The status line is the live region: while drawing it stays put, so a screen reader hears one
  // sentence per finished stroke or button press, not one every quarter second.
  if (announce || !['confident', 'unsure', 'not-digit'].includes(state)) statusOut.textContent = message;
}

// Other parts of the page (feedback.js, inside.js) follow the readings through these events
// rather than through this file: 'digits:reading' carries { reading, announce, drawing } after
// every answer (live ones too), 'digits:cleared' follows an erase or an empty drawing. The other
// way, 'digits:model-changed' (from feedback.js) makes this file read the drawing again.
function announceToPage(name, detail) {
  document.dispatchEvent(new CustomEvent(name, { detail }));
}

function showReading(reading, announce, drawing) {
  announceToPage('digits:reading', { reading, announce, drawing });
  const sure = percent(reading.probability);
  setBars(readingBars(reading));
  setSeen(reading.input);
  if (reading.not_a_digit) {
    // A model with "not a digit" found it more probable than every digit: said in words.
    setState('not-digit', 'not a digit',
      `That does not look like a digit. (${sure} sure) Draw one digit, 0 to 9.`, announce);
  } else if (reading.unsure) {
    setState('unsure', `${reading.digit}?`,
      `Not sure. It might be a ${reading.digit} (${sure}), but that is below ${percent(unsureBelow)}. Try drawing it larger or more clearly.`, announce);
  } else {
    setState('confident', String(reading.digit), `It is a ${reading.digit}. (${sure} sure)`, announce);
  }
}

// A number read by /api/read: the digits in the big answer; the bars and the 28×28 picture follow
// the digit number.js selects ('digits:digit-selected', below), which also draws each digit's box.
function showNumber(number, announce, drawing) {
  announceToPage('digits:number', { reading: number, announce, drawing, height: SEND_SIZE });
  const count = number.digits.length;
  if (count === 0) {
    setBars(null);
    setSeen(null);
    setState('nothing', '–', 'No digits found: only marks too small or too flat to be digits. Draw the number larger.', true);
    return;
  }
  const least = number.digits.reduce((a, b) => (b.probability < a.probability ? b : a));
  const which = count === 1 ? 'it' : `the least sure, a ${least.digit},`;
  const digits = `${count} digit${count === 1 ? '' : 's'}`;
  if (number.digits.some((d) => d.unsure)) {
    setState('unsure', `${number.text}?`,
      `Not sure. It might be ${number.text} (${digits}), but ${which} is ${percent(least.probability)}, below ${percent(unsureBelow)}. ` +
      'Try drawing that digit larger or more clearly.', announce);
  } else {
    setState('confident', number.text, `It is ${number.text}: ${digits}, ${which} ${percent(least.probability)} sure.`, announce);
  }
}

document.addEventListener('digits:digit-selected', (event) => {
  setBars(event.detail.reading.probabilities);
  setSeen(event.detail.reading.input);
});

// number.js switches between one digit and a number: the pad's shape, and where drawings go. A
// drawing that no longer fits the narrower pad is erased; any other is read again.
document.addEventListener('digits:mode', (event) => {
  mode = event.detail.mode;
  aspect = event.detail.aspect;
  result.dataset.mode = mode;
  fitPad();
  if (strokes.some((stroke) => stroke.some((point) => point.x > aspect))) {
    erase();
  } else if (strokes.length > 0) {
    readDrawing({ announce: true });
  } else {
    showNothing(`Draw ${mode === 'number' ? 'a number' : 'a digit'}, then press Tell the Number.`);
    result.dataset.state = 'empty';
  }
});

function showNothing(message) {
  announceToPage('digits:cleared', {});
  setBars(null);
  setSeen(null);
  setState('nothing', '–', message, true);
}

function showError(message) {
  setState('error', '!', message, true);
}

function erase() {
  strokes.length = 0;
  activeStroke = null;
  activePointer = null;
  requestNumber++;  // any answer still on its way is for the erased drawing
  clearTimeout(liveTimer);
  liveTimer = null;
  redraw();
  announceToPage('digits:cleared', {});
  setBars(null);
  setSeen(null);
  setState('empty', '–', `Erased. Draw ${mode === 'number' ? 'a number' : 'a digit'}, then press Tell the Number.`, true);
}

tellButton.addEventListener('click', () => readDrawing({ announce: true }));
// The server swapped in a model that has learned from a correction (feedback.js): read the drawing
// again, so the answer on screen is the new model's.
document.addEventListener('digits:model-changed', () => {
  if (strokes.length > 0 && !activeStroke) readDrawing({ announce: true });
});
// "Inside the network" was opened after a reading without the layers' outputs (inside.js).
document.addEventListener('digits:activations-wanted', () => {
  if (strokes.length > 0 && !activeStroke) readDrawing({ announce: false });
});
eraseButton.addEventListener('click', erase);

document.addEventListener('keydown', (event) => {
  // Typing in a field (number.js's "which number did you draw?") is not a command to the pad.
  if (event.altKey || event.ctrlKey || event.metaKey || event.target instanceof HTMLInputElement) return;
  // A focused button already acts on Enter; do not act twice.
  if (event.key === 'Enter' && !(event.target instanceof HTMLButtonElement)) {
    event.preventDefault();
    readDrawing({ announce: true });
  } else if (event.key === 'Escape') {
    event.preventDefault();
    erase();
  }
});

// ---- the model's description, for the footer ----

// "784–50–20–10" for a dense network; its layers, "conv5x5x16, pool2, … fc10", for any other.
function describeLayers(model) {
  const dense = !Array.isArray(model.network) || model.network.every((layer) => layer.kind === 'dense');
  return dense ? model.layers.join('–') : model.architecture.split(',').filter((layer) => layer !== 'flatten').join(', ');
}

async function describeModel() {
  try {
    const model = await (await fetch('/api/model')).json();
    unsureBelow = model.unsure_below ?? unsureBelow;
    // A model with "not a digit" has eleven outputs: its bar is there before the first reading.
    const withNone = Array.isArray(model.layers) && model.layers[model.layers.length - 1] === 11;
    if (withNone !== bars.classList.contains('with-none') && result.dataset.state === 'empty') {
      buildBars(withNone);
      setBars(null);
    }
    document.getElementById('unsure-percent').textContent = Math.round(100 * unsureBelow);
    const accuracy = model.accuracy && model.accuracy.test_percent !== undefined
      ? ` · ${model.accuracy.test_percent}% right on the 10,000 MNIST test digits` : '';
    document.getElementById('model-info').textContent =
      `Network ${describeLayers(model)} (${model.hidden_activation}), ` +
      `${model.parameters.toLocaleString('en')} weights${accuracy} · ${model.source}.`;
  } catch (error) {
    // The footer keeps its default text; drawing and reading still work.
  }
}

buildBars(false);
setBars(null);
fitPad();
setSeen(null);
describeModel();
