// Drawing digits on the page's pad (#pad) as a person would: shapes as strokes in a unit box,
// placed anywhere on the pad, drawn with mouse (or finger) events along each stroke. Shared by
// draw-digits.test.mjs (the served page) and static-page.test.mjs (the page without a server).

// An ellipse's outline from angle `from` to `to` (a whole one by default, starting at the top).
export function ellipse(cx, cy, rx, ry, steps = 48, from = -Math.PI / 2, to = (3 * Math.PI) / 2) {
  const points = [];
  for (let i = 0; i <= steps; i++) {
    const t = from + ((to - from) * i) / steps;
    points.push([cx + rx * Math.cos(t), cy + ry * Math.sin(t)]);
  }
  return points;
}

// Digit shapes as strokes in a unit box, (0, 0) top left. Object.keys gives the digits first, in
// order, then the named styles in the order written here (static-page's 100 drawings cycle through
// them in that order).
export const SHAPES = {
  1: [[[0.35, 0.22], [0.55, 0.04], [0.55, 0.96]]],
  7: [[[0.12, 0.06], [0.88, 0.06], [0.42, 0.96]]],
  0: [ellipse(0.5, 0.5, 0.36, 0.46)],
  // Styles MNIST's writers hardly used, for the feedback tests to teach: the first the model gets
  // wrong is the one corrected.
  'digital 6': [[[0.85, 0.05], [0.15, 0.05], [0.15, 0.95], [0.85, 0.95], [0.85, 0.5], [0.15, 0.5]]],
  'digital 9': [[[0.85, 0.5], [0.15, 0.5], [0.15, 0.05], [0.85, 0.05], [0.85, 0.95], [0.15, 0.95]]],
  'slashed 0': [ellipse(0.5, 0.5, 0.32, 0.45), [[0.85, 0.0], [0.15, 1.0]]],
  // The seven of the Eastern Arabic digits, ٧: a V. MNIST has none; the built-in model reads it as 4.
  'Eastern Arabic 7': [[[0.1, 0.05], [0.5, 0.95], [0.9, 0.05]]],
  // More digits, drawn as one would with a mouse.
  2: [[...ellipse(0.5, 0.3, 0.32, 0.25, 24, -Math.PI, Math.PI / 4), [0.15, 0.95], [0.9, 0.95]]],
  3: [[...ellipse(0.48, 0.27, 0.3, 0.22, 24, -Math.PI * 0.85, Math.PI / 2), ...ellipse(0.48, 0.72, 0.34, 0.24, 24, -Math.PI / 2, Math.PI * 0.85)]],
  4: [[[0.62, 0.05], [0.1, 0.65], [0.92, 0.65]], [[0.65, 0.3], [0.65, 0.98]]],
  5: [[[0.85, 0.05], [0.25, 0.05], [0.2, 0.45], ...ellipse(0.5, 0.68, 0.35, 0.28, 24, -Math.PI * 0.75, Math.PI * 0.85)]],
  8: [[...ellipse(0.5, 0.27, 0.26, 0.22, 32, Math.PI / 2, Math.PI * 2.5), ...ellipse(0.5, 0.72, 0.32, 0.25, 32, -Math.PI / 2, Math.PI * 1.5)]],
  'plain 6': [[[0.7, 0.05], ...ellipse(0.5, 0.68, 0.3, 0.28, 32, Math.PI, 3 * Math.PI)]],
  'plain 9': [[...ellipse(0.5, 0.3, 0.3, 0.26, 32, 0, 2 * Math.PI), [0.8, 0.3], [0.72, 0.98]]],
};
const DIGIT_OF = { 'digital 6': 6, 'digital 9': 9, 'slashed 0': 0, 'Eastern Arabic 7': 7, 'plain 6': 6, 'plain 9': 9 };
// The digit a shape is (a number for the plain digits' keys).
export const digitOf = (shape) => DIGIT_OF[shape] ?? Number(shape);

// Points every `spacing` pixels along a polyline, so the page sees a dense, realistic stream.
export function densify(points, spacing) {
  const dense = [points[0]];
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1];
    const [x1, y1] = points[i];
    const steps = Math.max(1, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / spacing));
    for (let s = 1; s <= steps; s++) dense.push([x0 + ((x1 - x0) * s) / steps, y0 + ((y1 - y0) * s) / steps]);
  }
  return dense;
}

// A shape's strokes in page pixels. placement: where its unit box lands, as fractions of the pad
// {left, top, width, height}; a point every `spacing` pixels.
export async function strokesOnPad(page, shape, placement, spacing = 4) {
  const box = await page.locator('#pad').boundingBox();
  return SHAPES[shape].map((stroke) =>
    densify(
      stroke.map(([u, v]) => [
        box.x + (placement.left + u * placement.width) * box.width,
        box.y + (placement.top + v * placement.height) * box.height,
      ]),
      spacing,
    ),
  );
}

// Each stroke's mouse events are the ones page.mouse.move/down/up send (Input.dispatchMouseEvent,
// with the same fields), but sent all at once rather than each after the last one's answer, as a
// real mouse reports faster than the page paints: Chromium coalesces the moves of a frame into one
// pointermove whose getCoalescedEvents() carry every point, so the page gets the same points and
// paints the same picture (checked pixel for pixel against page.mouse, 28 shapes and sizes), but
// repaints and reads live a few times a stroke instead of at every point. Under load that made a
// drawing ten times quicker. page.mouse is left where it was: the next click moves it first.
const sessions = new WeakMap();  // page → its DevTools session
export async function drawWithMouse(page, shape, placement, spacing = 4) {
  if (!sessions.has(page)) sessions.set(page, await page.context().newCDPSession(page));
  const cdp = sessions.get(page);
  await page.locator('#pad').scrollIntoViewIfNeeded();  // a button clicked further down may have scrolled it away
  for (const stroke of await strokesOnPad(page, shape, placement, spacing)) {
    const mouse = (type, [x, y], pressed) => cdp.send('Input.dispatchMouseEvent',
      { type, x, y, button: type === 'mouseMoved' && !pressed ? 'none' : 'left', buttons: pressed ? 1 : 0, force: pressed ? 0.5 : 0,
        ...(type === 'mouseMoved' ? {} : { clickCount: 1 }) });
    const [first, last] = [stroke[0], stroke[stroke.length - 1]];
    await Promise.all([
      mouse('mouseMoved', first, false),
      mouse('mousePressed', first, true),
      ...stroke.slice(1).map((point) => mouse('mouseMoved', point, true)),
      mouse('mouseReleased', last, false),
    ]);
  }
}

// The same with a finger on a touch screen, through the Chrome DevTools Protocol session `cdp`.
export async function drawWithFinger(page, cdp, shape, placement) {
  for (const stroke of await strokesOnPad(page, shape, placement)) {
    const touch = ([x, y]) => ({ touchPoints: [{ x, y, radiusX: 4, radiusY: 4, force: 1, id: 1 }] });
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', ...touch(stroke[0]) });
    for (const point of stroke.slice(1)) await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', ...touch(point) });
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  }
}
