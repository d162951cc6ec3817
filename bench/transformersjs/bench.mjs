// ONNX Runtime baseline: Transformers.js 4.3.1 in Node (onnxruntime-node, CPU)
// on the webformers embedding workload. See bench/README.md.
//
// node bench.mjs [--dtype fp32|q8] [--threads N] [--reps N] [--latency-runs N]
//                [--batch N] [--embeddings FILE|-] [--corpus FILE]
// Prints one JSON line of results (then, with --embeddings -, one of embeddings).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, pipeline } from '@huggingface/transformers';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

function parseArgs(argv) {
  const opts = {
    dtype: 'fp32',
    threads: 1,
    reps: 7,
    latencyRuns: 100,
    batch: 32,
    embeddings: null,
    model: 'all-MiniLM-L6-v2-onnx',
    corpus: path.join('bench', 'corpus.json'),
  };
  const names = {
    '--dtype': 'dtype', '--threads': 'threads', '--reps': 'reps',
    '--latency-runs': 'latencyRuns', '--batch': 'batch', '--embeddings': 'embeddings',
    '--model': 'model', '--corpus': 'corpus',
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || argv[i + 1] === undefined) {
      throw new Error(`usage: node bench.mjs [${Object.keys(names).join(' X] [')} X]`);
    }
    const v = argv[i + 1];
    opts[key] = typeof opts[key] === 'number' ? Number(v) : v;
  }
  if (!['fp32', 'q8'].includes(opts.dtype)) throw new Error(`--dtype must be fp32 or q8`);
  return opts;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

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

const corpus = JSON.parse(fs.readFileSync(path.resolve(root, opts.corpus), 'utf8'));

const extractor = await pipeline('feature-extraction', opts.model, {
  device: 'cpu',
  dtype: opts.dtype,
  // Passed through to onnxruntime-node's InferenceSession.create. One
  // inter-op thread: the graph is a chain, extra threads only contend.
  session_options: { intraOpNumThreads: opts.threads, interOpNumThreads: 1 },
});
const embed = (texts) => extractor(texts, { pooling: 'mean', normalize: true });

async function corpusPass() {
  const out = [];
  for (let i = 0; i < corpus.sentences.length; i += opts.batch) {
    const t = await embed(corpus.sentences.slice(i, i + opts.batch));
    out.push(...t.tolist());
  }
  return out;
}

// Throughput: the whole corpus in batches, one warm-up pass first.
const embeddings = await corpusPass();
const passMs = [];
for (let r = 0; r < opts.reps; r++) {
  const t0 = performance.now();
  await corpusPass();
  passMs.push(performance.now() - t0);
}

// Latency: one 16-token sentence at a time, after a few warm-up calls.
for (let i = 0; i < 5; i++) await embed(corpus.single);
const latMs = [];
for (let r = 0; r < opts.latencyRuns; r++) {
  const t0 = performance.now();
  await embed(corpus.single);
  latMs.push(performance.now() - t0);
}

// Sanity check against the PyTorch golden data, so a broken export or a
// tokenizer mismatch cannot pass for a fast result.
let referenceCosine = null;
const refPath = path.join(root, 'tests', 'fixtures', 'minilm-reference.json');
if (fs.existsSync(refPath)) {
  const ref = JSON.parse(fs.readFileSync(refPath, 'utf8')).inputs;
  const some = ref.filter((r) => r.num_tokens > 2).slice(0, 8);
  const got = (await embed(some.map((r) => r.text))).tolist();
  referenceCosine = Math.min(
    ...some.map((r, i) => r.embedding.reduce((acc, x, j) => acc + x * got[i][j], 0)),
  );
}

const medPass = median(passMs);
console.log(JSON.stringify({
  runtime: 'transformers.js',
  transformers_js: '4.3.1',
  node: process.version,
  cpu: os.cpus()[0]?.model,
  model: opts.model,
  dtype: opts.dtype,
  threads: opts.threads,
  batch: opts.batch,
  sentences: corpus.sentences.length,
  throughput_sent_per_s: +(corpus.sentences.length / (medPass / 1000)).toFixed(1),
  corpus_pass_ms_median: +medPass.toFixed(2),
  corpus_pass_ms_all: passMs.map((x) => +x.toFixed(2)),
  latency_ms_median: +median(latMs).toFixed(3),
  latency_ms_min: +Math.min(...latMs).toFixed(3),
  latency_runs: opts.latencyRuns,
  min_cosine_vs_reference: referenceCosine === null ? null : +referenceCosine.toFixed(6),
}));

if (opts.embeddings) {
  const text = JSON.stringify({ dtype: opts.dtype, sentences: corpus.sentences, embeddings });
  if (opts.embeddings === '-') console.log(text);
  else fs.writeFileSync(opts.embeddings, text + '\n');
}
