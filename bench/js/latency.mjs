// Single-sentence latency by length with the npm package in Node: all-MiniLM-L6-v2 on one
// sentence of 2, 6, 14, 30 and 60 words (4 to 62 tokens with [CLS] and [SEP]), the mean of
// --runs calls after 30 warm-up calls per length. Separates a call's fixed cost (the weights read
// from memory once per call) from its cost per token. Not a test.
//
//   node bench/js/latency.mjs [--device cpu|wasm] [--threads N] [--runs 150]
//
// Needs npm/dist (cd npm && npm run build), the model (scripts/fetch-models.sh minilm), and for
// --device cpu the native addon (scripts/build-node-addon.sh).

import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const { pipeline, env } = await import(path.join(root, 'npm', 'dist', 'index.js'));

const opts = { device: 'cpu', threads: 1, runs: 150 };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i += 2) {
  const key = { '--device': 'device', '--threads': 'threads', '--runs': 'runs' }[args[i]];
  if (!key || args[i + 1] === undefined) {
    console.error('usage: node bench/js/latency.mjs [--device cpu|wasm] [--threads N] [--runs N]');
    process.exit(2);
  }
  opts[key] = key === 'device' ? args[i + 1] : Number(args[i + 1]);
}
env.numThreads = opts.threads;
const extractor = await pipeline('feature-extraction', path.join(root, '.cache', 'models', 'all-MiniLM-L6-v2'), { device: opts.device });
const words = 'The quick brown fox jumps over the lazy dog near the river bank today'.split(' ');
const rows = [];
for (const count of [2, 6, 14, 30, 60]) {
  const sentence = Array.from({ length: count }, (_, i) => words[i % words.length]).join(' ');
  for (let i = 0; i < 30; i++) await extractor(sentence);
  const start = performance.now();
  for (let i = 0; i < opts.runs; i++) await extractor(sentence);
  rows.push({ tokens: count + 2, ms: +((performance.now() - start) / opts.runs).toFixed(2) });
}
console.log(JSON.stringify({ device: extractor.device, adapter: extractor.adapter, threads: opts.threads, latency: rows }));
await extractor.dispose();
