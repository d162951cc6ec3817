// Audio in headless Chromium: read_audio / RawAudio decoded by the browser (decodeAudioData of an
// OfflineAudioContext) against the same references as tests/audio.rs (ffmpeg's decodes, the WAV
// samples), resampling through an OfflineAudioContext against soxr, and in a Web Worker (no
// AudioContext: the engine decodes) against the engine's native results.
// Needs `npm run build` first (scripts/test-npm.sh does it).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { evaluateWithin, launchBrowser, openPage, testServer } from './helpers.mjs';
import { audioDir, audioRef, bestLag, f32s, i16s, maxDiff, snrDb, wav16 } from './audio.mjs';

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

/** Runs `read_audio` on fixtures in the page (or a worker): {name: samples as a plain array}. */
async function readInPage(files, { worker = false } = {}) {
  const p = await openPage(browser, server.url);
  const out = await evaluateWithin(
    p,
    120,
    async (files, worker) => {
      // Absolute URLs: a blob: worker has no base to resolve paths against.
      const run = async ([files, base]) => {
        const { read_audio, RawAudio } = await import(`${base}/webformers/index.js`);
        const result = {};
        for (const [name, rate] of files) {
          try {
            result[name] = Array.from(await read_audio(`${base}/fixtures/audio/${name}`, rate));
          } catch (e) {
            result[name] = { error: e.message };
          }
        }
        // OfflineAudioContext resampling (windows) or the engine's (workers), of the sweep.
        const sweep = await RawAudio.fromURL(`${base}/fixtures/audio/sweep_44k_f32.wav`, 44100);
        result.resampled = Array.from((await sweep.resample(16000)).data);
        result.hasAudioContext = typeof OfflineAudioContext !== 'undefined';
        return result;
      };
      if (!worker) return run([files, location.origin]);
      // A module worker with the same code: no AudioContext there, so the engine decodes.
      const src = `self.onmessage = async (e) => { const run = ${run.toString()}; try { self.postMessage(await run(e.data)); } catch (err) { self.postMessage({ fatal: err.message }); } };`;
      const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })), { type: 'module' });
      const answer = await new Promise((resolve) => {
        w.onmessage = (e) => resolve(e.data);
        w.onerror = (e) => resolve({ fatal: e.message });
        w.postMessage([files, location.origin]);
      });
      w.terminate();
      return answer;
    },
    files,
    worker,
  );
  assert.ok(!out.fatal, out.fatal);
  assert.deepEqual(p.problems, []);
  await p.close();
  return out;
}

const FILES = [
  ['speech_a_16k.wav', 16000],
  ['speech_b_44k_stereo.wav', 44100],
  ['speech_b_44k_stereo.flac', 44100],
  ['speech_b_44k_stereo.mp3', 44100],
  ['speech_d_22k.ogg', 22050],
  ['speech_b_44k_stereo.m4a', 44100],
];

function checkDecodes(out, { stereoScale }) {
  for (const [name] of FILES) assert.ok(Array.isArray(out[name]), `${name}: ${out[name]?.error}`);
  // PCM WAV at its own rate: the samples (natively exact; Chromium's decoder is off by up to
  // 2.4e-5, about what scaling 16-bit PCM by 1/32767 instead of 1/32768 gives).
  const wavA = Float32Array.from(out['speech_a_16k.wav']);
  const wantA = wav16(path.join(audioDir, 'speech_a_16k.wav'));
  console.log(`wav: ${wavA.length} vs ${wantA.length} samples, max |diff| ${wavA.length === wantA.length ? maxDiff(wavA, wantA) : 'n/a'}`);
  assert.equal(wavA.length, wantA.length);
  assert.ok(maxDiff(wavA, wantA) < 5e-5);
  // FLAC: its WAV's samples.
  const flac = Float32Array.from(out['speech_b_44k_stereo.flac']);
  const wavB = Float32Array.from(out['speech_b_44k_stereo.wav']);
  console.log(`flac: ${flac.length} vs wav ${wavB.length} samples, max |diff| ${flac.length === wavB.length ? maxDiff(flac, wavB) : 'n/a'}`);
  assert.equal(flac.length, wavB.length);
  assert.ok(maxDiff(flac, wavB) < 5e-5);
  // The lossy formats against ffmpeg's decode (averaged channels), aligned.
  const report = {};
  for (const c of audioRef.decoded) {
    const got = Float32Array.from(out[c.file]);
    const ffmpeg = i16s(c.reference);
    const n = ffmpeg.length - 3000;
    const lag = bestLag(ffmpeg, got, 2200, n);
    const scale = c.file.includes('stereo') ? stereoScale : 1;
    const snr = snrDb(ffmpeg, got, lag, n, scale);
    report[c.file] = { frames: got.length, ffmpeg_frames: c.frames, lag, snr: Math.round(snr * 10) / 10 };
    assert.ok(snr > 40, `${c.file}: ${snr} dB against ffmpeg (lag ${lag})`);
  }
  console.log(JSON.stringify(report));
}

/** The resampled sweep against soxr below `top` Hz (the sweep's time there), within `limit`. */
function checkResampled(resampled, limit, top) {
  const want = f32s(audioRef.resample.reference);
  const got = Float32Array.from(resampled);
  assert.equal(got.length, want.length);
  const until = (hz) => Math.floor(((1.5 * Math.log(hz / 50)) / Math.log(20000 / 50)) * 16000);
  const diffs = [1000, 2000, 4000, 7000].map((hz) => `${hz} Hz: ${maxDiff(got.subarray(50, until(hz)), want.subarray(50, until(hz))).toExponential(2)}`);
  console.log(`resampled sweep vs soxr VHQ, max |diff| below ${diffs.join(', ')}`);
  const pass = maxDiff(got.subarray(50, until(top)), want.subarray(50, until(top)));
  assert.ok(pass < limit, `passband max |diff| ${pass} below ${top} Hz`);
}

describe('audio in Chromium', () => {
  test('the browser decodes every fixture as ffmpeg does (stereo mixed as transformers.js: sqrt(2)(L+R)/2)', { timeout: 180_000 }, async () => {
    const out = await readInPage(FILES);
    assert.equal(out.hasAudioContext, true);
    // transformers.js's stereo mix is sqrt(2) times the channels' mean that the reference holds.
    checkDecodes(out, { stereoScale: Math.SQRT1_2 });
    // OfflineAudioContext's resampler (Chromium's sinc, shorter than soxr's) is looser, and rolls
    // off earlier towards 8 kHz: compared below 4 kHz.
    checkResampled(out.resampled, 3e-2, 4000);
  });

  test('in a worker (no AudioContext) the engine decodes and resamples, as natively', { timeout: 180_000 }, async () => {
    const out = await readInPage(FILES, { worker: true });
    assert.equal(out.hasAudioContext, false);
    checkDecodes(out, { stereoScale: 1 });
    checkResampled(out.resampled, 2e-3, 7000);
  });
});
