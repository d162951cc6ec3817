// Audio: `RawAudio` and `read_audio` (alias `load_audio`) as transformers.js has them, and turning
// whatever a speech task is given into what the engine takes.
//
// Decoding: in a browser window the platform decodes (`decodeAudioData` of an
// `OfflineAudioContext` at the wanted rate, which also resamples), mixed down to mono as
// transformers.js does (stereo: sqrt(2) * (left + right) / 2, as ffmpeg's `-ac 1` to float does;
// more channels: the first). Samples at another rate are resampled by rendering them through an
// `OfflineAudioContext`. Where no AudioContext exists (Node, Web Workers) the file's bytes go to
// the engine (`decodeAudio`, or `Media::Encoded` in a pipeline call): WAV/MP3/FLAC/OGG/M4A decoded
// in Rust, channels averaged (as transformers' Python `_to_mono` and `load_audio` do), resampled
// with rubato.

import { IS_NODE, nodeModule } from './env.js';
import { engine, guarded, WebformersError } from './engine.js';
import { readBytes } from './image.js';

/** The rate speech models take (Whisper's); the engine resamples any other. */
export const AUDIO_RATE = 16000;

const has = (name) => typeof globalThis[name] !== 'undefined';
const isA = (x, name) => has(name) && x instanceof globalThis[name];
/** Whether the platform can decode audio here (browser windows; not Node, not workers). */
const browserDecoder = () => !IS_NODE && has('OfflineAudioContext');

function describe(x) {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'object') return `a ${x.constructor?.name ?? 'object'}`;
  if (typeof x === 'string') return `the string ${JSON.stringify(x.length > 60 ? `${x.slice(0, 57)}...` : x)}`;
  return `a ${typeof x}`;
}

function checkRate(rate, what = 'sampling_rate') {
  if (!(Number.isInteger(rate) && rate >= 1000 && rate <= 768000)) {
    throw new WebformersError(`${what} must be a whole number of Hz from 1000 to 768000, not ${rate}`, 'input');
  }
}

/** Mono samples (`audio`, a Float32Array, or an array of Float32Array chunks) at `sampling_rate`. */
export class RawAudio {
  /**
   * @param {Float32Array | Float32Array[]} audio
   * @param {number} sampling_rate
   */
  constructor(audio, sampling_rate) {
    this.audio = audio;
    this.sampling_rate = sampling_rate;
  }

  /** The samples as one Float32Array (chunks concatenated). */
  get data() {
    if (!Array.isArray(this.audio)) return this.audio;
    if (this.audio.length === 0) return new Float32Array(0);
    if (this.audio.length === 1) return this.audio[0];
    const out = new Float32Array(this.audio.reduce((n, c) => n + c.length, 0));
    let offset = 0;
    for (const chunk of this.audio) {
      out.set(chunk, offset);
      offset += chunk.length;
    }
    return out;
  }

  /** Seconds of audio. */
  get duration() {
    return this.data.length / this.sampling_rate;
  }

  /** The audio file at a URL (http(s), relative, blob:, data:) or, in Node, a path, at `sampling_rate`. */
  static async fromURL(url, sampling_rate = AUDIO_RATE) {
    checkRate(sampling_rate);
    return new RawAudio(await decodeBytes(await readBytes(url, 'audio'), sampling_rate), sampling_rate);
  }

  /** The audio a Blob (or File) holds, at `sampling_rate`. */
  static async fromBlob(blob, sampling_rate = AUDIO_RATE) {
    checkRate(sampling_rate);
    return new RawAudio(await decodeBytes(new Uint8Array(await blob.arrayBuffer()), sampling_rate), sampling_rate);
  }

  /** A RawAudio from a URL or path, a Blob, file bytes (Uint8Array, ArrayBuffer), an AudioBuffer, or a RawAudio (resampled). */
  static async read(input, sampling_rate = AUDIO_RATE) {
    checkRate(sampling_rate);
    if (input instanceof RawAudio) return input.resample(sampling_rate);
    if (typeof input === 'string' || input instanceof URL) return RawAudio.fromURL(input, sampling_rate);
    if (isA(input, 'Blob')) return RawAudio.fromBlob(input, sampling_rate);
    if (input instanceof Uint8Array || input instanceof ArrayBuffer) {
      return new RawAudio(await decodeBytes(input instanceof ArrayBuffer ? new Uint8Array(input) : input, sampling_rate), sampling_rate);
    }
    if (isA(input, 'AudioBuffer')) return new RawAudio(mixDown(input), input.sampleRate).resample(sampling_rate);
    throw new WebformersError(`RawAudio.read takes a URL, a path, a Blob, file bytes, an AudioBuffer or a RawAudio, not ${describe(input)}`, 'input');
  }

  /**
   * The audio at `sampling_rate` (a new RawAudio; itself when it already is): rendered through an
   * OfflineAudioContext in browser windows, the engine's resampler (rubato) elsewhere.
   */
  async resample(sampling_rate) {
    checkRate(sampling_rate);
    checkRate(this.sampling_rate, 'the audio\'s sampling_rate');
    if (sampling_rate === this.sampling_rate) return this;
    const data = this.data;
    if (browserDecoder()) return new RawAudio(await resampleInBrowser(data, this.sampling_rate, sampling_rate), sampling_rate);
    const wasm = await engine();
    return new RawAudio(await guarded(() => wasm.resampleAudio(data, this.sampling_rate, sampling_rate)), sampling_rate);
  }

  /** The audio as a WAV file (32-bit float, mono), as transformers.js's `toBlob`. */
  toWav() {
    return encodeWav(this.data, this.sampling_rate);
  }

  /** A WAV Blob of the audio. */
  toBlob() {
    return new Blob([this.toWav()], { type: 'audio/wav' });
  }

  /** Writes the WAV file to `path` (Node), or downloads it under that name (browsers). */
  async save(path) {
    if (IS_NODE) {
      const { writeFile } = await nodeModule('node:fs/promises');
      await writeFile(path, this.toWav());
      return;
    }
    const url = URL.createObjectURL(this.toBlob());
    try {
      const a = Object.assign(document.createElement('a'), { href: url, download: path });
      a.click();
    } finally {
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    }
  }
}

/**
 * transformers.js's `read_audio(url, sampling_rate)`: the audio file at `url` (or, in Node, a
 * path) decoded to mono samples at `sampling_rate`.
 * @returns {Promise<Float32Array>}
 */
export async function read_audio(url, sampling_rate = AUDIO_RATE) {
  return (await RawAudio.fromURL(url, sampling_rate)).data;
}

/** Encoded audio to mono samples at `rate`: the platform's decoder in windows, the engine's elsewhere. */
async function decodeBytes(bytes, rate) {
  if (bytes.length === 0) throw new WebformersError('the audio file is empty (0 bytes)', 'input');
  if (browserDecoder()) return decodeInBrowser(bytes, rate);
  const wasm = await engine();
  return (await guarded(() => wasm.decodeAudio(bytes, rate))).audio;
}

/** decodeAudioData of an OfflineAudioContext at `rate` (it resamples to its own rate), mixed down. */
async function decodeInBrowser(bytes, rate) {
  const ctx = new OfflineAudioContext(1, 1, rate);
  let decoded;
  try {
    // decodeAudioData detaches the buffer it is given: a copy, so that the caller's bytes survive.
    decoded = await ctx.decodeAudioData(bytes.slice().buffer);
  } catch (e) {
    throw new WebformersError(`the browser cannot decode this audio file (${bytes.length} bytes): ${e?.message ?? e}`, 'input', { cause: e });
  }
  return mixDown(decoded);
}

/** An AudioBuffer's channels to mono as transformers.js mixes them (see the top of this file). */
function mixDown(buffer) {
  if (buffer.numberOfChannels === 2) {
    const left = buffer.getChannelData(0);
    const right = buffer.getChannelData(1);
    const out = new Float32Array(left.length);
    for (let i = 0; i < out.length; i++) out[i] = (Math.SQRT2 * (left[i] + right[i])) / 2;
    return out;
  }
  return buffer.getChannelData(0);
}

/** Resampling by rendering the samples through an OfflineAudioContext at the new rate. */
async function resampleInBrowser(samples, from, to) {
  const length = Math.ceil((samples.length * to) / from);
  if (length === 0) return new Float32Array(0);
  const ctx = new OfflineAudioContext(1, length, to);
  const buffer = ctx.createBuffer(1, samples.length, from);
  buffer.copyToChannel(samples, 0);
  const source = ctx.createBufferSource();
  source.buffer = buffer;
  source.connect(ctx.destination);
  source.start();
  return (await ctx.startRendering()).getChannelData(0);
}

/** A 32-bit float mono WAV file. */
function encodeWav(samples, rate) {
  const out = new ArrayBuffer(44 + samples.length * 4);
  const v = new DataView(out);
  const text = (o, s) => [...s].forEach((c, i) => v.setUint8(o + i, c.charCodeAt(0)));
  text(0, 'RIFF');
  v.setUint32(4, 36 + samples.length * 4, true);
  text(8, 'WAVEfmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 3, true); // IEEE float
  v.setUint16(22, 1, true);
  v.setUint32(24, rate, true);
  v.setUint32(28, rate * 4, true);
  v.setUint16(32, 4, true);
  v.setUint16(34, 32, true);
  text(36, 'data');
  v.setUint32(40, samples.length * 4, true);
  new Float32Array(out, 44).set(samples);
  return new Uint8Array(out);
}

// ---- a call's audio as the engine takes it -------------------------------------------------------

/**
 * One audio input as the engine takes it: `{audio: Float32Array, sampling_rate}` (decoded samples;
 * the engine resamples them to the model's rate) or file bytes (`Uint8Array`: the engine decodes;
 * Node and workers). As transformers.js, a Float32Array or Float64Array is samples at 16 kHz.
 */
export async function toEngineAudio(x, task) {
  if (x instanceof RawAudio) return { audio: x.data, sampling_rate: x.sampling_rate };
  if (x instanceof Float32Array || x instanceof Float64Array) return { audio: x, sampling_rate: AUDIO_RATE };
  if (typeof x === 'string' || x instanceof URL) {
    const text = String(x).trim();
    if (!text) throw new WebformersError(`${task} takes audio: the empty string is no audio URL or path`, 'input');
    const bytes = await readBytes(text, 'audio');
    return browserDecoder() ? { audio: await decodeInBrowser(bytes, AUDIO_RATE), sampling_rate: AUDIO_RATE } : bytes;
  }
  if (isA(x, 'Blob')) {
    const bytes = new Uint8Array(await x.arrayBuffer());
    return browserDecoder() ? { audio: await decodeInBrowser(bytes, AUDIO_RATE), sampling_rate: AUDIO_RATE } : bytes;
  }
  if (x instanceof Uint8Array) return x;
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  if (isA(x, 'AudioBuffer')) return { audio: mixDown(x), sampling_rate: x.sampleRate };
  if (x && typeof x === 'object' && typeof x.sampling_rate === 'number') {
    // A RawAudio from another copy of the package, or one that came through postMessage.
    const audio = x.audio instanceof Float32Array || x.audio instanceof Float64Array ? x.audio : new RawAudio(x.audio ?? x.data, x.sampling_rate).data;
    return { audio, sampling_rate: x.sampling_rate };
  }
  throw new WebformersError(
    `${task} takes audio (a URL or path, a Blob, file bytes, a Float32Array or Float64Array at 16 kHz, an AudioBuffer or a RawAudio) or an array of them, not ${describe(x)}`,
    'input',
  );
}

/**
 * The first argument of an audio task as the engine takes it: `{value, media}`, each audio
 * replaced in `value` by `{$media: i}`. An array of numbers is one audio (samples at 16 kHz).
 */
export async function audioInput(input, task) {
  if (Array.isArray(input) && typeof input[0] === 'number') input = Float32Array.from(input);
  const many = Array.isArray(input);
  if (many && input.length === 0) throw new WebformersError(`${task} was given an empty array of audio`, 'input');
  const media = await Promise.all((many ? input : [input]).map((x) => toEngineAudio(x, task)));
  const refs = media.map((_, i) => ({ $media: i }));
  return { value: many ? refs : refs[0], media };
}

/** The input kinds whose first argument is audio. */
export const AUDIO_KINDS = new Set(['audio']);

/**
 * An audio input made fit for postMessage to a worker pipeline: relative URLs made absolute,
 * AudioBuffers (which cannot be posted) mixed down here, RawAudios into plain objects. Workers
 * have no AudioContext: there the engine decodes files.
 */
export async function audioInputForWorker(input, task) {
  const one = async (x) => {
    if (typeof x === 'string') return has('location') ? new URL(x, location.href).href : x;
    if (x instanceof URL) return x.href;
    if (x instanceof RawAudio) return { audio: x.data, sampling_rate: x.sampling_rate };
    if (isA(x, 'AudioBuffer')) return toEngineAudio(x, task);
    return x;
  };
  if (Array.isArray(input) && typeof input[0] === 'number') return { input: Float32Array.from(input), transfer: [] };
  const converted = Array.isArray(input) ? await Promise.all(input.map(one)) : await one(input);
  return { input: converted, transfer: [] };
}
