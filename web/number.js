// digits: reading a whole number on the page (docs/numbers.md, "On the page"). A switch above the
// pad chooses one digit or a number; for a number the pad is NUMBER_ASPECT times as wide and app.js
// sends the drawing to POST /api/read, which finds every digit, left to right. This file then:
//   - draws each digit's box and reading over the drawing (a canvas laid over the pad);
//   - lists the digits under the answer; the one under the pointer (or picked from the list, or
//     with ← →) is "selected": its own ink, which /api/read returns, goes as a PNG to POST
//     /api/predict, and that reading, exactly the one /api/read made, feeds the bars, the 28×28
//     picture and "Inside the network" ('digits:digit-selected');
//   - asks "Is it 2026?": Right judges every digit as read; Wrong lets you type the number, and
//     each digit becomes a judgement of its own (feedback.js sends them: 'digits:judge-number').
// The same file runs on the page without a server, where wasm-mode.js answers /api/read.
'use strict';

(() => {
  const NUMBER_ASPECT = 3;  // the pad's width over its height for a number: six digits fit
  const MODE_KEY = 'digits-mode';

  const pad = document.getElementById('pad');
  const frame = pad.parentElement;
  const answer = document.querySelector('#result .answer');
  const feedbackStatus = document.getElementById('feedback-status');
  const tagline = document.querySelector('.tagline');
  const TAGLINES = { digit: tagline ? tagline.textContent : '', number: 'Draw a number, its digits side by side, and the network will read each one.' };

  let number = null;   // the latest /api/read answer, with the drawing's height in pixels
  let selected = -1;   // the selected digit's index
  let selectRequest = 0;
  let judging = false;

  // ---- the switch: one digit or a number ----

  const modes = document.createElement('div');
  modes.className = 'modes';
  modes.setAttribute('role', 'group');
  modes.setAttribute('aria-label', 'What you draw');
  modes.innerHTML = '<button type="button" class="mode" data-mode="digit">One digit</button>' +
    '<button type="button" class="mode" data-mode="number">A number</button>';
  frame.before(modes);

  function setMode(mode) {
    document.documentElement.dataset.mode = mode;
    if (tagline) tagline.textContent = TAGLINES[mode];
    for (const button of modes.children) button.setAttribute('aria-pressed', String(button.dataset.mode === mode));
    pad.setAttribute('aria-label', mode === 'number'
      ? 'Drawing area, wide. Draw a number here, digits side by side, then press Enter to read it or Escape to erase it.'
      : 'Drawing area. Draw one digit here with a mouse, a finger or a pen, then press Enter to read it or Escape to erase it.');
    try {
      localStorage.setItem(MODE_KEY, mode);
    } catch (error) {
      // storage blocked: the page starts with one digit next time
    }
    document.dispatchEvent(new CustomEvent('digits:mode', { detail: { mode, aspect: mode === 'number' ? NUMBER_ASPECT : 1 } }));
  }
  for (const button of modes.children) button.addEventListener('click', () => setMode(button.dataset.mode));

  // ---- the boxes over the drawing ----

  const overlay = document.createElement('canvas');
  overlay.className = 'pad-overlay';
  overlay.setAttribute('aria-hidden', 'true');
  frame.append(overlay);

  const colour = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  function drawBoxes() {
    const ratio = window.devicePixelRatio || 1;
    overlay.width = Math.max(1, Math.round(pad.clientWidth * ratio));
    overlay.height = Math.max(1, Math.round(pad.clientHeight * ratio));
    const context = overlay.getContext('2d');
    context.clearRect(0, 0, overlay.width, overlay.height);
    if (!number) return;
    // The answer's boxes are in the drawing's pixels; the drawing is the pad, `height` pixels tall.
    const scale = (pad.clientHeight * ratio) / number.height;
    const rect = ([x, y, w, h]) => [x * scale, y * scale, w * scale, h * scale];
    context.lineWidth = 1.5 * ratio;
    context.setLineDash([4 * ratio, 4 * ratio]);
    context.strokeStyle = colour('--muted');
    for (const part of number.reading.not_digits) context.strokeRect(...rect(part.box));
    context.setLineDash([]);
    context.font = `700 ${Math.round(17 * ratio)}px system-ui, sans-serif`;
    context.textBaseline = 'bottom';
    number.reading.digits.forEach((digit, index) => {
      const [x, y, w, h] = rect(digit.box);
      const tone = digit.unsure ? colour('--unsure') : colour('--good');
      const pad2 = 3 * ratio;
      context.lineWidth = (index === selected ? 3 : 1.5) * ratio;
      context.strokeStyle = index === selected ? colour('--text') : tone;
      context.strokeRect(x - pad2, y - pad2, w + 2 * pad2, h + 2 * pad2);
      // The reading on a tab above the box, or inside its top when the box touches the top.
      const label = `${digit.digit}${digit.unsure ? '?' : ''}`;
      const tabWidth = context.measureText(label).width + 8 * ratio;
      const tabHeight = 22 * ratio;
      const top = y - pad2 - tabHeight >= 0 ? y - pad2 - tabHeight : y - pad2;
      context.fillStyle = index === selected ? colour('--text') : tone;
      context.fillRect(x - pad2, top, tabWidth, tabHeight);
      context.fillStyle = '#0d1016';
      context.fillText(label, x - pad2 + 4 * ratio, top + tabHeight - 2 * ratio);
    });
  }
  new ResizeObserver(drawBoxes).observe(pad);

  // ---- the digits under the answer, and the selected one ----

  const list = document.createElement('ol');
  list.id = 'number-digits';
  list.className = 'number-digits';
  list.setAttribute('aria-label', 'The digits read, left to right: pick one to see it inside the network');
  list.hidden = true;
  answer.after(list);

  function ordinal(n) {
    const teen = n % 100 >= 11 && n % 100 <= 13;
    return `${n}${teen ? 'th' : { 1: 'st', 2: 'nd', 3: 'rd' }[n % 10] || 'th'}`;
  }
  const percent = (p) => `${Math.round(100 * p)}%`;

  function showList() {
    list.replaceChildren();
    list.hidden = !number || number.reading.digits.length === 0;
    if (list.hidden) return;
    number.reading.digits.forEach((digit, index) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'number-digit';
      button.dataset.unsure = String(digit.unsure);
      button.innerHTML = '<span class="number-digit-value"></span><span class="number-digit-percent"></span>';
      button.querySelector('.number-digit-value').textContent = digit.digit;
      button.querySelector('.number-digit-percent').textContent = percent(digit.probability);
      button.setAttribute('aria-label', `${ordinal(index + 1)} digit: ${digit.digit}, ${percent(digit.probability)} sure`);
      button.addEventListener('click', () => select(index));
      button.addEventListener('mouseenter', () => select(index));
      item.append(button);
      list.append(item);
    });
    markSelected();
  }

  function markSelected() {
    [...list.children].forEach((item, index) => item.firstChild.setAttribute('aria-pressed', String(index === selected)));
  }

  // A digit's ink (base64 bytes, one a pixel) as the PNG /api/predict and /api/feedback read: the
  // same pixels, so the same input as /api/read's.
  function inkAsPng(ink) {
    const text = atob(ink.pixels);
    const canvas = document.createElement('canvas');
    canvas.width = ink.width;
    canvas.height = ink.height;
    const context = canvas.getContext('2d');
    const image = context.createImageData(ink.width, ink.height);
    for (let i = 0; i < text.length; i++) {
      const v = text.charCodeAt(i);
      image.data.set([v, v, v, 255], 4 * i);
    }
    context.putImageData(image, 0, 0);
    return canvas.toDataURL('image/png');
  }

  async function select(index) {
    if (!number || index < 0 || index >= number.reading.digits.length) return;
    const changed = index !== selected;
    selected = index;
    markSelected();
    drawBoxes();
    if (!changed && number.shown === index) return;
    const request = ++selectRequest;
    const digit = number.reading.digits[index];
    try {
      const response = await fetch('/api/predict', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        // The layers' outputs only while "Inside the network" is open to draw them (app.js).
        body: JSON.stringify({ image: inkAsPng(digit.ink), activations: document.getElementById('inside')?.open ?? true }),
      });
      const reading = await response.json();
      if (request !== selectRequest || !response.ok) return;
      number.shown = index;
      document.dispatchEvent(new CustomEvent('digits:digit-selected',
        { detail: { index, count: number.reading.digits.length, reading, label: `the ${ordinal(index + 1)} digit` } }));
    } catch (error) {
      // The bars keep the last digit shown; the next selection asks again.
    }
  }

  // The digit under the pointer: the box whose columns hold it, else the nearest box.
  pad.addEventListener('pointermove', (event) => {
    if (!number || event.buttons !== 0 || event.pointerType !== 'mouse') return;
    const box = pad.getBoundingClientRect();
    const x = ((event.clientX - box.left) / box.height) * number.height;
    let best = -1;
    let bestDistance = Infinity;
    number.reading.digits.forEach((digit, index) => {
      const [left, , width] = digit.box;
      const distance = Math.max(0, left - x, x - (left + width));
      if (distance < bestDistance) [best, bestDistance] = [index, distance];
    });
    if (best >= 0 && best !== selected) select(best);
  });

  document.addEventListener('keydown', (event) => {
    if (!number || event.target instanceof HTMLInputElement || event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key !== 'ArrowLeft' && event.key !== 'ArrowRight') return;
    event.preventDefault();
    select(Math.min(number.reading.digits.length - 1, Math.max(0, selected + (event.key === 'ArrowLeft' ? -1 : 1))));
  });

  // ---- Right, or Wrong and the number typed ----

  const judge = document.createElement('div');
  judge.id = 'number-judge';
  judge.className = 'judge';
  judge.hidden = true;
  judge.innerHTML =
    '<div id="number-ask"><p class="judge-question" id="number-question"></p>' +
    '<div class="judge-buttons"><button id="number-right" class="button good" type="button">Right</button>' +
    '<button id="number-wrong" class="button bad" type="button">Wrong</button></div></div>' +
    '<form id="number-type" class="number-type" hidden>' +
    '<label class="judge-question" for="number-typed">Which number did you draw? <span class="muted">Type it, digit by digit.</span></label>' +
    '<div class="number-type-row"><input id="number-typed" class="number-typed" type="text" inputmode="numeric" autocomplete="off" ' +
    'spellcheck="false" maxlength="20" pattern="[0-9]+" required>' +
    '<button id="number-save" class="button primary" type="submit">Save</button></div>' +
    '<button id="number-back" class="link-button" type="button">Back: it was right after all</button></form>';
  document.getElementById('judge').after(judge);
  const ask = judge.querySelector('#number-ask');
  const question = judge.querySelector('#number-question');
  const form = judge.querySelector('#number-type');
  const typed = judge.querySelector('#number-typed');

  function say(message, tone) {
    feedbackStatus.textContent = message;
    feedbackStatus.dataset.tone = tone || '';
  }

  function setBusy(busy) {
    judging = busy;
    for (const control of judge.querySelectorAll('button, input')) control.disabled = busy;
  }

  function askAbout() {
    const digits = number.reading.digits;
    judge.hidden = digits.length === 0;
    if (judge.hidden) return;
    question.textContent = `Is it ${number.reading.text}?`;
    ask.hidden = false;
    form.hidden = true;
    setBusy(false);
  }

  judge.querySelector('#number-right').addEventListener('click', () => send(number.reading.text));
  judge.querySelector('#number-wrong').addEventListener('click', () => {
    ask.hidden = true;
    form.hidden = false;
    typed.value = number.reading.text;
    typed.focus({ preventScroll: true });
    typed.select();
  });
  judge.querySelector('#number-back').addEventListener('click', () => {
    form.hidden = true;
    ask.hidden = false;
  });
  typed.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') judge.querySelector('#number-back').click();
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = typed.value.replace(/\s+/g, '');
    const count = number.reading.digits.length;
    if (!/^[0-9]+$/.test(text)) {
      say('Type the number with the digits 0–9 only.', 'bad');
      return;
    }
    // Each digit is judged on its own, so the typed digits must pair with the digits found.
    if (text.length !== count) {
      say(`The network found ${count} digit${count === 1 ? '' : 's'} and you typed ${text.length}: each digit is kept as a judgement of its own, ` +
        'so they must pair up. Nothing was saved. Erase, draw the digits a little apart, and try again.', 'bad');
      return;
    }
    send(text);
  });

  // feedback.js sends one judgement a digit and answers with 'digits:number-judged'.
  function send(text) {
    if (judging || !number) return;
    setBusy(true);
    const parts = number.reading.digits.map((digit, index) => ({ image: inkAsPng(digit.ink), label: Number(text[index]), predicted: digit.digit }));
    document.dispatchEvent(new CustomEvent('digits:judge-number', { detail: { parts, text, read: number.reading.text } }));
  }
  document.addEventListener('digits:number-judged', (event) => {
    if (event.detail.saved === event.detail.count) judge.hidden = true;
    else setBusy(false);
  });

  // ---- following app.js ----

  document.addEventListener('digits:number', (event) => {
    const { reading, announce, height } = event.detail;
    number = { reading, height, shown: -1 };
    selected = Math.min(Math.max(selected, 0), reading.digits.length - 1);
    showList();
    drawBoxes();
    select(selected);
    if (announce) askAbout();
    else judge.hidden = true;
  });

  document.addEventListener('digits:cleared', () => {
    number = null;
    selected = -1;
    selectRequest++;
    judge.hidden = true;
    showList();
    drawBoxes();
  });

  let start = 'digit';
  try {
    start = localStorage.getItem(MODE_KEY) === 'number' ? 'number' : 'digit';
  } catch (error) {
    // storage blocked
  }
  setMode(start);
})();
