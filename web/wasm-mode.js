// digits: the page without a server (docs/app.md, "Without a server"). scripts/build-web puts this
// file in a static folder beside digits.js + digits.wasm (the library's preprocessing and network,
// compiled to WebAssembly from src/web_wasm) and model.safetensors, and loads it before app.js.
// It answers the page's own API inside the page, so app.js, inside.js and feedback.js run as
// they do against `digits serve`:
//   GET  /api/model     the model as the C++ describes it (the same code as the server's)
//   POST /api/predict   the drawing's pixels → preprocess → the network, in WebAssembly
//   POST /api/read      the drawing's pixels → every digit, left to right (read_number), in WebAssembly
//   POST /api/feedback  Right or Wrong, kept in this browser (IndexedDB), never sent anywhere
// and adds a line under the answer with a button that downloads the kept judgements as a file
// `digits improve --feedback FILE` learns from (docs/feedback.md, "The page's export").
// Served by `digits serve` the page never loads this file: the server answers, and learns.
'use strict';

(() => {
  const MODEL_FILE = 'model.safetensors';
  const DATABASE = 'digits';        // IndexedDB: one database, one store of judgements
  const STORE = 'judgements';
  const EXPORT_FORMAT = 'digits-feedback';
  const networkFetch = window.fetch.bind(window);

  // ---- the network, in WebAssembly ----

  // The module, with the model loaded into it; every answer below waits for it.
  const ready = (async () => {
    const wasm = await createDigits();  // digits.js, from src/web_wasm
    const response = await networkFetch(MODEL_FILE);
    if (!response.ok) throw new Error(`${MODEL_FILE}: the host answered ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const ok = withBuffer(wasm, bytes, (at) => withString(wasm, MODEL_FILE, (name) => wasm._digits_load_model(at, bytes.length, name)));
    if (!ok) throw new Error(wasm.UTF8ToString(wasm._digits_error()));
    return { wasm, model: JSON.parse(wasm.UTF8ToString(wasm._digits_model_json())) };
  })();

  // Copies bytes into the module's memory for the length of one call.
  function withBuffer(wasm, bytes, call) {
    const at = wasm._malloc(bytes.length);
    try {
      wasm.HEAPU8.set(bytes, at);
      return call(at);
    } finally {
      wasm._free(at);
    }
  }

  function withString(wasm, text, call) {
    const size = wasm.lengthBytesUTF8(text) + 1;
    const at = wasm._malloc(size);
    try {
      wasm.stringToUTF8(text, at, size);
      return call(at);
    } finally {
      wasm._free(at);
    }
  }

  // A PNG data URL (what app.js sends the server) → its RGBA pixels, decoded by the browser. PNG
  // is lossless and the page's drawings are opaque, so these are the bytes `digits predict` decodes
  // from the same file. Decoded from the text itself: fetch('data:…') would show as a request.
  async function pixelsOf(dataUrl) {
    const comma = dataUrl.indexOf(',');
    if (!dataUrl.startsWith('data:image/') || comma < 0) throw new RangeError('"image" is not a data URL of an image');
    const text = atob(dataUrl.slice(comma + 1));
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    const bitmap = await createImageBitmap(new Blob([bytes]), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    const canvas = document.createElement('canvas');
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    const context = canvas.getContext('2d', { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0);
    bitmap.close();
    return context.getImageData(0, 0, canvas.width, canvas.height);
  }

  // One reading: POST /api/predict's answer, or null when there is nothing to read. `milliseconds`
  // is the whole of it (decoding the PNG included, as the server's is); `wasm_milliseconds` the
  // WebAssembly call alone: preprocessing, the network, and the answer written as JSON.
  // `whole`: read every digit of a number (digits_read_number, POST /api/read's answer) instead;
  // `activations`: every layer's output in the answer, as the server's (false: left out).
  async function read(dataUrl, { whole = false, activations = true } = {}) {
    const started = performance.now();
    const { wasm } = await ready;
    const image = await pixelsOf(dataUrl);
    let inWasm = 0;
    const status = withBuffer(wasm, image.data, (at) => {
      const before = performance.now();
      const result = whole ? wasm._digits_read_number(at, image.width, image.height)
        : wasm._digits_read(at, image.width, image.height, activations ? 1 : 0);
      inWasm = performance.now() - before;
      return result;
    });
    if (status === 0) return null;
    if (status < 0) throw new Error(wasm.UTF8ToString(wasm._digits_error()));
    const reading = JSON.parse(wasm.UTF8ToString(wasm._digits_reading_json()));
    reading.milliseconds = performance.now() - started;
    reading.wasm_milliseconds = inWasm;
    return reading;
  }

  // ---- judgements, kept in this browser ----

  function database() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DATABASE, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'id', autoIncrement: true });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  // work(store) inside one transaction; resolves with what its last request gave.
  async function transaction(mode, work) {
    const db = await database();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = work(tx.objectStore(STORE));
      tx.oncomplete = () => {
        db.close();
        resolve(request.result);
      };
      tx.onerror = () => {
        db.close();
        reject(tx.error);
      };
    });
  }

  const allJudgements = () => transaction('readonly', (store) => store.getAll());

  // ---- the page's API, answered here ----

  function answer(status, body) {
    return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  }
  const failure = (status, code, message) => answer(status, { error: { code, message } });

  async function modelAnswer() {
    const { model } = await ready;
    return answer(200, { ...model, source: 'built-in model, in this browser (WebAssembly)' });
  }

  async function predictAnswer(request) {
    if ('activations' in request && typeof request.activations !== 'boolean') {
      return failure(400, 'invalid_request', `"activations" must be true or false, not ${typeof request.activations}`);
    }
    const reading = await read(request.image, { activations: request.activations !== false });
    return reading ? answer(200, reading) : failure(422, 'empty_drawing', 'there is nothing to read: the drawing has no ink');
  }

  async function readNumberAnswer(request) {
    const number = await read(request.image, { whole: true });
    return number ? answer(200, number) : failure(422, 'empty_drawing', 'there is nothing to read: the drawing has no ink');
  }

  // As the server's POST /api/feedback: the label checked, the drawing read again here (the
  // prediction is the network's own, never the client's), then kept with the drawing itself.
  async function feedbackAnswer(request) {
    const label = request.label;
    if (!Number.isInteger(label) || label < 0 || label > 10) return failure(400, 'invalid_request', '"label" must be a digit 0–9, or 10 for "not a digit"');
    const reading = await read(request.image, { activations: false });
    if (!reading) return failure(422, 'empty_drawing', 'there is nothing to read: the drawing has no ink');
    // "Not a digit" (10) only for a model that has that output, as the server says.
    if (label === 10 && reading.not_a_digit_probability == null) {
      return failure(400, 'invalid_request', '"label" is 10, "not a digit", but this model has no "not a digit" output; it can learn the digits 0–9 only');
    }
    const predicted = reading.not_a_digit ? 10 : reading.digit;
    const judgement = {
      label,
      predicted,
      correct: label === predicted,
      probabilities: reading.probabilities,
      drawing: request.image,
      created_ms: Date.now(),
    };
    judgement.id = await transaction('readwrite', (store) => store.add(judgement));
    showKept();
    return answer(201, { id: judgement.id, label, predicted, correct: judgement.correct, model_version: 0,
      probabilities: reading.probabilities, learning: 'not_needed' });
  }

  const routes = {
    'GET /api/model': modelAnswer,
    'POST /api/predict': predictAnswer,
    'POST /api/read': readNumberAnswer,
    'POST /api/feedback': feedbackAnswer,
  };

  window.fetch = async (resource, options = {}) => {
    const route = routes[`${(options.method || 'GET').toUpperCase()} ${resource}`];
    if (!route) return networkFetch(resource, options);
    try {
      return await route(options.body ? JSON.parse(options.body) : {});
    } catch (error) {
      return failure(500, 'internal', `the network in this browser failed: ${error.message}`);
    }
  };

  // ---- the kept judgements, and their download ----

  const note = document.createElement('p');
  note.id = 'kept';
  note.className = 'feedback-status kept';
  note.innerHTML = '<span id="kept-text">This page runs without a server: the network reads your drawing in this browser.</span> ' +
    '<button id="kept-download" class="link-button" type="button" hidden>Download them</button>';
  document.getElementById('feedback-status').after(note);
  const keptText = note.querySelector('#kept-text');
  const downloadButton = note.querySelector('#kept-download');

  async function showKept() {
    const kept = await allJudgements();
    if (kept.length === 0) return;
    const corrections = kept.filter((j) => !j.correct).length;
    keptText.textContent = `Your answers stay in this browser: ${kept.length} kept (${corrections} correction${corrections === 1 ? '' : 's'}), ` +
      'for digits improve --feedback to learn from.';
    downloadButton.hidden = false;
  }

  // The export: JSON, each judgement with its drawing as the PNG data URL the page read. The
  // reader (digits improve --feedback) decodes and preprocesses every drawing again itself.
  async function download() {
    const kept = await allJudgements();
    const { model } = await ready;
    const file = {
      format: EXPORT_FORMAT,
      version: 1,
      created: new Date().toISOString(),
      model: { architecture: model.architecture, created: model.metadata.created ?? null },
      judgements: kept.map(({ id, label, predicted, correct, probabilities, created_ms, drawing }) =>
        ({ id, label, predicted, correct, probabilities, created_ms, drawing })),
    };
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([JSON.stringify(file, null, 1)], { type: 'application/json' }));
    link.download = 'digits-feedback.json';
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }
  downloadButton.addEventListener('click', download);

  ready.then(showKept, (error) => {
    keptText.textContent = `The network could not start in this browser: ${error.message}`;
  });
})();
