// What the audio tests share: the clips of tests/fixtures/audio/ and the references of
// tests/reference/make_audio_reference.py (tests/fixtures/audio-reference/), read in Node.

import fs from 'node:fs';
import path from 'node:path';
import { fixturesDir } from './helpers.mjs';

export const audioDir = path.join(fixturesDir, 'audio');
export const audioRefDir = path.join(fixturesDir, 'audio-reference');
export const audioRef = JSON.parse(fs.readFileSync(path.join(audioRefDir, 'reference.json'), 'utf8'));

const bytesOf = (file) => {
  const b = fs.readFileSync(path.isAbsolute(file) ? file : path.join(audioRefDir, file));
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length);
};
export const f32s = (file) => new Float32Array(bytesOf(file));
export const i16s = (file) => Float32Array.from(new Int16Array(bytesOf(file)), (v) => v / 32768);

/** The samples of a mono 16-bit PCM WAV with a 44-byte header, as int16 / 32768. */
export function wav16(file) {
  const b = fs.readFileSync(file);
  return Float32Array.from(new Int16Array(b.buffer.slice(b.byteOffset + 44, b.byteOffset + b.length)), (v) => v / 32768);
}

export function maxDiff(a, b) {
  if (a.length !== b.length) throw new Error(`lengths ${a.length} and ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The lag of `b` against `a` (b[i + lag] ≈ a[i]) within ±maxLag, by cross-correlation over a's first `n`. */
export function bestLag(a, b, maxLag, n) {
  let best = 0;
  let bestScore = -Infinity;
  for (let lag = -maxLag; lag <= maxLag; lag++) {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const j = i + lag;
      if (j >= 0 && j < b.length) s += a[i] * b[j];
    }
    if (s > bestScore) [best, bestScore] = [lag, s];
  }
  return best;
}

/** Signal-to-error ratio (dB) of `b` shifted by `lag` against `a`, over a's first `n`; `scale` multiplies b. */
export function snrDb(a, b, lag, n, scale = 1) {
  let s = 0;
  let e = 0;
  for (let i = 0; i < n; i++) {
    const j = i + lag;
    const y = j >= 0 && j < b.length ? b[j] * scale : 0;
    s += a[i] * a[i];
    e += (a[i] - y) ** 2;
  }
  return 10 * Math.log10(s / e);
}
