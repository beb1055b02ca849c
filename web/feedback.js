// digits: telling the network whether it was right. After each announced reading (a finished
// stroke, Tell the Number, Enter) the page asks "Is it a 7?": Right stores the drawing with that
// label; Wrong asks which digit it is (buttons, or the digit's key). With a model that has "not a
// digit" (an eleventh output, label 10), Wrong also offers "Not a digit" (or the N key), and a
// reading of "not a digit" is asked about as such. The server keeps every
// judgement (POST /api/feedback) and learns from the corrections in the background; this file then
// watches GET /api/model until a new model version has learned from the correction, or the guard
// has turned the update down, and says which. docs/api.md describes both endpoints.
'use strict';

(() => {
  const POLL_MS = 1000;         // how often to ask whether the model has learned
  const POLL_GIVE_UP_MS = 90000;

  const judge = document.getElementById('judge');
  const ask = document.getElementById('judge-ask');
  const question = document.getElementById('judge-question');
  const rightButton = document.getElementById('judge-right');
  const wrongButton = document.getElementById('judge-wrong');
  const pick = document.getElementById('judge-pick');
  const digitButtons = document.getElementById('judge-digits');
  const backButton = document.getElementById('judge-back');
  const statusLine = document.getElementById('feedback-status');
  const versionLine = document.getElementById('model-version');

  let current = null;   // { reading, drawing } of the reading being judged
  let sending = false;
  let pollTimer = null;

  // An opaque id for this browser, so the server can limit how fast one client sends judgements.
  // getRandomValues works on plain http too (randomUUID needs a secure context).
  function clientId() {
    try {
      let id = localStorage.getItem('digits-client-id');
      if (!id) {
        const bytes = crypto.getRandomValues(new Uint8Array(12));
        id = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
        localStorage.setItem('digits-client-id', id);
      }
      return id;
    } catch (error) {
      return undefined;  // storage blocked: the server keys its limit on the address alone
    }
  }

  const NOT_A_DIGIT = 10;  // the label of "not a digit" (src/digits/classes.hpp)

  for (let digit = 0; digit < 10; digit++) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'button digit-key';
    button.textContent = String(digit);
    button.dataset.label = String(digit);
    button.setAttribute('aria-keyshortcuts', String(digit));
    button.addEventListener('click', () => send(digit));
    digitButtons.append(button);
  }
  const noneButton = document.createElement('button');
  noneButton.type = 'button';
  noneButton.className = 'button digit-key none-key';
  noneButton.textContent = 'Not a digit';
  noneButton.dataset.label = String(NOT_A_DIGIT);
  noneButton.setAttribute('aria-keyshortcuts', 'N');
  noneButton.addEventListener('click', () => send(NOT_A_DIGIT));
  digitButtons.append(noneButton);

  // What a reading showed, as a label: its digit, or 10 for "not a digit".
  const shownLabel = (reading) => (reading.not_a_digit ? NOT_A_DIGIT : reading.digit);
  // Whether the model can learn "not a digit": it has that output (docs/api.md).
  const canSayNone = (reading) => reading.not_a_digit_probability != null;
  const saidAs = (label) => (label === NOT_A_DIGIT ? 'not a digit' : `a ${label}`);

  function hide() {
    current = null;
    judge.hidden = true;
  }

  function setBusy(busy) {
    sending = busy;
    for (const button of judge.querySelectorAll('button')) button.disabled = busy;
  }

  function say(message, tone) {
    statusLine.textContent = message;
    statusLine.dataset.tone = tone || '';
  }

  // A new announced reading: ask about it. A live reading means the drawing is still changing, so
  // the question waits for the stroke to finish.
  document.addEventListener('digits:reading', (event) => {
    const { reading, announce, drawing } = event.detail;
    if (!announce) {
      hide();
      return;
    }
    current = { reading, drawing };
    question.textContent = reading.not_a_digit ? 'Is it something other than a digit?' : `Is it a ${reading.digit}?`;
    ask.hidden = false;
    pick.hidden = true;
    judge.hidden = false;
    setBusy(false);
  });
  document.addEventListener('digits:cleared', hide);

  rightButton.addEventListener('click', () => current && send(shownLabel(current.reading)));
  wrongButton.addEventListener('click', () => {
    if (!current) return;
    ask.hidden = true;
    pick.hidden = false;
    // Every digit but the one the network said, and "Not a digit" when the model has it and did
    // not say it; focus the first so the keyboard can go on.
    const shown = shownLabel(current.reading);
    for (const button of digitButtons.children) {
      const label = Number(button.dataset.label);
      button.hidden = label === shown || (label === NOT_A_DIGIT && !canSayNone(current.reading));
    }
    digitButtons.querySelector('button:not([hidden])').focus({ preventScroll: true });
  });

  // Wrong pressed by mistake: back to the question.
  backButton.addEventListener('click', () => {
    if (!current) return;
    pick.hidden = true;
    ask.hidden = false;
    wrongButton.focus({ preventScroll: true });
  });

  // A digit key while the question is open says which digit it is: the label for a wrong
  // prediction, or the same digit, which is a "right". N says "not a digit", when the model has it.
  document.addEventListener('keydown', (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || !current || judge.hidden || sending) return;
    if (/^[0-9]$/.test(event.key)) {
      event.preventDefault();
      send(Number(event.key));
    } else if ((event.key === 'n' || event.key === 'N') && canSayNone(current.reading)) {
      event.preventDefault();
      send(NOT_A_DIGIT);
    }
  });

  async function send(label) {
    if (!current || sending) return;
    const { reading, drawing } = current;
    setBusy(true);
    say('Saving your answer…');
    try {
      const response = await fetch('/api/feedback', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ image: drawing, label, client_id: clientId() }),
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 201) {
        hide();
        stored(body, reading);
      } else if (response.status === 429) {
        const wait = Number(response.headers.get('Retry-After')) || 60;
        say(`That is a lot of answers at once: please wait ${wait} s before the next.`, 'bad');
        setBusy(false);
      } else {
        say(body.error ? `Not saved: ${body.error.message}` : `Not saved: the server answered ${response.status}.`, 'bad');
        setBusy(false);
      }
    } catch (error) {
      say('Not saved: cannot reach the digits server. Is it still running?', 'bad');
      setBusy(false);
    }
  }

  // What the server stored, in words; then, for a correction, watch for the model learning it.
  function stored(judgement, reading) {
    const shown = shownLabel(reading);
    const said = judgement.label === shown ? `you said it is ${saidAs(judgement.label)}, as the network read it`
      : shown === NOT_A_DIGIT ? `you said it is ${saidAs(judgement.label)}, which the network did not take for a digit`
        : `you said it is ${saidAs(judgement.label)}, not a ${shown}`;
    if (judgement.learning === 'queued') {
      say(`Saved (judgement ${judgement.id}): ${said}. The network is learning from it…`, 'pending');
      watchLearning(judgement.id);
    } else if (judgement.learning === 'off') {
      say(`Saved (judgement ${judgement.id}): ${said}. Learning is switched off on this server, so the model stays as it is.`, 'good');
    } else {
      say(`Saved (judgement ${judgement.id}): ${said}. Thank you.`, 'good');
    }
  }

  function watchLearning(id) {
    clearTimeout(pollTimer);
    const started = performance.now();
    const poll = async () => {
      try {
        const model = await (await fetch('/api/model')).json();
        showVersion(model);
        const version = model.version || {};
        const attempt = model.learning && model.learning.last_attempt;
        if (version.last_judgement_id >= id) {
          const validation = version.validation_percent != null ? ` (${version.validation_percent.toFixed(2)}% right on 5,000 held-out MNIST digits)` : '';
          say(`Learned: model version ${version.number} has learned from judgement ${id}${validation}.`, 'good');
          // app.js reads the drawing again, if it is still there, with the new version.
          document.dispatchEvent(new CustomEvent('digits:model-changed', { detail: { version: version.number } }));
          return;
        }
        if (attempt && !attempt.accepted && attempt.up_to_judgement_id >= id) {
          say(`Saved, but not learned: the update was turned down (${attempt.reason}). The model stays at version ${version.number ?? 0}.`, 'unsure');
          return;
        }
      } catch (error) {
        // The server may be restarting; keep asking until the deadline.
      }
      if (performance.now() - started > POLL_GIVE_UP_MS) {
        say(`Saved (judgement ${id}). The model has not learned from it yet; it will when the server gets to it.`, 'pending');
        return;
      }
      pollTimer = setTimeout(poll, POLL_MS);
    };
    pollTimer = setTimeout(poll, POLL_MS);
  }

  function showVersion(model) {
    if (!model.version) return;
    const v = model.version;
    const learned = v.corrections_learned ? `, learned from ${v.corrections_learned} correction${v.corrections_learned === 1 ? '' : 's'}` : '';
    versionLine.textContent = v.number > 0 ? `Model version ${v.number}${learned}.` : 'Model version 0: as trained, before any corrections.';
    versionLine.hidden = false;
  }

  // A judged number (number.js): one judgement a digit, each its own ink as a PNG, sent in turn
  // like a single digit's; then, if any was a correction, the same watch for the model learning.
  // Answers 'digits:number-judged' with how many were saved.
  document.addEventListener('digits:number', hide);
  document.addEventListener('digits:judge-number', async (event) => {
    const { parts, text, read } = event.detail;
    const ids = [];
    let queued = false;
    let problem = null;
    say(`Saving your answer: ${parts.length} digit${parts.length === 1 ? '' : 's'}…`);
    for (const part of parts) {
      try {
        const response = await fetch('/api/feedback', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ image: part.image, label: part.label, client_id: clientId() }),
        });
        const body = await response.json().catch(() => ({}));
        if (response.status === 429) {
          problem = `that is a lot of answers at once: please wait ${Number(response.headers.get('Retry-After')) || 60} s before the next`;
        } else if (response.status !== 201) {
          problem = body.error ? body.error.message : `the server answered ${response.status}`;
        } else {
          ids.push(body.id);
          queued = queued || body.learning === 'queued';
        }
      } catch (error) {
        problem = 'cannot reach the digits server. Is it still running?';
      }
      if (problem) break;
    }
    const corrected = parts.filter((part) => part.label !== part.predicted).length;
    const said = corrected === 0 ? `you said it is ${text}, as the network read it`
      : `you said it is ${text}, not ${read} (${corrected} digit${corrected === 1 ? '' : 's'} corrected)`;
    const which = ids.length === 1 ? `judgement ${ids[0]}` : `judgements ${ids[0]}–${ids[ids.length - 1]}`;
    if (problem) {
      say(ids.length ? `Saved ${ids.length} of ${parts.length} digits (${which}), then not: ${problem}.` : `Not saved: ${problem}.`, 'bad');
    } else if (queued) {
      say(`Saved ${which}, one a digit: ${said}. The network is learning from them…`, 'pending');
      watchLearning(ids[ids.length - 1]);
    } else {
      say(`Saved ${which}, one a digit: ${said}. Thank you.`, 'good');
    }
    document.dispatchEvent(new CustomEvent('digits:number-judged', { detail: { saved: ids.length, count: parts.length } }));
  });

  fetch('/api/model').then((r) => r.json()).then(showVersion).catch(() => {});
})();
