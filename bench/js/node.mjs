// The browser benchmark's workload (bench/README.md) with the npm package in Node: the 64 corpus
// sentences in batches of 32 (sentences/s, median of the passes after one warm-up) and one
// 16-token sentence at a time (median latency). Not a test.
//
//   node bench/js/node.mjs [--reps 7] [--latency-runs 100] [--threads N] [--device wasm|cpu]
//                          [--dtype fp32|q8] [--corpus corpus|passages] [--batch 32]
//
// --threads sets env.numThreads (default: the package's default, the cores up to 4; the native
// engine's default is every core). --device cpu runs the native engine (the Node-API addon of
// scripts/build-node-addon.sh), wasm (default) the WASM build. --corpus passages times
// bench/passages.json's 256-token passages (per token: nothing padded), in batches of --batch.
//
// Needs npm/dist (cd npm && npm run build) and the model (scripts/fetch-models.sh minilm).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const { pipeline, env } = await import(path.join(root, 'npm', 'dist', 'index.js'));

const opts = { reps: 7, latencyRuns: 100, threads: null, device: 'wasm', dtype: 'fp32', corpus: 'corpus', batch: 32 };
const FLAGS = { '--reps': 'reps', '--latency-runs': 'latencyRuns', '--threads': 'threads', '--device': 'device', '--dtype': 'dtype', '--corpus': 'corpus', '--batch': 'batch' };
const TEXT_FLAGS = new Set(['device', 'dtype', 'corpus']);
for (let i = 2; i < process.argv.length; i += 2) {
  const key = FLAGS[process.argv[i]];
  if (!key || process.argv[i + 1] === undefined) {
    console.error('usage: node bench/js/node.mjs [--reps N] [--latency-runs N] [--threads N] [--device wasm|cpu] [--dtype fp32|q8] [--corpus corpus|passages] [--batch N]');
    process.exit(2);
  }
  opts[key] = TEXT_FLAGS.has(key) ? process.argv[i + 1] : Number(process.argv[i + 1]);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const corpus = JSON.parse(fs.readFileSync(path.join(root, 'bench', `${opts.corpus}.json`), 'utf8'));
env.numThreads = opts.threads;
const t0 = performance.now();
const extractor = await pipeline('feature-extraction', path.join(root, '.cache', 'models', 'all-MiniLM-L6-v2'), { device: opts.device, dtype: opts.dtype });
const loadMs = performance.now() - t0;
const embed = (texts) => extractor(texts, { pooling: 'mean', normalize: true });
const pass = async () => {
  for (let i = 0; i < corpus.sentences.length; i += opts.batch) await embed(corpus.sentences.slice(i, i + opts.batch));
};
await pass();
const passMs = [];
for (let r = 0; r < opts.reps; r++) {
  const t = performance.now();
  await pass();
  passMs.push(performance.now() - t);
}
for (let i = 0; i < 5; i++) await embed(corpus.single);
const latMs = [];
for (let r = 0; r < opts.latencyRuns; r++) {
  const t = performance.now();
  await embed(corpus.single);
  latMs.push(performance.now() - t);
}
console.log(
  JSON.stringify({
    runtime: 'webformers',
    device: extractor.device,
    adapter: extractor.adapter,
    threads: extractor.threads ?? opts.threads,
    dtype: opts.dtype,
    corpus: opts.corpus,
    batch: opts.batch,
    node: process.version,
    cpu: os.cpus()[0]?.model,
    load_ms: +loadMs.toFixed(0),
    throughput_sent_per_s: +(corpus.sentences.length / (median(passMs) / 1000)).toFixed(1),
    corpus_pass_ms: passMs.map((x) => +x.toFixed(1)),
    latency_ms_median: +median(latMs).toFixed(2),
  }),
);
