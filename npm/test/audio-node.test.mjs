// Audio in the built package (dist/) in Node, where the engine decodes and resamples (no
// AudioContext): read_audio / load_audio / RawAudio on the clips of tests/fixtures/audio/ against
// the same references as tests/audio.rs (the 16-bit WAV samples exactly; FLAC equal to its WAV;
// MP3, OGG/Vorbis and M4A/AAC against ffmpeg's decode; the resampler against soxr), RawAudio's
// WAV round trip, and bad input.
// Needs `npm run build` first (scripts/test-npm.sh does it).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import { distDir, rejectsWith } from './helpers.mjs';
import { audioDir, audioRef, bestLag, f32s, i16s, maxDiff, snrDb, wav16 } from './audio.mjs';

const { RawAudio, read_audio, load_audio, WebformersError } = await import(path.join(distDir, 'index.js'));

const rejects = (promise, pattern, code) => rejectsWith(WebformersError, promise, pattern, code);

describe('audio in Node (the engine decodes)', () => {
  test('16-bit WAV decodes to int16 / 32768 exactly, by path, file: URL, bytes and Blob', async () => {
    const file = path.join(audioDir, 'speech_a_16k.wav');
    const want = wav16(file);
    assert.deepEqual(await read_audio(file, 16000), want);
    assert.deepEqual(await load_audio(pathToFileURL(file), 16000), want);
    const bytes = new Uint8Array(fs.readFileSync(file));
    assert.deepEqual((await RawAudio.read(bytes, 16000)).data, want);
    const audio = await RawAudio.fromBlob(new Blob([bytes]), 16000);
    assert.equal(audio.sampling_rate, 16000);
    assert.deepEqual(audio.data, want);
    assert.ok(Math.abs(audio.duration - want.length / 16000) < 1e-9);
  });

  test('FLAC equals its WAV; MP3, OGG/Vorbis and M4A/AAC match ffmpeg', async () => {
    const wav = await read_audio(path.join(audioDir, 'speech_b_44k_stereo.wav'), 44100);
    assert.deepEqual(await read_audio(path.join(audioDir, 'speech_b_44k_stereo.flac'), 44100), wav);
    for (const c of audioRef.decoded) {
      const got = await read_audio(path.join(audioDir, c.file), c.sampling_rate);
      assert.equal(got.length, c.frames, c.file);
      const ffmpeg = i16s(c.reference);
      const n = ffmpeg.length - 3000;
      const lag = bestLag(ffmpeg, got, 50, n);
      const snr = snrDb(ffmpeg, got, lag, n);
      assert.equal(lag, 0, c.file);
      assert.ok(snr > 60, `${c.file}: ${snr} dB against ffmpeg`);
    }
  });

  test('resampling matches soxr in the passband, decoding straight to 16 kHz too', async () => {
    const r = audioRef.resample;
    const sweep = await RawAudio.fromURL(path.join(audioDir, r.input), 44100);
    assert.equal(sweep.data.length, 66150);
    const got = (await sweep.resample(16000)).data;
    const want = f32s(r.reference);
    assert.equal(got.length, want.length);
    const t7k = Math.floor(((1.5 * Math.log(7000 / 50)) / Math.log(20000 / 50)) * 16000);
    const pass = maxDiff(got.subarray(50, t7k), want.subarray(50, t7k));
    assert.ok(pass < 2e-3, `passband max |diff| ${pass}`);
    const direct = await read_audio(path.join(audioDir, r.input), 16000);
    assert.ok(maxDiff(direct, got) < 1e-6);
  });

  test('RawAudio: chunks, WAV round trip, save', async () => {
    const a = new RawAudio([new Float32Array([0.5, -0.25]), new Float32Array([0.125])], 16000);
    assert.deepEqual(a.data, new Float32Array([0.5, -0.25, 0.125]));
    const back = await RawAudio.read(a.toWav(), 16000);
    assert.deepEqual(back.data, a.data);
    const file = path.join(fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'wf-audio-')), 'a.wav');
    await a.save(file);
    assert.deepEqual(await read_audio(file, 16000), a.data);
    assert.ok(a.toBlob() instanceof Blob);
  });

  test('bad audio is a clear error', async () => {
    await rejects(read_audio(path.join(audioDir, 'no-such-file.wav')), /no such file/);
    await rejects(RawAudio.read(new Uint8Array(0)), /empty/);
    await rejects(RawAudio.read(new TextEncoder().encode('this is not audio at all')), /not a WAV, MP3, FLAC/);
    await rejects(read_audio(path.join(audioDir, 'speech_a_16k.wav'), 1), /sampling_rate/);
    await rejects(RawAudio.read(42), /RawAudio.read takes/);
    // A truncated WAV decodes its complete frames.
    const bytes = fs.readFileSync(path.join(audioDir, 'speech_a_16k.wav'));
    const cut = await RawAudio.read(new Uint8Array(bytes.subarray(0, 10044)), 16000);
    assert.equal(cut.data.length, 5000);
    // A 1 Hz file.
    const one = new Uint8Array(bytes.subarray(0, 1044));
    const header = new DataView(one.buffer, one.byteOffset);
    header.setUint32(24, 1, true); // the rate
    header.setUint32(28, 2, true); // and the bytes a second, which hound checks against it
    await rejects(RawAudio.read(one, 16000), /1 Hz/);
  });
});

