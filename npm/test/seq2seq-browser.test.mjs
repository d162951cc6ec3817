// translation, summarization and text2text-generation through the built package in headless
// Chromium (puppeteer-core), on WASM and WebGPU (SwiftShader here: slow, so few cases), against
// Python transformers 4.57.6's `pipeline()` answers for the tiny random Marian, BART, M2M100,
// NLLB, T5 and Flan-T5 models (tests/fixtures/seq2seq/reference.json, seq2seq.mjs), exactly:
// every case of every model on WASM (greedy and beam search, arrays of texts, language pairs),
// output and streamed text; on WebGPU a greedy and a beam case of Marian and one case of each
// other architecture; a worker pipeline (streamed text, the cut text's warning and an
// AbortSignal crossing the worker boundary); bad input; and the translate demo
// (demos/translate.html) translating typed text, streamed, on tiny-marian, and its Summarize tab
// summarizing a pasted long article on tiny-bart, with the cut-text warning shown.
// Needs `npm run build` first (scripts/test-npm.sh does it).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { evaluateWithin, launchBrowser, openPage, problemsBut404, saveScreenshot, testServer } from './helpers.mjs';
import { MAX_POSITIONS, MODELS, casesOf, checkCase, isLong, labelOf, maxPositionsOf, textOf } from './seq2seq.mjs';

let server;
let browser;

before(async () => {
  server = await testServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const modelUrl = (model) => `/fixtures/seq2seq/${model}`;

/**
 * In a page: `cases` ({task, input, options}) through pipelines of `model` on `device` (one per
 * task); each outcome `{value, streamed, warnings}` or `{error}`.
 */
async function runInPage(device, model, cases, seconds) {
  const p = await openPage(browser, server.url);
  const out = await evaluateWithin(
    p,
    seconds,
    async (device, model, cases) => {
      const { pipeline } = await import('/webformers/index.js');
      const pipes = {};
      const outputs = [];
      let used = null;
      for (const c of cases) {
        pipes[c.task] ??= await pipeline(c.task, model, { device });
        used = pipes[c.task].device;
        let streamed = '';
        const warnings = [];
        const options = { ...c.options, callback_function: (t) => (streamed += t), warning_callback: (w) => warnings.push(w.message) };
        outputs.push(await pipes[c.task](c.input, options).then((value) => ({ value, streamed, warnings }), (e) => ({ error: `${e.code}: ${e.message}` })));
      }
      for (const pipe of Object.values(pipes)) await pipe.dispose();
      return { device: used, outputs };
    },
    device,
    modelUrl(model),
    cases.map(({ task, input, options }) => ({ task, input, options })),
  );
  const problems = problemsBut404(p);
  await p.close();
  return { ...out, problems };
}

async function checkInPage(device, model, cases, seconds) {
  const out = await runInPage(device, model, cases, seconds);
  assert.equal(out.device, device);
  cases.forEach((c, i) => {
    const got = out.outputs[i];
    checkCase(got, c, `${device} ${labelOf(c)}`);
    const long = (Array.isArray(c.input) ? c.input : [c.input]).filter(isLong).length;
    assert.equal(got.warnings.length, long, `${labelOf(c)}: ${JSON.stringify(got.warnings)}`);
    for (const w of got.warnings) assert.match(w, new RegExp(`^${c.task}: the text is \\d+ tokens long; only its first ${maxPositionsOf(model)} `));
  });
  assert.deepEqual(out.problems, []);
}

describe("the tiny models in the page on 'wasm'", () => {
  for (const model of MODELS) {
    const cases = casesOf(model);
    test(`${model}: its ${cases.length} cases (greedy, beams, arrays) as Python's pipeline()`, { timeout: 240_000 }, () => checkInPage('wasm', model, cases, 200));
  }
});

// SwiftShader is slow: one greedy case and one beam case of tiny-marian, one case of each other
// architecture (T5's shader path adds the relative position bias, Flan-T5's the gated GELU).
describe("each architecture in the page on 'webgpu' (SwiftShader)", () => {
  const short = 'The cat sat on the mat.';
  const greedy = (c) => c.input === short && !c.options.num_beams && !c.options.max_new_tokens;
  const picks = {
    'tiny-marian': (c) => c.task === 'translation' && c.input === short && (!c.options.num_beams || c.options.num_beams === 3) && !c.options.max_new_tokens,
    'tiny-bart': (c) => c.task === 'summarization' && greedy(c),
    'tiny-nllb': (c) => greedy(c) && c.options.tgt_lang === 'fra_Latn',
    'tiny-t5': (c) => c.task === 'summarization' && greedy(c),
    'tiny-flan-t5': (c) => c.task === 'summarization' && c.input === short && c.options.num_beams === 2,
  };
  for (const [model, pick] of Object.entries(picks)) {
    const cases = casesOf(model).filter(pick);
    test(`${model}: ${cases.map((c) => JSON.stringify(c.options)).join(', ')} as Python's pipeline()`, { timeout: 420_000 }, async () => {
      assert.equal(cases.length, model === 'tiny-marian' ? 2 : 1, `${model}: the picked cases`);
      await checkInPage('webgpu', model, cases, 400);
    });
  }
});

describe('a worker pipeline', () => {
  test('tiny-marian: output and streamed text as Python\'s pipeline(), the warning and an AbortSignal across the worker', { timeout: 240_000 }, async () => {
    const greedy = casesOf('tiny-marian').filter((c) => c.task === 'translation' && typeof c.input === 'string' && Object.keys(c.options).length === 0);
    const short = greedy[0];
    const long = greedy.find((c) => isLong(c.input));
    const p = await openPage(browser, server.url);
    const out = await evaluateWithin(
      p,
      200,
      async (model, short, long) => {
        const { workerPipeline } = await import('/webformers/index.js');
        const worker = new Worker('/webformers/worker.js', { type: 'module' });
        const translator = await workerPipeline(worker, 'translation_en_to_de', model, { device: 'wasm' });
        const settle = (promise) => promise.then((value) => ({ value }), (e) => ({ error: `${e.code}: ${e.message}` }));
        let streamed = '';
        const plain = await settle(translator(short, { callback_function: (t) => (streamed += t) }));
        const warnings = [];
        const cut = await settle(translator(long, { warning_callback: (w) => warnings.push(w) }));
        // Already aborted: the interrupt reaches the worker before the call. (Aborting mid-way
        // races the tiny model, which is done before the abort crosses back; seq2seq-node checks it.)
        const aborted = await settle(translator(long, { signal: AbortSignal.abort(), num_beams: 2, warning_callback: () => {} }));
        const afterAbort = await settle(translator(short));
        const empty = await settle(translator(''));
        const beams = await settle(translator(short, { num_beams: 0 }));
        await translator.dispose();
        worker.terminate();
        return { task: translator.task, plain, streamed, cut, warnings, aborted, afterAbort, empty, beams };
      },
      modelUrl('tiny-marian'),
      short.input,
      long.input,
    );
    assert.equal(out.task, 'translation');
    assert.deepEqual(out.plain.value, short.output);
    assert.equal(out.streamed, textOf(short.output[0]));
    assert.deepEqual(out.cut.value, long.output);
    assert.equal(out.warnings.length, 1, JSON.stringify(out.warnings));
    assert.equal(out.warnings[0].type, 'warning');
    assert.match(out.warnings[0].message, /^translation: the text is \d+ tokens long; only its first 64 /);
    assert.deepEqual(out.aborted.value, [{ translation_text: '' }], JSON.stringify(out.aborted));
    assert.deepEqual(out.afterAbort.value, short.output);
    assert.match(out.empty.error ?? '', /^input: .*translation: the text is empty/);
    assert.match(out.beams.error ?? '', /^input: .*num_beams must be at least 1/);
    assert.deepEqual(problemsBut404(p), []);
    await p.close();
  });
});

describe('bad input in the page rejects with the engine\'s message, and the pipeline goes on', () => {
  test('an empty text, num_beams 0, a number, options that are not an object', { timeout: 120_000 }, async () => {
    const c = casesOf('tiny-bart').find((x) => x.task === 'summarization' && typeof x.input === 'string' && Object.keys(x.options).length === 0);
    const p = await openPage(browser, server.url);
    const out = await evaluateWithin(
      p,
      100,
      async (model, input) => {
        const { pipeline } = await import('/webformers/index.js');
        const summarizer = await pipeline('summarization', model, { device: 'wasm' });
        const outcome = (promise) => promise.then(() => 'resolved', (e) => `${e instanceof Error ? '' : 'not an Error '}${e.code}: ${e.message}`);
        const result = {
          empty: await outcome(summarizer('')),
          beams: await outcome(summarizer(input, { num_beams: 0 })),
          number: await outcome(summarizer(42)),
          options: await outcome(summarizer(input, 3)),
          after: await summarizer(input),
        };
        await summarizer.dispose();
        return result;
      },
      modelUrl('tiny-bart'),
      c.input,
    );
    assert.match(out.empty, /^input: .*summarization: the text is empty: there is nothing to summarize/);
    assert.match(out.beams, /^input: .*num_beams must be at least 1/);
    assert.match(out.number, /^input: .*summarization takes a string or an array of strings/);
    assert.match(out.options, /^input: the call's options must be an object/);
    assert.deepEqual(out.after, c.output);
    assert.deepEqual(problemsBut404(p), []);
    await p.close();
  });
});

describe('the translate demo', () => {
  test('typed text translated in the worker, streamed, as Python gives it (tiny-marian on WASM); no language pickers for a one-pair model', { timeout: 240_000 }, async () => {
    const c = casesOf('tiny-marian').find((x) => x.task === 'translation' && x.input === 'The cat sat on the mat.' && Object.keys(x.options).length === 0);
    const p = await openPage(browser, `${server.url}demos/translate.html?device=wasm&model=${modelUrl('tiny-marian')}`);
    await p.waitForFunction(() => document.body.dataset.state !== 'loading', { timeout: 120_000 });
    assert.equal(await p.evaluate(() => document.body.dataset.state), 'ready', await p.evaluate(() => document.getElementById('error').textContent));
    // Every streamed piece is seen: the output's text after each change.
    await p.evaluate(() => {
      window.seen = [];
      new MutationObserver(() => window.seen.push(document.getElementById('output').textContent)).observe(document.getElementById('output'), {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    await p.evaluate((text) => {
      document.getElementById('source').value = text;
    }, c.input);
    await p.click('#translate');
    await p.waitForFunction(() => document.body.dataset.runs === '1' || document.body.dataset.state === 'error', { timeout: 200_000 });
    const out = await p.evaluate(() => ({
      state: document.body.dataset.state,
      error: document.getElementById('error').textContent,
      device: document.getElementById('device').dataset.device,
      output: document.getElementById('output').textContent,
      pickers: !document.getElementById('languages').hidden,
      seen: window.seen,
    }));
    assert.equal(out.state, 'ready', out.error);
    assert.equal(out.device, 'wasm');
    assert.equal(out.output, textOf(c.output[0]));
    assert.equal(out.pickers, false, 'a one-pair model has no languages to pick');
    // Streamed: the output grew through prefixes of the final text.
    const growing = out.seen.filter((t) => t.length > 0 && t.length < out.output.length);
    assert.ok(growing.length >= 2 && growing.every((t) => out.output.startsWith(t)), JSON.stringify(out.seen));
    assert.deepEqual(p.problems, []);
    await saveScreenshot(p, 'translate');
    await p.close();
  });

  test('the Summarize tab: a pasted long article summarized (tiny-bart), streamed, and the page says it was cut', { timeout: 240_000 }, async () => {
    const c = casesOf('tiny-bart').find((x) => x.task === 'summarization' && typeof x.input === 'string' && isLong(x.input) && Object.keys(x.options).length === 0);
    const p = await openPage(browser, `${server.url}demos/translate.html?device=wasm&model=${modelUrl('tiny-marian')}&summary-model=${modelUrl('tiny-bart')}`);
    await p.waitForFunction(() => document.body.dataset.state !== 'loading', { timeout: 120_000 });
    await p.click('#tab-summarize');
    assert.deepEqual(await p.evaluate(() => [document.getElementById('summarize-pane').hidden, document.getElementById('translate-pane').hidden]), [false, true]);
    await p.evaluate((text) => {
      document.getElementById('article').value = text;
    }, c.input);
    await p.click('#summarize');
    await p.waitForFunction(() => document.body.dataset.runs === '1' || document.body.dataset.state === 'error', { timeout: 200_000 });
    const out = await p.evaluate(() => ({
      state: document.body.dataset.state,
      error: document.getElementById('error').textContent,
      model: document.getElementById('summary-model').textContent,
      summary: document.getElementById('summary').textContent,
      warning: document.getElementById('summary-warning').hidden ? null : document.getElementById('summary-warning').textContent,
    }));
    assert.equal(out.state, 'ready', out.error);
    assert.equal(out.model, modelUrl('tiny-bart'));
    assert.equal(out.summary, textOf(c.output[0]));
    assert.match(out.warning ?? '', new RegExp(`^summarization: the text is \\d+ tokens long; only its first ${MAX_POSITIONS} `));
    assert.deepEqual(p.problems, []);
    await saveScreenshot(p, 'translate-summarize');
    await p.close();
  });

  test('without ?model: /models/opus-mt-en-fr, or the tiny model standing in with a note', { timeout: 120_000 }, async () => {
    const p = await openPage(browser, `${server.url}demos/translate.html?device=wasm`);
    await p.waitForFunction(() => document.body.dataset.state !== 'loading', { timeout: 100_000 });
    const out = await p.evaluate(() => ({
      state: document.body.dataset.state,
      error: document.getElementById('error').textContent,
      model: document.getElementById('model').textContent,
      note: document.getElementById('note').hidden ? null : document.getElementById('note').textContent,
    }));
    assert.equal(out.state, 'ready', out.error);
    if (out.model === '/models/opus-mt-en-fr') assert.equal(out.note, null);
    else {
      assert.equal(out.model, modelUrl('tiny-marian'));
      assert.match(out.note ?? '', /^\/models\/opus-mt-en-fr could not be loaded .*a tiny random Marian model, instead/);
    }
    assert.deepEqual(problemsBut404(p), []);
    await p.close();
  });
});
