// automatic-speech-recognition through the built package (dist/) in Node on WASM, on the tiny
// random Whisper model (tests/fixtures/whisper/tiny-whisper-en): what a transformers.js user's
// WhisperTextStreamer, callback_function and progress_callback receive while a clip is
// transcribed, against the call's own result (the streamed text is the result's text; the chunk
// start/end times are its chunks' timestamps; progress reaches the audio's length).
// Needs `npm run build` first (scripts/test-npm.sh does it).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { distDir, fixturesDir } from './helpers.mjs';

const { pipeline, read_audio, WhisperTextStreamer, TextStreamer } = await import(path.join(distDir, 'index.js'));

const model = path.join(fixturesDir, 'whisper', 'tiny-whisper-en');
const clip = path.join(fixturesDir, 'speech', 'us-short.flac');

describe('automatic-speech-recognition events in Node', () => {
  let transcriber;
  let audio;
  before(async () => {
    transcriber = await pipeline('automatic-speech-recognition', model, { device: 'wasm' });
    audio = await read_audio(clip, transcriber.processor.feature_extractor.config.sampling_rate);
  });
  after(() => transcriber?.dispose());

  test('WhisperTextStreamer gets the text, tokens and segment times the result has', async () => {
    const pieces = [];
    const tokens = [];
    const segments = [];
    const progress = [];
    let finalized = 0;
    const streamer = new WhisperTextStreamer(transcriber.tokenizer, {
      callback_function: (t) => pieces.push(t),
      token_callback_function: (ids) => tokens.push(ids),
      on_chunk_start: (time) => segments.push([time, null]),
      on_chunk_end: (time) => (segments.at(-1)[1] = time),
      on_finalize: () => finalized++,
    });
    assert.ok(streamer instanceof TextStreamer);
    const out = await transcriber(audio, {
      return_timestamps: true,
      max_new_tokens: 60,
      streamer,
      progress_callback: (p) => progress.push(p),
    });
    assert.equal(pieces.join(''), out.text);
    assert.deepEqual(segments, out.chunks.map((c) => c.timestamp));
    assert.ok(tokens.length > 0 && tokens.every((ids) => ids.length === 1 && typeof ids[0] === 'bigint'), 'one bigint id per step');
    assert.equal(finalized, 1);
    const last = progress.at(-1);
    assert.equal(last.status, 'progress');
    assert.equal(last.unit, 's');
    assert.ok(Math.abs(last.done - audio.length / 16000) < 1e-9 && Math.abs(last.progress - 100) < 1e-9, JSON.stringify(last));
  });

  test('callback_function alone streams the transcript', async () => {
    const pieces = [];
    const out = await transcriber(audio, { max_new_tokens: 30, callback_function: (t) => pieces.push(t) });
    assert.ok(out.text.length > 0);
    assert.equal(pieces.join(''), out.text);
  });

  test('a TextStreamer subclass overriding on_finalized_text gets the text', async () => {
    let text = '';
    class Collect extends TextStreamer {
      on_finalized_text(t) {
        text += t;
      }
    }
    const out = await transcriber(audio, { max_new_tokens: 20, return_timestamps: 'word', streamer: new Collect(null) });
    assert.equal(text, out.text);
  });
});
