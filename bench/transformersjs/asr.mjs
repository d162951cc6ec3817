// Transformers.js 4.3.1 in Node (onnxruntime-node, CPU) on the speech benchmark: the
// automatic-speech-recognition pipeline on one clip with chunk_length_s 30 (stride 5 s, the
// default), greedy. See bench/README.md ("Speech").
//
// node asr.mjs --model NAME --audio FILE.wav [--dtype fp32|q8] [--threads N] [--reps N]
//              [--language L] [--reference FILE]
// --model: a folder under .cache/models made by bench/export-whisper-onnx.py (NAME-onnx);
// --audio: 16 kHz mono 16-bit WAV (bench/speech.sh makes it); --language: passed to the
// pipeline (multilingual checkpoints); --reference: bench/speech-reference.json, whose text for
// the model this run's text is compared with. Prints one JSON line.
//
// Encoder and decoder time are measured by wrapping the two ONNX Runtime sessions' run(): the
// decoder's first call per chunk feeds the whole prompt (no cache yet), the later calls one
// token each; decoder_token_ms is the median of the later calls.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, pipeline } from '@huggingface/transformers';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

function parseArgs(argv) {
  const opts = { model: null, audio: null, dtype: 'fp32', threads: 1, reps: 3, language: null, reference: null };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--') || !(key in opts) || argv[i + 1] === undefined) {
      throw new Error(`usage: node asr.mjs ${Object.keys(opts).map((k) => `[--${k} X]`).join(' ')}`);
    }
    opts[key] = typeof opts[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!opts.model || !opts.audio) throw new Error('--model and --audio are required');
  if (!['fp32', 'q8'].includes(opts.dtype)) throw new Error('--dtype must be fp32 or q8');
  return opts;
}

// 16-bit PCM mono WAV to float samples in [-1, 1): Node has no AudioContext, which
// Transformers.js's read_audio needs, so the pipeline gets a Float32Array at 16 kHz.
function readWav(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') throw new Error(`${file}: not a WAV file`);
  let fmt = null;
  for (let at = 12; at + 8 <= buf.length;) {
    const id = buf.toString('ascii', at, at + 4);
    const size = buf.readUInt32LE(at + 4);
    if (id === 'fmt ') {
      fmt = { format: buf.readUInt16LE(at + 8), channels: buf.readUInt16LE(at + 10), rate: buf.readUInt32LE(at + 12), bits: buf.readUInt16LE(at + 22) };
    } else if (id === 'data') {
      if (!fmt || fmt.format !== 1 || fmt.channels !== 1 || fmt.rate !== 16000 || fmt.bits !== 16) {
        throw new Error(`${file}: want 16 kHz mono 16-bit PCM, got ${JSON.stringify(fmt)}`);
      }
      const n = Math.floor(Math.min(size, buf.length - at - 8) / 2);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = buf.readInt16LE(at + 8 + 2 * i) / 32768;
      return out;
    }
    at += 8 + size + (size & 1);
  }
  throw new Error(`${file}: no data chunk`);
}

const median = (xs) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, d = 2) => (x === null ? null : +x.toFixed(d));

// Word-level edit distance, so that a near miss reads differently from garbage.
function wordErrors(a, b) {
  const norm = (s) => s.toLowerCase().replace(/[^a-z0-9' ]+/g, ' ').split(/\s+/).filter(Boolean);
  const x = norm(a);
  const y = norm(b);
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return { word_errors: prev[y.length], reference_words: y.length };
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(e.message);
  process.exit(2);
}

// Local files only: no hub is reachable, and a benchmark must not fetch.
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = path.join(root, '.cache', 'models');

const audio = readWav(path.resolve(root, opts.audio));
const audioS = audio.length / 16000;

const t0 = performance.now();
const pipe = await pipeline('automatic-speech-recognition', opts.model, {
  device: 'cpu',
  dtype: opts.dtype,
  session_options: { intraOpNumThreads: opts.threads, interOpNumThreads: 1 },
});
const loadS = (performance.now() - t0) / 1000;

// Times every run() of a session into `log` (ms), keyed by whether it was a first call.
function wrap(session, log) {
  const run = session.run.bind(session);
  session.run = async (feeds, ...rest) => {
    const t = performance.now();
    const out = await run(feeds, ...rest);
    log.push({ ms: performance.now() - t, feeds });
    return out;
  };
}
const sessions = pipe.model.sessions;
const encLog = [];
const decLog = [];
wrap(sessions.model, encLog);
wrap(sessions.decoder_model_merged, decLog);

const callOptions = { chunk_length_s: 30, ...(opts.language ? { language: opts.language, task: 'transcribe' } : {}) };
let output = await pipe(audio, callOptions); // warm-up
const totals = [];
const enc = [];
const prompt = [];
const step = [];
let tokens = 0;
for (let r = 0; r < opts.reps; r++) {
  encLog.length = 0;
  decLog.length = 0;
  const t = performance.now();
  output = await pipe(audio, callOptions);
  totals.push(performance.now() - t);
  enc.push(encLog.reduce((s, e) => s + e.ms, 0));
  for (const d of decLog) {
    // Without a cache the decoder sees the whole prompt; afterwards one new token a call.
    const first = d.feeds.use_cache_branch ? !d.feeds.use_cache_branch.data[0] : d.feeds.input_ids.dims.at(-1) > 1;
    (first ? prompt : step).push(d.ms);
  }
  tokens = decLog.length;
}
const total = median(totals);
const result = {
  runtime: 'transformers.js',
  transformers_js: '4.3.1',
  node: process.version,
  cpu: os.cpus()[0]?.model,
  model: opts.model,
  dtype: opts.dtype,
  threads: opts.threads,
  audio_s: audioS,
  chunk_length_s: 30,
  load_s: round(loadS),
  reps: opts.reps,
  total_s: round(total / 1000, 3),
  total_s_min: round(Math.min(...totals) / 1000, 3),
  rtf: round(audioS / (total / 1000), 2),
  encoder_calls: encLog.length,
  encoder_ms_per_call: round(median(enc) / encLog.length, 1),
  decoder_calls: tokens,
  decoder_prompt_ms: round(median(prompt), 2),
  decoder_token_ms: round(median(step), 2),
  decoder_ms_total: round(decLog.reduce((s, e) => s + e.ms, 0), 1),
  text: output.text,
};
if (opts.reference) {
  const ref = JSON.parse(fs.readFileSync(path.resolve(root, opts.reference), 'utf8')).models[opts.model.replace(/-onnx$/, '')];
  if (ref) Object.assign(result, { text_matches_reference: ref.text.trim() === output.text.trim(), ...wordErrors(output.text, ref.text) });
}
console.log(JSON.stringify(result));
