// automatic-speech-recognition through the built package's `pipeline()` in Node, on WASM (the
// engine decodes the files): the tiny random Whisper models and whisper-tiny.en against Python
// transformers' `pipeline()` answers (asr.mjs names them), exactly: text, segment and word
// timestamps, `language` / `task` on the multilingual model, `chunk_length_s` on a 90 s clip;
// every audio input Node takes (a path, a file: URL, a Float32Array at 16 kHz, a RawAudio, an
// array of them); an AbortSignal or an InterruptableStoppingCriteria stopping a transcription;
// bad input.
// Needs `npm run build` first (scripts/test-npm.sh does it), and whisper-tiny.en
// (scripts/fetch-models.sh whisper-tiny.en).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { NODE_DEVICES, deviceLabel, distDir, fixturesDir, modelsDir, rejectsWith } from './helpers.mjs';
import { ASR, SHORT_CLIP, TINY_MODELS, checkTranscription, pipelineCases, speechDir, tinyCases, tinyReference, whisperDir } from './asr.mjs';

const { pipeline, read_audio, RawAudio, InterruptableStoppingCriteria, WebformersError } = await import(path.join(distDir, 'index.js'));

const clipPath = (name) => path.join(speechDir, `${name}.flac`);

const rejects = (promise, pattern, code) => rejectsWith(WebformersError, promise, pattern, code);

for (const device of NODE_DEVICES) {
  for (const model of TINY_MODELS) {
    describe(`${model} on ${deviceLabel(device)} in Node`, () => {
      let asr;
      before(async () => {
        asr = await pipeline(ASR, path.join(whisperDir, model), { device });
      });
      after(() => asr?.dispose());

      test(`${SHORT_CLIP}: text, segment and word timestamps as Python's pipeline()`, async () => {
        assert.equal(asr.device, device);
        // The model's facts, as the speech demo reads them.
        assert.equal(asr.multilingual, model === 'tiny-whisper-multi');
        assert.equal(asr.sampling_rate, 16000);
        assert.equal(asr.num_mel_bins, model === 'tiny-whisper-multi' ? 128 : 80);
        for (const c of tinyCases(model, SHORT_CLIP)) {
          checkTranscription(await asr(clipPath(SHORT_CLIP), c.options), c.expected, `${model} ${c.key}`);
        }
      });

      if (model === 'tiny-whisper-multi') {
        test('language and task (translate), with segment timestamps', async () => {
          const cases = pipelineCases(model);
          assert.ok(cases.length >= 3, 'asr-pipeline-reference.json has the multilingual cases');
          for (const c of cases) checkTranscription(await asr(path.join(speechDir, c.clip), c.options), c.expected, `${model} ${JSON.stringify(c.options)}`);
          await rejects(asr(clipPath(SHORT_CLIP), { language: 'klingon', max_new_tokens: 4 }), /klingon/);
          await rejects(asr(clipPath(SHORT_CLIP), { task: 'dance', max_new_tokens: 4 }), /dance/);
        });
      }
    });
  }
}

for (const device of NODE_DEVICES) {
  describe(`audio inputs in Node (tiny-whisper-en) on ${deviceLabel(device)}`, () => {
    const model = 'tiny-whisper-en';
    const [, stamped] = tinyCases(model, SHORT_CLIP);
    let asr;
    before(async () => {
      asr = await pipeline(ASR, path.join(whisperDir, model), { device });
    });
    after(() => asr?.dispose());

    test('a path, a file: URL, file bytes, a Float32Array at 16 kHz, a RawAudio and an array of them give the same answer', async () => {
      const file = clipPath(SHORT_CLIP);
      const samples = await read_audio(file, 16000);
      assert.equal(samples.length, tinyReference(model).clips[SHORT_CLIP].samples);
      const inputs = {
        path: file,
        'file: URL': pathToFileURL(file).href,
        'URL object': pathToFileURL(file),
        bytes: new Uint8Array(fs.readFileSync(file)),
        Float32Array: samples,
        Float64Array: Float64Array.from(samples),
        RawAudio: new RawAudio(samples, 16000),
      };
      for (const [what, input] of Object.entries(inputs)) checkTranscription(await asr(input, stamped.options), stamped.expected, `${model} (${what})`);
      const many = await asr([file, samples], stamped.options);
      assert.equal(many.length, 2);
      many.forEach((one, i) => checkTranscription(one, stamped.expected, `${model} (array item ${i})`));
    });

    test('chunk_length_s: the 90 s clip in 30 s chunks, merged as Python merges them', async () => {
      const c = tinyCases(model, 'long-news').find((x) => x.key === 'timestamps');
      assert.equal(c.options.chunk_length_s, 30);
      checkTranscription(await asr(clipPath('long-news'), c.options), c.expected, `${model} long-news chunked`);
    });

    test('an AbortSignal or an InterruptableStoppingCriteria stops a transcription mid-way', async () => {
      const [plain] = tinyCases(model, SHORT_CLIP);
      const full = plain.expected.text;
      // Aborted from the streamed text: the transcription stops after that token, with what it had.
      const controller = new AbortController();
      let pieces = 0;
      const a = await asr(clipPath(SHORT_CLIP), {
        ...plain.options,
        signal: controller.signal,
        callback_function: () => {
          if (++pieces === 3) controller.abort();
        },
      });
      assert.ok(a.text.length > 0 && a.text.length < full.length && full.startsWith(a.text), `stopped at ${JSON.stringify(a.text)}`);
      // An already aborted signal: nothing is decoded; the next call without it runs to the end.
      assert.equal((await asr(clipPath(SHORT_CLIP), { ...plain.options, signal: AbortSignal.abort() })).text, '');
      checkTranscription(await asr(clipPath(SHORT_CLIP), plain.options), plain.expected, `${model} after an abort`);
      // The criteria, interrupted from the streamed text; it stays interrupted until reset.
      const criteria = new InterruptableStoppingCriteria();
      pieces = 0;
      const b = await asr(clipPath(SHORT_CLIP), {
        ...plain.options,
        stopping_criteria: criteria,
        callback_function: () => {
          if (++pieces === 2) criteria.interrupt();
        },
      });
      assert.ok(b.text.length > 0 && b.text.length < full.length && full.startsWith(b.text), `stopped at ${JSON.stringify(b.text)}`);
      assert.equal((await asr(clipPath(SHORT_CLIP), { ...plain.options, stopping_criteria: criteria })).text, '');
      criteria.reset();
      checkTranscription(await asr(clipPath(SHORT_CLIP), { ...plain.options, stopping_criteria: criteria }), plain.expected, `${model} after reset`);
    });

    test('bad input rejects with a clear error, and the pipeline goes on', async () => {
      await rejects(asr(new Float32Array(0)), /the audio has no samples/);
      await rejects(asr(new Uint8Array(0)), /empty/);
      await rejects(asr(new TextEncoder().encode('this is not audio at all')), /not a WAV, MP3, FLAC/);
      await rejects(asr(path.join(fixturesDir, 'asr-pipeline-reference.json')), /not a WAV, MP3, FLAC/);
      await rejects(asr(path.join(speechDir, 'no-such-clip.flac')), /no such file/);
      await rejects(asr(''), /empty string/);
      await rejects(asr(42), /takes audio/);
      await rejects(asr([]), /empty array of audio/);
      await rejects(asr(clipPath(SHORT_CLIP), { return_timestamps: 'char' }), /return_timestamps/);
      await rejects(asr(clipPath(SHORT_CLIP), { language: 'french' }), /English-only/);
      checkTranscription(await asr(clipPath(SHORT_CLIP), stamped.options), stamped.expected, `${model} after bad input`);
    });
  });
}

for (const device of NODE_DEVICES) {
  describe(`whisper-tiny.en on ${deviceLabel(device)} in Node`, () => {
    const dir = path.join(modelsDir, 'whisper-tiny.en');
    let asr;
    before(async () => {
      assert.ok(fs.existsSync(path.join(dir, 'model.safetensors')), `${dir} is missing: run scripts/fetch-models.sh whisper-tiny.en`);
      asr = await pipeline(ASR, dir, { device });
    });
    after(() => asr?.dispose());

    test(`${SHORT_CLIP}: text, segment and word timestamps as Python's pipeline(), the text streamed`, async () => {
      const cases = pipelineCases('whisper-tiny.en', `${SHORT_CLIP}.flac`);
      assert.equal(cases.length, 3);
      for (const c of cases) {
        let streamed = '';
        const got = await asr(clipPath(SHORT_CLIP), { ...c.options, callback_function: (t) => (streamed += t) });
        checkTranscription(got, c.expected, `whisper-tiny.en ${JSON.stringify(c.options)}`);
        assert.equal(streamed, c.expected.text);
      }
    });
  });
}
