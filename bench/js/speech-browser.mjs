// Browser speech benchmark (not a test), one configuration per run: webformers' npm package on
// 'wasm' in headless Chromium, automatic-speech-recognition on one clip with chunk_length_s 30
// (stride 5 s, the default), greedy, the call bench/speech.sh times natively and with
// Transformers.js (see bench/README.md, "Speech"). The page is crossOriginIsolated (COOP/COEP),
// so that the threaded wasm build can use more than one thread.
//
//   node bench/js/speech-browser.mjs --model NAME --audio FILE.wav [--threads 1] [--reps 3]
//        [--language L] [--reference FILE]
//
// --model: a folder under .cache/models (scripts/fetch-models.sh); --audio: 16 kHz mono 16-bit
// WAV (bench/speech.sh makes it), parsed here and given to the pipeline as a Float32Array, as
// bench/transformersjs/asr.mjs gives it to Transformers.js (so neither times the browser's audio
// decoder); --language: passed with task 'transcribe' (multilingual checkpoints); --reference:
// bench/speech-reference.json, whose text for the model this run's text is compared with.
// Prints one JSON line: the real-time factor of the median call after one warm-up call (no
// encoder / decoder split: the npm package does not time them apart).
//
// Needs npm/dist (cd npm && npm run build) and Chromium (scripts/setup-tools.sh).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../scripts/static-server.mjs';
import { launchBrowser } from '../../npm/test/helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

const opts = { model: null, audio: null, threads: 1, reps: 3, language: null, reference: null };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  if (!process.argv[i].startsWith('--') || !(key in opts) || process.argv[i + 1] === undefined) {
    console.error(`usage: node bench/js/speech-browser.mjs ${Object.keys(opts).map((k) => `[--${k} X]`).join(' ')}`);
    process.exit(2);
  }
  opts[key] = typeof opts[key] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
if (!opts.model || !opts.audio) {
  console.error('--model and --audio are required');
  process.exit(2);
}
const audioFile = path.resolve(root, opts.audio);
for (const need of [path.join(root, 'npm', 'dist', 'index.js'), path.join(root, '.cache', 'models', opts.model, 'config.json'), audioFile]) {
  if (!fs.existsSync(need)) {
    console.error(`bench: missing ${need} (see the header of this script)`);
    process.exit(1);
  }
}

const server = await startServer({
  isolate: true,
  mounts: {
    '/': here,
    '/webformers/': path.join(root, 'npm', 'dist'),
    '/models/': path.join(root, '.cache', 'models'),
    '/audio/': path.dirname(audioFile),
  },
});
const browser = await launchBrowser({ protocolTimeout: 3_600_000 });

/** Runs in the page: loads the pipeline, transcribes the clip reps + 1 times. */
async function measure(run) {
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  // 16-bit PCM mono 16 kHz WAV to samples / 32768, as the native CLI and asr.mjs read it.
  const bytes = await (await fetch(`/audio/${run.audioName}`)).arrayBuffer();
  const view = new DataView(bytes);
  let samples = null;
  for (let at = 12; at + 8 <= bytes.byteLength;) {
    const id = String.fromCharCode(...new Uint8Array(bytes, at, 4));
    const size = view.getUint32(at + 4, true);
    if (id === 'data') {
      const n = Math.floor(Math.min(size, bytes.byteLength - at - 8) / 2);
      samples = new Float32Array(n);
      for (let i = 0; i < n; i++) samples[i] = view.getInt16(at + 8 + 2 * i, true) / 32768;
      break;
    }
    at += 8 + size + (size & 1);
  }
  if (!samples) throw new Error(`${run.audioName}: no WAV data chunk`);
  const { pipeline, env } = await import('/webformers/index.js');
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = '/models/';
  env.numThreads = run.threads;
  const t0 = performance.now();
  const asr = await pipeline('automatic-speech-recognition', run.model, { device: 'wasm' });
  const loadMs = performance.now() - t0;
  if (asr.threads !== run.threads) throw new Error(`webformers runs ${asr.threads} thread(s), not ${run.threads}`);
  const options = { chunk_length_s: 30, ...(run.language ? { language: run.language, task: 'transcribe' } : {}) };
  let output = await asr(samples, options); // warm-up
  const ms = [];
  for (let r = 0; r < run.reps; r++) {
    const t = performance.now();
    output = await asr(samples, options);
    ms.push(performance.now() - t);
  }
  const audioS = samples.length / 16000;
  const callS = median(ms) / 1000;
  return {
    adapter: asr.adapter ?? null,
    threads: asr.threads,
    crossOriginIsolated: self.crossOriginIsolated,
    load_ms: +loadMs.toFixed(0),
    audio_s: +audioS.toFixed(2),
    total_s: +callS.toFixed(3),
    call_s: ms.map((x) => +(x / 1000).toFixed(3)),
    rtf: +(audioS / callS).toFixed(2),
    text: output.text,
  };
}

let result;
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && console.error(`page: ${m.text()}`));
  await page.goto(server.url);
  const run = { model: opts.model, audioName: path.basename(audioFile), threads: opts.threads, reps: opts.reps, language: opts.language };
  result = {
    runtime: 'webformers', device: 'wasm', browser: await browser.version(), model: opts.model, reps: opts.reps,
    ...(await page.evaluate(measure, run)),
  };
  await page.close();
} finally {
  await browser.close();
  await server.close();
}
result.load_average = os.loadavg().map((x) => +x.toFixed(2));
if (opts.reference) {
  // Word-level edit distance to Python's transcript (as bench/transformersjs/asr.mjs reports it).
  const want = JSON.parse(fs.readFileSync(path.resolve(root, opts.reference), 'utf8')).models[opts.model]?.text ?? '';
  const norm = (s) => s.toLowerCase().replace(/[^a-z0-9' ]+/g, ' ').split(/\s+/).filter(Boolean);
  const [x, y] = [norm(result.text), norm(want)];
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  Object.assign(result, { word_errors: prev[y.length], reference_words: y.length });
}
console.log(JSON.stringify(result));
