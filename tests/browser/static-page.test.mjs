// The page without a server (docs/app.md, "Without a server"), in Debian's Chromium driven by
// playwright-core: scripts/build-web's folder served by a plain static file server (Python's
// http.server), never by digits. Draws 100 digits with the mouse, in the styles of
// draw-digits.test.mjs and more, and checks each reading against `digits predict` on the same PNG
// (same digit, every probability within 1e-5); checks that no request leaves the page after it has
// loaded; says Right and Wrong, downloads the judgements kept in IndexedDB and has
// `digits improve --feedback` learn from them, after which the corrected drawings read right; then
// serves the same folder with a conv model in place of the built-in one. Prints the time of one
// prediction in the browser.
//
//   node static-page.test.mjs <path to digits> <build/web> <screenshot dir>
//
// Exits 0 when every check passes, 1 on a failure, 77 (ctest's "skipped") without Chromium.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

import { SHAPES, digitOf, drawWithMouse } from './drawing.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOLERANCE = 1e-5;  // each probability, page against `digits predict`
const [digitsBinary, webDir, screenshotDir = 'screenshots'] = process.argv.slice(2);
if (!digitsBinary || !webDir) {
  console.error('usage: node static-page.test.mjs <path to digits> <build/web> [screenshot dir]');
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.log(`skipped: no Chromium at ${CHROMIUM}`);
  process.exit(77);
}
mkdirSync(screenshotDir, { recursive: true });
const work = mkdtempSync(path.join(tmpdir(), 'digits-static-'));

let failures = 0;
function check(condition, message) {
  console.log(`  ${condition ? 'ok  ' : 'FAIL'}  ${message}`);
  if (!condition) failures++;
}

// ---- a plain static file server ----

function serveFolder(folder) {
  return new Promise((resolve, reject) => {
    const server = spawn('/usr/bin/python3', ['-m', 'http.server', '--bind', '127.0.0.1', '--directory', folder, '0'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => reject(new Error(`http.server printed no port: ${output}`)), 10000);
    server.stdout.on('data', (chunk) => {
      output += chunk;
      const match = output.match(/port (\d+)/);
      if (match) {
        clearTimeout(timer);
        resolve({ server, url: `http://127.0.0.1:${match[1]}/` });
      }
    });
    server.stderr.on('data', () => {});  // its request log
  });
}

function stop(server) {
  return new Promise((resolve) => {
    if (server.exitCode !== null || server.signalCode !== null) return resolve();
    server.once('exit', resolve);
    server.kill('SIGTERM');
  });
}

// ---- drawing (drawing.mjs): a point every 8 px along each stroke (draw-digits: 4), for speed ----

const SPACING = 8;

// 100 drawings: every shape in turn, small and large, all over the pad (a fixed pseudo-random walk).
function drawings() {
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const shapes = Object.keys(SHAPES);
  return Array.from({ length: 100 }, (_, i) => {
    const width = 0.28 + 0.5 * random(), height = Math.min(0.95, width * (1.1 + 0.5 * random()));
    return { shape: shapes[i % shapes.length], placement: { left: random() * (1 - width), top: random() * (1 - height), width, height } };
  });
}

// The page's last announced reading (from app.js's 'digits:reading' event) and the drawing it read.
async function tellTheNumber(page) {
  await page.evaluate(() => { window.lastReading = null; });
  await page.getByRole('button', { name: /Tell the Number/ }).click();
  await page.waitForFunction(() => window.lastReading !== null, null, { timeout: 10000 });
  return page.evaluate(() => window.lastReading);
}

async function openPage(context, url, onRequest) {
  const page = context.pages()[0] || (await context.newPage());
  page.on('request', (request) => onRequest(request.url()));
  await page.addInitScript(() => {
    window.readings = [];
    document.addEventListener('digits:reading', (event) => {
      const { reading, announce, drawing } = event.detail;
      window.readings.push({ milliseconds: reading.milliseconds, wasm: reading.wasm_milliseconds });
      if (announce) window.lastReading = { reading, drawing };
    });
  });
  await page.goto(url, { waitUntil: 'networkidle' });
  await page.waitForFunction(() => document.getElementById('model-info').textContent.startsWith('Network'), null, { timeout: 20000 });
  return page;
}

async function withBrowser(work) {
  const profile = mkdtempSync(path.join(tmpdir(), 'digits-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 860 },
    acceptDownloads: true,
  });
  try {
    return await work(context);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

function savePng(dataUrl, file) {
  writeFileSync(file, Buffer.from(dataUrl.slice(dataUrl.indexOf(',') + 1), 'base64'));
}

function predictNatively(model, files) {
  const output = execFileSync(digitsBinary, ['predict', '--json', '--model', model, ...files], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return output.trim().split('\n').map((line) => JSON.parse(line));
}

// Each page reading against `digits predict` on the PNG the page read.
function compareWithNative(model, readings, name) {
  const files = readings.map((r, i) => path.join(work, `${name}-${String(i).padStart(3, '0')}.png`));
  readings.forEach((r, i) => savePng(r.drawing, files[i]));
  const native = predictNatively(model, files);
  let largest = 0;
  const disagreements = [];
  readings.forEach(({ reading }, i) => {
    const worst = Math.max(...reading.probabilities.map((p, d) => Math.abs(p - native[i].probabilities[d])));
    largest = Math.max(largest, worst);
    if (reading.digit !== native[i].digit || !(worst <= TOLERANCE)) disagreements.push(`${files[i]}: page ${reading.digit}, digits predict ${native[i].digit}, largest difference ${worst}`);
  });
  check(disagreements.length === 0 && native.length === readings.length,
    `${name}: ${readings.length} drawings read the same in the page and by digits predict (largest difference of a probability ${largest.toExponential(2)})` +
    (disagreements.length ? `\n        ${disagreements.slice(0, 5).join('\n        ')}` : ''));
  return files;
}

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return `median ${at(0.5).toFixed(2)} ms, 90th percentile ${at(0.9).toFixed(2)} ms, slowest ${sorted[sorted.length - 1].toFixed(2)} ms (${sorted.length} readings)`;
}

// ---- the built-in model: 100 drawings, Right and Wrong, the export ----

async function builtIn(url) {
  console.log(`the built-in model, served by python3 -m http.server at ${url}`);
  return withBrowser(async (context) => {
    let loaded = false;
    const afterLoad = [];
    const page = await openPage(context, url, (requested) => {
      if (loaded && !requested.startsWith('data:') && !requested.startsWith('blob:')) afterLoad.push(requested);
    });
    loaded = true;
    const footer = await page.locator('#model-info').textContent();
    check(/Network conv5x5x32, bn, pool2, conv5x5x64, bn, pool2, fc256, fc11/.test(footer) && /in this browser/.test(footer),
      `the footer describes the model running in the browser: "${footer.trim()}"`);

    const readings = [];
    for (const { shape, placement } of drawings()) {
      await drawWithMouse(page, shape, placement, SPACING);
      readings.push({ shape, ...(await tellTheNumber(page)) });
      await page.getByRole('button', { name: /Erase/ }).click();
    }
    const right = readings.filter((r) => r.reading.digit === digitOf(r.shape)).length;
    console.log(`  (${right} of 100 read as the digit drawn)`);
    const files = compareWithNative(path.join(webDir, 'model.safetensors'), readings, 'builtin');

    // Inside the network follows a reading, in the page alone.
    await drawWithMouse(page, 7, { left: 0.2, top: 0.1, width: 0.55, height: 0.8 }, SPACING);
    await tellTheNumber(page);
    const inside = await page.evaluate(() => ({
      state: document.getElementById('inside').dataset.state,
      grids: [...document.querySelectorAll('#inside .inside-hidden canvas, #inside .inside-maps')].length,
    }));
    // The built-in CNN: two convolutions and two poolings as maps, and the dense layer fc256.
    check(inside.state === 'reading' && inside.grids >= 5, `"Inside the network" shows the reading (${inside.grids} hidden layers drawn)`);
    await page.screenshot({ path: path.join(screenshotDir, 'static-seven.png'), fullPage: true });
    await page.getByRole('button', { name: /Erase/ }).click();

    // Time: one drawing read again and again, after the page has warmed up.
    const timing = await page.evaluate(async () => {
      const canvas = document.createElement('canvas');
      canvas.width = canvas.height = 280;
      const context = canvas.getContext('2d');
      context.fillStyle = '#000';
      context.fillRect(0, 0, 280, 280);
      context.strokeStyle = '#fff';
      context.lineWidth = 18;
      context.lineCap = 'round';
      context.beginPath();
      context.moveTo(60, 40);
      context.lineTo(220, 40);
      context.lineTo(120, 250);
      context.stroke();
      const image = canvas.toDataURL('image/png');
      const whole = [], wasm = [];
      for (let i = 0; i < 200; i++) {
        const reading = await (await fetch('/api/predict', { method: 'POST', body: JSON.stringify({ image }) })).json();
        if (i >= 20) whole.push(reading.milliseconds), wasm.push(reading.wasm_milliseconds);
      }
      return { whole, wasm };
    });
    console.log(`  one prediction in the browser, the WebAssembly call (preprocess, network, answer as JSON): ${summary(timing.wasm)}`);
    console.log(`  the same with the PNG decoded by the browser first: ${summary(timing.whole)}`);
    const drawn = await page.evaluate(() => window.readings);
    console.log(`  while drawing, every reading (live ones too), WebAssembly call: ${summary(drawn.map((r) => r.wasm))}`);

    // Right and Wrong: the unusual styles the built-in model misreads are corrected, the others confirmed.
    const taught = [];
    const teach = [
      { shape: 'Eastern Arabic 7', placement: { left: 0.25, top: 0.12, width: 0.45, height: 0.76 } },
      { shape: 'Eastern Arabic 7', placement: { left: 0.1, top: 0.3, width: 0.35, height: 0.6 } },
      { shape: 'Eastern Arabic 7', placement: { left: 0.45, top: 0.05, width: 0.5, height: 0.8 } },
      { shape: 'digital 6', placement: { left: 0.25, top: 0.12, width: 0.45, height: 0.76 } },
      { shape: 7, placement: { left: 0.2, top: 0.1, width: 0.6, height: 0.8 } },
      { shape: 0, placement: { left: 0.2, top: 0.1, width: 0.6, height: 0.8 } },
    ];
    for (const { shape, placement } of teach) {
      await drawWithMouse(page, shape, placement, SPACING);
      const { reading, drawing } = await tellTheNumber(page);
      const truth = digitOf(shape);
      if (reading.digit === truth) {
        await page.getByRole('button', { name: 'Right', exact: true }).click();
      } else {
        await page.getByRole('button', { name: 'Wrong', exact: true }).click();
        await page.locator('#judge-digits').getByRole('button', { name: String(truth), exact: true }).click();
        taught.push({ shape, drawing, said: reading.digit, truth });
      }
      await page.waitForFunction(() => /^Saved \(judgement \d+\)/.test(document.getElementById('feedback-status').textContent), null, { timeout: 10000 });
      await page.getByRole('button', { name: /Erase/ }).click();
    }
    const kept = (await page.locator('#kept').textContent()).trim();
    check(/6 kept/.test(kept) && kept.includes(`${taught.length} correction`), `the judgements are kept in the browser: "${kept}"`);
    check(afterLoad.length === 0, `no request left the page after it loaded (${readings.length + teach.length + 1} drawings, 200 timed readings, 6 judgements)` +
      (afterLoad.length ? `: ${afterLoad.slice(0, 5).join(', ')}` : ''));
    await page.screenshot({ path: path.join(screenshotDir, 'static-kept.png'), fullPage: true });

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download them' }).click()]);
    const exported = path.join(work, 'digits-feedback.json');
    await download.saveAs(exported);
    const file = JSON.parse(readFileSync(exported, 'utf8'));
    check(file.format === 'digits-feedback' && file.version === 1 && file.judgements.length === 6, `the download is the export format with the 6 judgements (${download.suggestedFilename()})`);

    // IndexedDB keeps them across a reload.
    await page.reload({ waitUntil: 'networkidle' });
    await page.waitForFunction(() => /6 kept/.test(document.getElementById('kept').textContent), null, { timeout: 10000 })
      .then(() => check(true, 'after a reload the browser still holds the 6 judgements'), () => check(false, 'after a reload the browser still holds the 6 judgements'));
    return { exported, taught, files };
  });
}

// ---- learning from the export ----

function learnFromExport({ exported, taught }) {
  console.log('digits improve --feedback on the export');
  check(taught.length > 0, `the built-in model misread ${taught.length} of the drawings that were corrected`);
  if (taught.length === 0) return;
  const model = path.join(webDir, 'model.safetensors'), improved = path.join(work, 'improved.safetensors');
  let output = '';
  try {
    output = execFileSync(digitsBinary, ['improve', '--feedback', exported, '--model', model, '--out', improved], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    check(false, `digits improve --feedback accepts the export: ${error.stdout}${error.stderr}`);
    return;
  }
  check(existsSync(improved), `digits improve --feedback learned from it: ${output.trim().split('\n').slice(-2).join(' / ')}`);
  const files = taught.map((t, i) => {
    const file = path.join(work, `taught-${i}.png`);
    savePng(t.drawing, file);
    return file;
  });
  const after = predictNatively(improved, files);
  taught.forEach((t, i) => check(after[i].digit === t.truth, `the ${t.shape} read as ${t.said} now reads as ${after[i].digit} (${(100 * after[i].probability).toFixed(1)}%)`));
}

// ---- a conv model in the same folder ----

async function convModel() {
  const folder = path.join(work, 'web-conv');
  cpSync(webDir, folder, { recursive: true });
  const model = path.join(folder, 'model.safetensors');
  execFileSync(digitsBinary, ['train', '--layers', 'conv5x5x8,pool2,conv3x3x16s2same,fc32,10', '--epochs', '0', '--out', model], { stdio: 'ignore' });
  const { server, url } = await serveFolder(folder);
  console.log(`a conv network (random weights), served at ${url}`);
  try {
    await withBrowser(async (context) => {
      const page = await openPage(context, url, () => {});
      const readings = [];
      for (const { shape, placement } of drawings().slice(0, 12)) {
        await drawWithMouse(page, shape, placement, SPACING);
        readings.push(await tellTheNumber(page));
        await page.getByRole('button', { name: /Erase/ }).click();
      }
      compareWithNative(model, readings, 'conv');
      await drawWithMouse(page, 4, { left: 0.2, top: 0.1, width: 0.6, height: 0.8 }, SPACING);
      const { reading } = await tellTheNumber(page);
      const maps = reading.activations.filter((layer) => layer.kind === 'conv2d' || layer.kind === 'maxpool2');
      const pictures = await page.locator('#inside canvas').count();
      check(maps.length === 3 && maps.every((layer) => typeof layer.maps === 'string') && pictures >= maps.length + 2,  // + the input and the kernels
        `"Inside the network" gets the conv and pooling maps (${maps.map((l) => l.shape.join('×')).join(', ')}) and draws ${pictures} canvases`);
      await page.locator('#inside').screenshot({ path: path.join(screenshotDir, 'static-conv-inside.png') });
    });
  } finally {
    await stop(server);
  }
}

// ---- main ----

const { server, url } = await serveFolder(webDir);
try {
  const taught = await builtIn(url);
  learnFromExport(taught);
  await convModel();
} catch (error) {
  console.log(`  FAIL  ${error.stack || error}`);
  failures++;
} finally {
  await stop(server);
  rmSync(work, { recursive: true, force: true });
}
console.log(failures ? `${failures} check(s) failed` : `all checks passed; screenshots in ${screenshotDir}`);
process.exit(failures ? 1 : 0);
