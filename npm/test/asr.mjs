// What the speech-recognition tests share (asr-node.test.mjs, asr-browser.test.mjs): the Whisper
// models, the clips, Python transformers' answers, and the comparison.
//   - tests/fixtures/whisper/{tiny-whisper-en,tiny-whisper-multi}: tiny random models (multi: the
//     multilingual tokenizer, 128 mel bins); their `pipeline()` answers per clip (plain, segment
//     and word timestamps, greedy, 24 tokens at most) in tests/fixtures/whisper/<model>-reference.json
//     (tests/reference/make_whisper_reference.py);
//   - whisper-tiny.en (.cache/models, scripts/fetch-models.sh) and `language` / `task` on the tiny
//     multilingual model: tests/fixtures/asr-pipeline-reference.json (make_asr_reference.py).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fixturesDir } from './helpers.mjs';

export const ASR = 'automatic-speech-recognition';
export const whisperDir = path.join(fixturesDir, 'whisper');
export const speechDir = path.join(fixturesDir, 'speech');
export const TINY_MODELS = ['tiny-whisper-en', 'tiny-whisper-multi'];
/** The shortest clip (2.9 s at 16 kHz). */
export const SHORT_CLIP = 'us-short';

/** `<model>-reference.json` of a tiny model. */
export function tinyReference(model) {
  return JSON.parse(fs.readFileSync(path.join(whisperDir, `${model}-reference.json`), 'utf8'));
}

/** The pipeline cases of a tiny model's reference on `clip`: `[{key, options, expected}]`. */
export function tinyCases(model, clip) {
  const c = tinyReference(model).clips[clip];
  const call = c.pipeline_call;
  const options = { max_new_tokens: call.generate_kwargs.max_new_tokens, ...(call.chunk_length_s ? { chunk_length_s: call.chunk_length_s } : {}) };
  const stamps = { plain: undefined, timestamps: true, word: 'word' };
  return Object.entries(stamps).map(([key, ts]) => ({
    key,
    options: ts === undefined ? options : { ...options, return_timestamps: ts },
    expected: c.pipeline[key],
  }));
}

/** The cases of asr-pipeline-reference.json for `model` (on `clip`, when given). */
export function pipelineCases(model, clip) {
  const all = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'asr-pipeline-reference.json'), 'utf8')).cases;
  return all.filter((c) => c.model === model && (!clip || c.clip === clip));
}

/**
 * `got` against Python's answer: texts identical, timestamps within 1e-6 (both sides round them to
 * 10 ms; null where Python has none), the same keys.
 */
export function checkTranscription(got, want, label) {
  assert.ok(got && typeof got === 'object' && !Array.isArray(got), `${label}: ${JSON.stringify(got)}`);
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${label}: keys`);
  assert.equal(got.text, want.text, `${label}: text`);
  if (!want.chunks) return;
  assert.equal(got.chunks.length, want.chunks.length, `${label}: ${got.chunks.length} chunks, not ${want.chunks.length}: ${JSON.stringify(got.chunks).slice(0, 400)}`);
  want.chunks.forEach((w, i) => {
    const g = got.chunks[i];
    assert.equal(g.text, w.text, `${label}: chunk ${i} text`);
    assert.equal(g.timestamp.length, 2, `${label}: chunk ${i} timestamp`);
    w.timestamp.forEach((t, j) => {
      if (t === null) assert.equal(g.timestamp[j], null, `${label}: chunk ${i} timestamp ${j}`);
      else assert.ok(Math.abs(g.timestamp[j] - t) < 1e-6, `${label}: chunk ${i} timestamp ${JSON.stringify(g.timestamp)}, not ${JSON.stringify(w.timestamp)}`);
    });
  });
}
