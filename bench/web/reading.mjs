// The time of one reading in the page without a server (docs/app.md, "Without a server"): the
// WebAssembly call that turns the drawing's pixels gray, preprocesses them, runs the network and
// writes the answer as JSON (`wasm_milliseconds`), and the same with the browser decoding the PNG
// first (`milliseconds`). Several folders made by scripts/build-web (say, before and after a
// change) are timed in turns, each round in a fresh page, so that the noise of a shared machine
// falls on all of them alike; the report gives each one's median and 90th percentile over every
// round. Headless Chromium (Debian's), driven by playwright-core from tests/browser.
//
//   node bench/web/reading.mjs [--rounds 5] [--readings 200] [--lean] FOLDER [FOLDER…]
//   (--lean: "activations": false, the answer without the layers' outputs, as the page asks while
//   "Inside the network" is folded)
//   (tests/browser/install installs playwright-core first)
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const { chromium } = createRequire(path.join(here, '../../tests/browser/package.json'))('playwright-core');

const args = process.argv.slice(2);
let rounds = 5, readings = 200, lean = false;
const folders = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--rounds') rounds = Number(args[++i]);
  else if (args[i] === '--readings') readings = Number(args[++i]);
  else if (args[i] === '--lean') lean = true;
  else folders.push(args[i]);
}
if (folders.length === 0 || !(rounds >= 1) || !(readings > 20)) {
  console.error('usage: node bench/web/reading.mjs [--rounds 5] [--readings 200] FOLDER [FOLDER…]');
  process.exit(2);
}

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
    server.stderr.on('data', () => {});
  });
}

// The drawing of static-page.test.mjs's timing: a 7 in an 18-pixel white pen on black, 280×280.
// `readings` readings of it through the page's own fetch('/api/predict') (wasm-mode.js answers it),
// the first 20 untimed.
async function timeOnce(browser, url) {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector('#kept-text')?.textContent.includes('runs without a server'), null, { timeout: 30000 });
  const times = await page.evaluate(async ([count, activations]) => {
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
    for (let i = 0; i < count; i++) {
      const reading = await (await fetch('/api/predict', { method: 'POST', body: JSON.stringify({ image, activations }) })).json();
      if (reading.digit !== 7) throw new Error(`the drawing read as ${reading.digit}, not 7`);
      if (i >= 20) whole.push(reading.milliseconds), wasm.push(reading.wasm_milliseconds);
    }
    return { whole, wasm };
  }, [readings, !lean]);
  await page.close();
  return times;
}

const at = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
};

const served = await Promise.all(folders.map(serveFolder));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
const results = folders.map(() => ({ whole: [], wasm: [], medians: [] }));
try {
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < folders.length; k++) {
      const i = (k + round) % folders.length;  // a different one first each round
      const { whole, wasm } = await timeOnce(browser, served[i].url);
      results[i].whole.push(...whole);
      results[i].wasm.push(...wasm);
      results[i].medians.push(at(wasm, 0.5));
    }
  }
} finally {
  await browser.close();
  for (const { server } of served) server.kill();
}
const load = (await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
console.log(`${rounds} rounds of ${readings - 20} timed readings each, ${lean ? 'the lean answer' : 'the full answer'}, load average ${load} at the end`);
folders.forEach((folder, i) => {
  const r = results[i];
  console.log(`${folder}: WebAssembly call median ${at(r.wasm, 0.5).toFixed(2)} ms, 10th percentile ${at(r.wasm, 0.1).toFixed(2)} ms, ` +
    `90th ${at(r.wasm, 0.9).toFixed(2)} ms ` +
    `(round medians ${r.medians.map((m) => m.toFixed(2)).join(' ')}); with the PNG decoded by the browser: median ${at(r.whole, 0.5).toFixed(2)} ms`);
});
