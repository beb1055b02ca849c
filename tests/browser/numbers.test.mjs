// Whole numbers on the page (web/number.js, docs/numbers.md "On the page"), in Debian's Chromium
// driven by playwright-core, against `digits serve` and, when scripts/build-web's folder is given,
// the page without a server. Switches to "A number" (the pad three times as wide), draws numbers
// with the mouse (drawing.mjs's shapes, side by side, apart, close, touching and overlapping) and
// checks what the page shows: the number, a box and a reading over each digit, the digit under
// the pointer inside the network (the same probabilities /api/read gave it); says Right, then
// Wrong with a number typed, and checks that each digit became a judgement of its own, stored and
// learned from. Prints the whole-number and per-digit accuracy of the numbers drawn, with the
// segmentation errors by kind, and writes the drawings (<number>_<index>.png) for `digits read`.
//
//   node numbers.test.mjs <path to digits> <screenshot dir> [build/web]
//
// Exits 0 when every check passes, 1 on a failure, 77 (ctest's "skipped") without Chromium.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { SHAPES, drawWithMouse } from './drawing.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const [digitsBinary, screenshotDir = 'screenshots', webDir] = process.argv.slice(2);
if (!digitsBinary) {
  console.error('usage: node numbers.test.mjs <path to digits> <screenshot dir> [build/web]');
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.log(`skipped: no Chromium at ${CHROMIUM}`);
  process.exit(77);
}
const drawingsDir = path.join(screenshotDir, 'numbers');
mkdirSync(drawingsDir, { recursive: true });

let failures = 0;
function check(condition, message) {
  console.log(`  ${condition ? 'ok  ' : 'FAIL'}  ${message}`);
  if (!condition) failures++;
}

// ---- servers: digits serve, and a plain static one for build/web ----

const stateDirs = [];
function waitForAddress(child, pattern, what) {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${what} printed no address: ${output}`)), 15000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = output.match(pattern);
      if (match) {
        clearTimeout(timer);
        resolve({ server: child, url: `http://127.0.0.1:${match[1]}/` });
      }
    });
    child.stderr.on('data', () => {});  // request logs
    child.on('exit', (code) => reject(new Error(`${what} exited with ${code}: ${output}`)));
  });
}
const mnistDir = process.env.DIGITS_DATA || path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../data/mnist');
function startDigits() {
  const stateDir = mkdtempSync(path.join(tmpdir(), 'digits-state-'));
  stateDirs.push(stateDir);
  return waitForAddress(spawn(digitsBinary, ['serve', '--port', '0', '--state-dir', stateDir, '--data', mnistDir], { stdio: ['ignore', 'pipe', 'pipe'] }),
    /http:\/\/127\.0\.0\.1:(\d+)\//, 'digits serve');
}
function serveFolder(folder) {
  return waitForAddress(spawn('/usr/bin/python3', ['-m', 'http.server', '--bind', '127.0.0.1', '--directory', folder, '0'],
    { stdio: ['ignore', 'pipe', 'pipe'] }), /port (\d+)/, 'http.server');
}
function stop(server) {
  if (server.exitCode !== null || server.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    server.once('exit', resolve);
    server.kill('SIGTERM');
  });
}

async function withBrowser(viewport, work) {
  const profile = mkdtempSync(path.join(tmpdir(), 'digits-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport,
  });
  try {
    return await work(context);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

// ---- the numbers drawn ----

// The digits' shapes (drawing.mjs) and each one's ink across its unit box (u from, u to), for the
// true extents the segmentation errors are counted against.
const SHAPE_OF = { 6: 'plain 6', 9: 'plain 9' };
const shapeOf = (digit) => SHAPE_OF[digit] ?? String(digit);
function inkSpan(shape) {
  const us = SHAPES[shape].flat().map(([u]) => u);
  return [Math.min(...us), Math.max(...us)];
}

// A number laid out on the wide pad (3 pad heights wide). Units: pad heights. Each digit's unit
// box is 0.7 of its height wide (a 1, 0.45) and `height` tall; the gap between one digit's ink and
// the next one's is gapsOf(i) heights (negative: they overlap), so "touching" is about the ink, not
// the boxes. The digits are as tall as fits, at most 0.7 of the pad.
function layout(text, gapsOf) {
  const aspectOf = (c) => (c === '1' ? 0.45 : 0.7);
  const inkWidths = [...text].reduce((sum, c) => sum + aspectOf(c) * 0.75, 0);
  const gapsTotal = [...text].slice(1).reduce((sum, _, i) => sum + Math.max(0, gapsOf(i + 1)), 0);
  const height = Math.min(0.7, 2.8 / (inkWidths + gapsTotal + 0.1));
  let x = 0;
  const digits = [];
  [...text].forEach((c, i) => {
    const width = aspectOf(c) * height;
    const shape = shapeOf(Number(c));
    const [u0, u1] = inkSpan(shape);
    if (i > 0) x += gapsOf(i) * height;  // from the last ink's right edge
    const left = x - u0 * width;
    digits.push({ shape, left, top: 0.5 - height / 2, width, height, ink: [left + u0 * width, left + u1 * width] });
    x = left + u1 * width;
  });
  // Centred on the pad; with the pen's half width, the ink's extent.
  const shift = (3 - (x - digits[0].ink[0])) / 2 - digits[0].ink[0];
  const pen = 0.065 / 2;
  for (const d of digits) {
    d.left += shift;
    d.ink = [d.ink[0] + shift - pen, d.ink[1] + shift + pen];
  }
  return digits;
}

// 40 numbers of 2–6 digits from a fixed pseudo-random walk: the gap before each digit is 60% apart
// (0.15–0.4 of the digit's height), 25% close (0.04–0.15) and 15% touching (−0.03–0.04: with the
// pen's width, the strokes meet or nearly). A number is "touching" when any gap is, "close" when
// the closest is close, else "apart".
function numbersToDraw() {
  let seed = 2026;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: 40 }, () => {
    const length = 2 + Math.floor(random() * 5);
    const text = Array.from({ length }, () => Math.floor(random() * 10)).join('');
    const gaps = Array.from({ length }, () => {
      const r = random();
      return r < 0.6 ? 0.15 + 0.25 * random() : r < 0.85 ? 0.04 + 0.11 * random() : -0.03 + 0.07 * random();
    });
    const closest = Math.min(...gaps.slice(1));
    return { text, digits: layout(text, (i) => gaps[i]), kind: closest >= 0.15 ? 'apart' : closest >= 0.04 ? 'close' : 'touching' };
  });
}

async function drawNumber(page, digits) {
  for (const d of digits) {
    // drawWithMouse places the unit box in fractions of the pad: the pad is 3 heights wide.
    await drawWithMouse(page, d.shape, { left: d.left / 3, top: d.top, width: d.width / 3, height: d.height }, 5);
  }
}

// The number the page shows once the last stroke's announced reading is in.
async function readBack(page) {
  await page.evaluate(() => { window.lastNumber = null; });
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => window.lastNumber !== null, null, { timeout: 15000 });
  return page.evaluate(() => window.lastNumber);
}

// Scores one reading as tools/read_numbers does: a candidate belongs to the true digit that holds
// its box's centre; merge, split, missed and extra from there (docs/numbers.md).
function score(drawn, number, height, tally) {
  const spans = drawn.digits.map((d) => d.ink.map((x) => x * height));  // in the drawing's pixels
  const mids = spans.map(([a, b]) => (a + b) / 2);
  const inDigit = spans.map(() => []);
  const merged = spans.map(() => false);
  tally.numbers++;
  tally.right += number.text === drawn.text ? 1 : 0;
  number.digits.forEach((candidate, c) => {
    const [x, , w] = candidate.box;
    const held = mids.filter((m) => m >= x && m < x + w).length;
    if (held >= 2) {
      tally.merge++;
      mids.forEach((m, d) => { if (m >= x && m < x + w) merged[d] = true; });
    }
    const centre = x + w / 2;
    const d = spans.findIndex(([a, b]) => centre >= a && centre < b);
    if (d < 0) tally.extra++;
    else inDigit[d].push(c);
  });
  spans.forEach((_, d) => {
    tally.digits++;
    if (inDigit[d].length >= 2) tally.split++;
    if (inDigit[d].length === 0 && !merged[d]) tally.missed++;
    if (inDigit[d].length === 1 && !merged[d] && number.digits[inDigit[d][0]].digit === Number(drawn.text[d])) tally.digitsRight++;
  });
}
const newTally = () => ({ numbers: 0, right: 0, digits: 0, digitsRight: 0, merge: 0, split: 0, missed: 0, extra: 0 });
const pct = (a, b) => `${((100 * a) / Math.max(1, b)).toFixed(1)}%`;
const describe = (t) => `${t.numbers} numbers: whole number ${pct(t.right, t.numbers)}, digits ${pct(t.digitsRight, t.digits)} of ${t.digits}; ` +
  `segmentation errors: merge ${t.merge}, split ${t.split}, missed ${t.missed}, extra ${t.extra}`;

// ---- the page ----

async function openPage(context, url) {
  const page = context.pages()[0] || (await context.newPage());
  await page.addInitScript(() => {
    document.addEventListener('digits:number', (event) => {
      if (event.detail.announce) window.lastNumber = { ...event.detail.reading, drawing: event.detail.drawing, height: event.detail.height };
    });
    document.addEventListener('digits:digit-selected', (event) => { window.selectedDigit = event.detail; });
  });
  await page.goto(url, { waitUntil: 'networkidle' });
  await page.waitForFunction(() => document.getElementById('model-info').textContent.startsWith('Network'), null, { timeout: 20000 });
  return page;
}

async function switchToNumbers(page) {
  await page.getByRole('button', { name: 'A number' }).click();
  const shape = await page.evaluate(() => {
    const pad = document.getElementById('pad');
    return { ratio: pad.clientWidth / pad.clientHeight, pressed: document.querySelector('.mode[data-mode="number"]').getAttribute('aria-pressed') };
  });
  check(Math.abs(shape.ratio - 3) < 0.05 && shape.pressed === 'true', `"A number" widens the pad to 3:1 (${shape.ratio.toFixed(2)})`);
}

// The boxes drawn over the pad: how many columns of the overlay hold its colour, per digit box.
async function boxesDrawn(page, number) {
  return page.evaluate((reading) => {
    const overlay = document.querySelector('.pad-overlay');
    const pad = document.getElementById('pad');
    const data = overlay.getContext('2d').getImageData(0, 0, overlay.width, overlay.height).data;
    const scale = overlay.height / reading.height;
    // A box's left edge, 3 CSS px left of the box (number.js): some pixel of that column is painted.
    return reading.digits.map((d) => {
      const x = Math.round(d.box[0] * scale - 3 * window.devicePixelRatio);
      let painted = 0;
      for (let y = Math.round(d.box[1] * scale); y < Math.round((d.box[1] + d.box[3]) * scale); y++) painted += data[4 * (y * overlay.width + x) + 3] > 0 ? 1 : 0;
      return painted;
    }).concat([pad.width === overlay.width ? 1 : 0]);
  }, number);
}

async function erase(page) {
  await page.getByRole('button', { name: /Erase/ }).click();
}

async function savePng(dataUrl, file) {
  writeFileSync(file, Buffer.from(dataUrl.slice(dataUrl.indexOf(',') + 1), 'base64'));
}

async function modelInfo(url) {
  return (await fetch(new URL('api/model', url))).json();
}

async function exerciseServed(url) {
  console.log('the served page: numbers drawn with the mouse');
  await withBrowser({ width: 1280, height: 900 }, async (context) => {
    const page = await openPage(context, url);
    await switchToNumbers(page);

    // A plain number first, its digits well apart: every part of the page.
    const plain = { text: '174', digits: layout('174', () => 0.3) };
    await drawNumber(page, plain.digits);
    let number = await readBack(page);
    check(number.text === '174', `"174" drawn apart is read as ${number.text}`);
    const shown = await page.evaluate(() => ({
      digit: document.getElementById('digit').textContent.trim(),
      list: [...document.querySelectorAll('#number-digits .number-digit-value')].map((e) => e.textContent),
      question: document.getElementById('number-question').textContent,
    }));
    check(shown.digit === number.text && shown.list.join('') === number.text, `the answer shows ${shown.digit}, digit by digit ${shown.list.join(' ')}`);
    check(shown.question === `Is it ${number.text}?`, `the page asks "${shown.question}"`);
    const boxes = await boxesDrawn(page, number);
    check(boxes.slice(0, -1).every((painted) => painted > 10) && boxes.at(-1) === 1, `a box is drawn over each digit (${boxes.slice(0, -1).join(', ')} px of edge)`);
    await page.screenshot({ path: path.join(screenshotDir, 'number-desktop.png') });

    // The digit under the pointer, inside the network: the second digit's box.
    const pad = await page.locator('#pad').boundingBox();
    const second = number.digits[1].box;
    const scale = pad.height / number.height;
    const first = number.digits[0].box;
    const centre = (box) => [pad.x + (box[0] + box[2] / 2) * scale, pad.y + (box[1] + box[3] / 2) * scale];
    await page.mouse.move(...centre(first));
    await page.waitForFunction(() => document.querySelector('#number-digits li:first-child button').getAttribute('aria-pressed') === 'true');
    await page.evaluate(() => { window.selectedDigit = null; });
    await page.mouse.move(...centre(second));
    await page.waitForFunction(() => window.selectedDigit && window.selectedDigit.index === 1, null, { timeout: 10000 });
    const inside = await page.evaluate(() => ({
      status: document.getElementById('inside-status').textContent,
      top: document.querySelector('.inside-digits li.top .inside-digit')?.textContent,
      probabilities: window.selectedDigit.reading.probabilities,
      bar: document.querySelector('#bars li.top .label')?.textContent,
    }));
    const same = inside.probabilities.every((p, c) => Math.abs(p - number.digits[1].probabilities[c]) < 1e-6);
    check(inside.top === String(number.digits[1].digit) && inside.bar === inside.top && /2nd digit/.test(inside.status),
      `pointing at the 2nd digit shows it inside the network: ${inside.top}, "${inside.status.slice(0, 60)}…"`);
    check(same, 'inside the network, the pointed digit has the very probabilities /api/read gave it');
    await page.locator('#inside').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(screenshotDir, 'number-inside.png'), fullPage: true });

    // The measured set: 40 numbers, each drawn, read and scored, its drawing kept; before any
    // correction below teaches the server's model something.
    const tallies = { all: newTally(), apart: newTally(), close: newTally(), touching: newTally() };
    const wrongOnes = [];
    for (const [i, drawn] of numbersToDraw().entries()) {
      await erase(page);
      await drawNumber(page, drawn.digits);
      const read = await readBack(page);
      score(drawn, read, read.height, tallies.all);
      score(drawn, read, read.height, tallies[drawn.kind]);
      if (read.text !== drawn.text) wrongOnes.push(`${drawn.text} (${drawn.kind}) read as ${read.text}`);
      await savePng(read.drawing, path.join(drawingsDir, `${drawn.text}_${String(i).padStart(3, '0')}.png`));
      if (i === 5) await page.screenshot({ path: path.join(screenshotDir, 'number-measured.png') });
    }
    for (const [name, tally] of Object.entries(tallies)) console.log(`  ${name.padEnd(9)} ${describe(tally)}`);
    if (wrongOnes.length) console.log(`  read wrong: ${wrongOnes.join('; ')}`);
    // Digits drawn apart by a mouse are the easy case: every one should be read.
    check(tallies.apart.right === tallies.apart.numbers, `every number drawn with its digits apart is read whole (${tallies.apart.right} of ${tallies.apart.numbers})`);
    check(tallies.all.right >= 0.75 * tallies.all.numbers, `at least 75% of the 40 numbers are read whole (${tallies.all.right})`);

    // Back to the plain number, to judge it.
    await erase(page);
    await drawNumber(page, plain.digits);
    number = await readBack(page);

    // Right: one judgement a digit.
    const before = (await modelInfo(url)).learning.judgements;
    await page.getByRole('button', { name: 'Right' }).click();
    await page.waitForFunction(() => /^Saved judgements/.test(document.getElementById('feedback-status').textContent), null, { timeout: 15000 });
    const afterRight = (await modelInfo(url)).learning;
    check(afterRight.judgements === before + 3, `Right stores one judgement a digit (${afterRight.judgements - before} of 3)`);

    // Wrong, then the number typed: first with a digit too many (nothing saved), then right.
    await erase(page);
    const wrong = { text: '60', digits: layout('60', () => 0.3) };
    await drawNumber(page, wrong.digits);
    number = await readBack(page);
    await page.getByRole('button', { name: 'Wrong' }).click();
    const field = page.getByRole('textbox', { name: /Which number did you draw/ });
    check(await field.evaluate((input) => document.activeElement === input && input.value === window.lastNumber.text),
      'Wrong opens a field holding the number read, focused');
    await field.fill('600');
    await field.press('Enter');
    const refused = await page.evaluate(() => document.getElementById('feedback-status').textContent);
    check(/you typed 3/.test(refused) && (await modelInfo(url)).learning.judgements === afterRight.judgements,
      `a typed number of another length saves nothing: "${refused.slice(0, 50)}…"`);
    // The typed number, with its last digit other than the one read: one correction.
    const typed = `${number.text.slice(0, -1)}${(Number(number.text.at(-1)) + 1) % 10}`;
    await field.fill(typed);
    await field.press('Enter');
    await page.waitForFunction(() => /^Saved judgements/.test(document.getElementById('feedback-status').textContent), null, { timeout: 15000 });
    const afterWrong = (await modelInfo(url)).learning;
    check(afterWrong.judgements === afterRight.judgements + 2 && afterWrong.corrections === afterRight.corrections + 1,
      `the typed ${typed} stores two judgements, one a correction (${afterWrong.judgements - afterRight.judgements}, ${afterWrong.corrections - afterRight.corrections})`);
    // The server learns from the digit corrected, as from a single digit's.
    await page.waitForFunction(() => /^Learned|not learned/.test(document.getElementById('feedback-status').textContent), null, { timeout: 120000 })
      .catch(() => {});
    const learned = await page.evaluate(() => document.getElementById('feedback-status').textContent);
    check(/^Learned: model version \d+ has learned from judgement/.test(learned) || /not learned/.test(learned),
      `the correction reaches the learner: "${learned.slice(0, 70)}…"`);
    await erase(page);

  });

  console.log('the served page on a phone');
  await withBrowser({ width: 390, height: 800 }, async (context) => {
    const page = await openPage(context, url);
    // The mode is remembered? A fresh profile starts with one digit.
    check(await page.evaluate(() => document.querySelector('.mode[data-mode="digit"]').getAttribute('aria-pressed') === 'true'),
      'a fresh browser starts with one digit');
    await switchToNumbers(page);
    await drawNumber(page, layout('2026', () => 0.25));
    const number = await readBack(page);
    check(number.digits.length === 4, `on a phone, "2026" is read as ${number.text}`);
    await page.screenshot({ path: path.join(screenshotDir, 'number-phone.png'), fullPage: true });
    // Back to one digit: a drawing wider than the square pad is erased.
    await page.getByRole('button', { name: 'One digit' }).click();
    const back = await page.evaluate(() => ({ state: document.getElementById('result').dataset.state,
      ratio: document.getElementById('pad').clientWidth / document.getElementById('pad').clientHeight }));
    check(back.state === 'empty' && Math.abs(back.ratio - 1) < 0.02, `"One digit" makes the pad square again and erases the wide drawing (${back.state})`);
  });
}

async function exerciseStatic(folder) {
  console.log('the page without a server: numbers read in WebAssembly');
  const { server, url } = await serveFolder(folder);
  try {
    await withBrowser({ width: 1280, height: 900 }, async (context) => {
      const page = await openPage(context, url);
      const requests = [];
      page.on('request', (request) => requests.push(request.url()));
      await switchToNumbers(page);
      await drawNumber(page, layout('4720', () => 0.28));
      const number = await readBack(page);
      check(number.text === '4720', `"4720" is read in the browser as ${number.text}`);
      await page.getByRole('button', { name: 'Right' }).click();
      await page.waitForFunction(() => /^Saved judgements/.test(document.getElementById('feedback-status').textContent), null, { timeout: 15000 });
      const kept = await page.evaluate(() => document.getElementById('kept-text').textContent);
      check(/4 kept/.test(kept), `each digit is kept in this browser as a judgement: "${kept.slice(0, 50)}…"`);
      check(requests.length === 0, `reading and judging sent no request (${requests.length})`);
      await page.screenshot({ path: path.join(screenshotDir, 'number-static.png') });
    });
  } finally {
    await stop(server);
  }
}

let digitsServer = null;
try {
  const started = await startDigits();
  digitsServer = started.server;
  await exerciseServed(started.url);
  if (webDir && existsSync(path.join(webDir, 'digits.wasm'))) await exerciseStatic(webDir);
  else console.log('the page without a server: skipped (no build/web: scripts/build-web makes it)');
} catch (error) {
  console.log(`  FAIL  ${error.stack || error}`);
  failures++;
} finally {
  if (digitsServer) await stop(digitsServer);
  for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
}
console.log(failures ? `${failures} check(s) failed` : 'every check passed');
process.exit(failures ? 1 : 0);
