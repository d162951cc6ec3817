// automatic-speech-recognition through the built package in headless Chromium (puppeteer-core),
// on WASM and WebGPU (SwiftShader here: slow, so the tiny random models and the shortest clip),
// against Python transformers' `pipeline()` answers (asr.mjs names them), exactly: audio read by
// the browser (decodeAudioData of an OfflineAudioContext at 16 kHz), the models served by the test
// server (on WASM also `language` / `task` and the 90 s clip with `chunk_length_s`; WebGPU one
// case); whisper-tiny.en on one short clip on WASM; a worker pipeline (the engine decodes there)
// with an AbortSignal; bad audio; and the speech demo transcribing a dropped clip with timestamps
// and a recording from a fake microphone.
// Needs `npm run build` first (scripts/test-npm.sh does it), and whisper-tiny.en
// (scripts/fetch-models.sh whisper-tiny.en).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { evaluateWithin, launchBrowser, openPage, problemsBut404, saveScreenshot, testServer } from './helpers.mjs';
import { ASR, SHORT_CLIP, TINY_MODELS, checkTranscription, pipelineCases, tinyCases, tinyReference } from './asr.mjs';

let server;
let browser;

before(async () => {
  server = await testServer();
  // A fake microphone (a beep) that needs no permission prompt, for the speech demo's recorder.
  browser = await launchBrowser({ args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'] });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/**
 * In a page: `cases` ({input: a URL, options}) through one pipeline of `model` (a served path) on
 * `device`; each outcome `{value}` or `{error}`, and how many samples the browser decoded.
 */
async function transcribeInPage(device, model, cases, seconds) {
  const p = await openPage(browser, server.url);
  const out = await evaluateWithin(
    p,
    seconds,
    async (task, device, model, cases) => {
      const { pipeline, read_audio } = await import('/webformers/index.js');
      const asr = await pipeline(task, model, { device });
      const outputs = [];
      for (const c of cases) {
        let streamed = '';
        const options = { ...c.options, callback_function: (t) => (streamed += t) };
        outputs.push(await asr(c.input, options).then((value) => ({ value, streamed }), (e) => ({ error: `${e.code}: ${e.message}` })));
      }
      const samples = (await read_audio(cases[0].input, 16000)).length;
      const used = asr.device;
      await asr.dispose();
      return { device: used, outputs, samples };
    },
    ASR,
    device,
    model,
    cases,
  );
  const problems = problemsBut404(p);
  await p.close();
  return { ...out, problems };
}

const clipUrl = (clip) => `/fixtures/speech/${clip}`;

/**
 * A tiny model's cases on the short clip, served by URL; the multilingual one's with a language
 * and translation too, the English one's the 90 s clip in 30 s chunks.
 */
function pageCases(model) {
  const extra =
    model === 'tiny-whisper-multi'
      ? pipelineCases(model).map((c) => ({ key: JSON.stringify(c.options), options: c.options, expected: c.expected, input: clipUrl(c.clip) }))
      : tinyCases(model, 'long-news')
          .filter((c) => c.key === 'timestamps')
          .map((c) => ({ ...c, key: 'long-news chunked', input: clipUrl('long-news.flac') }));
  return [...tinyCases(model, SHORT_CLIP).map((c) => ({ ...c, input: clipUrl(`${SHORT_CLIP}.flac`) })), ...extra];
}

async function checkInPage(device, model, cases, seconds) {
  const out = await transcribeInPage(device, `/fixtures/whisper/${model}`, cases, seconds);
  assert.equal(out.device, device);
  // read_audio decoded by the browser: the clip's own length (16 kHz in, so no resampling).
  assert.equal(out.samples, tinyReference(model).clips[SHORT_CLIP].samples);
  cases.forEach((c, i) => {
    const o = out.outputs[i];
    assert.ok(!o.error, `${model} ${c.key}: ${o.error}`);
    checkTranscription(o.value, c.expected, `${device} ${model} ${c.key}`);
    // Chunks stream each one's whole text, overlaps included (the merge comes after).
    if (c.options.chunk_length_s) assert.ok(o.streamed.length >= c.expected.text.length, `${model} ${c.key}: streamed ${o.streamed.length} characters`);
    else assert.equal(o.streamed, c.expected.text, `${model} ${c.key}: the streamed text`);
  });
  assert.deepEqual(out.problems, []);
}

describe("tiny random Whisper models in the page on 'wasm' (audio decoded by the browser)", () => {
  for (const model of TINY_MODELS) {
    const cases = pageCases(model);
    test(`${model}: ${cases.map((c) => c.key).join(', ')} as Python's pipeline()`, { timeout: 240_000 }, () => checkInPage('wasm', model, cases, 200));
  }
});

// SwiftShader runs even a 16-wide Whisper slowly (about 50 s for the encoder and 2-3 s a token on
// a loaded 2-core machine): one case, the one that exercises the most (language detection, word
// timestamps from the cross-attention read back from the GPU).
describe("tiny-whisper-multi in the page on 'webgpu' (SwiftShader)", () => {
  const cases = pageCases('tiny-whisper-multi').filter((c) => c.key === 'word');
  test('language detected, word timestamps, as Python\'s pipeline()', { timeout: 420_000 }, () => checkInPage('webgpu', 'tiny-whisper-multi', cases, 400));
});

describe('bad audio in the page rejects with a clear Error, and the pipeline goes on', () => {
  test('no samples, a file that is not audio (URL and Blob), a 404, a number, an empty array', { timeout: 120_000 }, async () => {
    const [plain] = tinyCases('tiny-whisper-en', SHORT_CLIP);
    const p = await openPage(browser, server.url);
    const out = await evaluateWithin(
      p,
      100,
      async (task, url, plain) => {
        const { pipeline } = await import('/webformers/index.js');
        const asr = await pipeline(task, '/fixtures/whisper/tiny-whisper-en', { device: 'wasm' });
        const outcome = (promise) => promise.then(() => 'resolved', (e) => `${e instanceof Error ? '' : 'not an Error '}${e.code}: ${e.message}`);
        const result = {
          empty: await outcome(asr(new Float32Array(0))),
          json: await outcome(asr('/fixtures/asr-pipeline-reference.json')),
          blob: await outcome(asr(new Blob(['this is not audio at all'], { type: 'audio/wav' }))),
          missing: await outcome(asr('/fixtures/speech/no-such-clip.flac')),
          number: await outcome(asr(42)),
          none: await outcome(asr([])),
          after: await asr(url, plain.options),
        };
        await asr.dispose();
        return result;
      },
      ASR,
      clipUrl(`${SHORT_CLIP}.flac`),
      plain,
    );
    assert.match(out.empty, /^input: .*the audio has no samples/);
    assert.match(out.json, /^input: the browser cannot decode this audio file/);
    assert.match(out.blob, /^input: the browser cannot decode this audio file/);
    assert.match(out.missing, /^file: .*HTTP 404/);
    assert.match(out.number, /^input: automatic-speech-recognition takes audio/);
    assert.match(out.none, /^input: automatic-speech-recognition was given an empty array of audio/);
    checkTranscription(out.after, plain.expected, 'tiny-whisper-en after bad input');
    await p.close();
  });
});

describe('whisper-tiny.en in the page on WASM', () => {
  test(`${SHORT_CLIP} with word timestamps as Python's pipeline()`, { timeout: 240_000 }, async () => {
    const c = pipelineCases('whisper-tiny.en', `${SHORT_CLIP}.flac`).find((x) => x.options.return_timestamps === 'word');
    const out = await transcribeInPage('wasm', '/models/whisper-tiny.en', [{ input: clipUrl(c.clip), options: c.options }], 200);
    assert.ok(!out.outputs[0].error, out.outputs[0].error);
    checkTranscription(out.outputs[0].value, c.expected, 'whisper-tiny.en word');
    assert.equal(out.outputs[0].streamed, c.expected.text);
    assert.deepEqual(out.problems, []);
  });
});

describe('a worker pipeline (the engine decodes in the worker)', () => {
  test("tiny-whisper-en: a URL and the window's samples as Python's pipeline(); an AbortSignal stops it", { timeout: 240_000 }, async () => {
    const model = 'tiny-whisper-en';
    const [plain, stamped] = tinyCases(model, SHORT_CLIP);
    const p = await openPage(browser, server.url);
    const out = await evaluateWithin(
      p,
      200,
      async (task, model, url, plain, stamped) => {
        const { workerPipeline, read_audio } = await import('/webformers/index.js');
        const worker = new Worker('/webformers/worker.js', { type: 'module' });
        const asr = await workerPipeline(worker, task, model, { device: 'wasm' });
        const settle = (promise) => promise.then((value) => ({ value }), (e) => ({ error: `${e.code}: ${e.message}` }));
        const fromUrl = await settle(asr(url, stamped.options));
        const fromSamples = await settle(asr(await read_audio(url, 16000), stamped.options));
        // Aborted from the streamed text: the worker stops after that token.
        const controller = new AbortController();
        let pieces = 0;
        const aborted = await settle(
          asr(url, {
            ...plain.options,
            signal: controller.signal,
            callback_function: () => {
              if (++pieces === 3) controller.abort();
            },
          }),
        );
        const after = await settle(asr(url, plain.options));
        const bad = await settle(asr('/fixtures/asr-pipeline-reference.json'));
        await asr.dispose();
        worker.terminate();
        return { fromUrl, fromSamples, aborted, after, bad };
      },
      ASR,
      `/fixtures/whisper/${model}`,
      new URL(clipUrl(`${SHORT_CLIP}.flac`), server.url).href,
      plain,
      stamped,
    );
    checkTranscription(out.fromUrl.value, stamped.expected, `${model} in a worker (URL)`);
    checkTranscription(out.fromSamples.value, stamped.expected, `${model} in a worker (samples)`);
    const full = plain.expected.text;
    const text = out.aborted.value?.text;
    assert.ok(text && text.length < full.length && full.startsWith(text), `aborted: ${JSON.stringify(out.aborted)}`);
    checkTranscription(out.after.value, plain.expected, `${model} in a worker after the abort`);
    assert.match(out.bad.error ?? '', /^input: .*not a WAV, MP3, FLAC/);
    assert.deepEqual(problemsBut404(p), []);
    await p.close();
  });
});

describe('the speech demo', () => {
  // whisper-tiny.en rather than a tiny random model: a random model never stops (448 tokens of
  // gibberish) and Python has no answer for that, while the real one is checked exactly, and
  // costs about 10 s here on WASM.
  test('a dropped file: the transcript and its timestamped segments, as Python gives them (whisper-tiny.en on WASM)', { timeout: 240_000 }, async () => {
    const c = pipelineCases('whisper-tiny.en', `${SHORT_CLIP}.flac`).find((x) => x.options.return_timestamps === true);
    const p = await openPage(browser, `${server.url}demos/speech/?device=wasm&model=/models/whisper-tiny.en`);
    await p.waitForFunction(() => document.body.dataset.state !== 'loading', { timeout: 120_000 });
    // As a user drops a file on the page.
    await p.evaluate(async (url) => {
      const blob = await (await fetch(url)).blob();
      const data = new DataTransfer();
      data.items.add(new File([blob], url.split('/').at(-1), { type: 'audio/flac' }));
      document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    }, clipUrl(c.clip));
    await p.waitForFunction(() => document.body.dataset.runs === '1' || document.body.dataset.state === 'error', { timeout: 200_000 });
    const out = await p.evaluate(() => ({
      state: document.body.dataset.state,
      error: document.getElementById('error').textContent,
      device: document.getElementById('device').dataset.device,
      languageDisabled: document.getElementById('language').disabled,
      transcript: document.getElementById('transcript').textContent,
      chunks: [...document.querySelectorAll('#chunks li')].map((li) => ({
        text: li.querySelector('span').textContent,
        timestamp: [li.dataset.start, li.dataset.end].map((t) => (t === 'null' ? null : Number(t))),
        button: li.querySelector('button').textContent,
      })),
      player: !document.getElementById('player').hidden,
    }));
    assert.equal(out.state, 'ready', out.error);
    assert.equal(out.device, 'wasm');
    assert.ok(out.languageDisabled, 'an English-only model has no language to pick');
    assert.equal(out.transcript, c.expected.text);
    checkTranscription({ text: out.transcript, chunks: out.chunks.map(({ text, timestamp }) => ({ text, timestamp })) }, c.expected, 'the demo');
    assert.match(out.chunks[0].button, /^0:00\.0 → 0:02\.6$/);
    assert.ok(out.player);
    assert.deepEqual(p.problems, []);
    await saveScreenshot(p, 'speech');
    await p.close();
  });

  test('the microphone: recorded, stopped, decoded by the browser and transcribed (tiny-whisper-en, a fake microphone)', { timeout: 120_000 }, async () => {
    const p = await openPage(browser, `${server.url}demos/speech/?device=wasm&model=/fixtures/whisper/tiny-whisper-en`);
    await p.waitForFunction(() => document.body.dataset.state !== 'loading', { timeout: 60_000 });
    assert.equal(await p.evaluate(() => document.getElementById('record').hidden), false, 'no Record button');
    await p.click('#record');
    await p.waitForFunction(() => document.getElementById('record').textContent === 'Stop', { timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await p.click('#record');
    await p.waitForFunction(() => document.body.dataset.runs === '1' || document.body.dataset.state === 'error', { timeout: 100_000 });
    const out = await p.evaluate(() => ({
      state: document.body.dataset.state,
      error: document.getElementById('error').textContent,
      button: document.getElementById('record').textContent,
      player: document.getElementById('player').src,
      transcript: document.getElementById('transcript').textContent,
      chunks: document.querySelectorAll('#chunks li').length,
      timings: document.getElementById('timings').textContent,
    }));
    assert.equal(out.state, 'ready', out.error);
    assert.equal(out.button, 'Record');
    assert.match(out.player, /^blob:/);
    // A random model says something about any sound; the recording's length is in the timings.
    assert.ok(out.transcript.length > 0 && out.chunks > 0, JSON.stringify(out));
    assert.match(out.timings, /^0:0[1-3]\.\d of audio in /);
    assert.deepEqual(p.problems, []);
    await saveScreenshot(p, 'speech-microphone');
    await p.close();
  });
});
