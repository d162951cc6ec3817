// Browser task benchmark (not a test): text-classification throughput and question-answering
// latency in headless Chromium, webformers' npm package on 'wasm' (1 and 2 threads) beside
// Transformers.js 4.3.1 on ONNX Runtime Web's wasm (fp32 and q8, 1 and 2 threads), on the
// BERT-base-sized random models of bench/make-task-models.py: the workload of bench/tasks.sh
// (bench/corpus.json's 64 sentences in batches of 32, sentences/s, median of passes after one
// warm-up; bench/qa.json's question on a 298-token context, median latency of calls after
// warm-up calls). Each configuration runs in its own tab of one browser session (both runtimes
// fix their thread count when they start); pages are crossOriginIsolated so that both can use 2
// threads. Every configuration also runs bench/task-checks.json's inputs, and the results are
// compared with Transformers.js fp32 on one thread (labels/answers and scores).
//
//   node bench/js/tasks-browser.mjs [--reps 3] [--qa-reps 10] [--tasks text-classification,question-answering]
//        [--only webformers|transformers.js] [--json FILE]
//
// Needs: npm/dist built (cd npm && npm ci --ignore-scripts && npm run build), bench/transformersjs
// installed (npm ci --ignore-scripts there), the models (.cache/pyref-venv/bin/python
// bench/make-task-models.py) and Chromium (scripts/setup-tools.sh). Prints one JSON line per
// configuration and task, then a table.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../scripts/static-server.mjs';
import { launchBrowser } from '../../npm/test/helpers.mjs';
import { compareTask } from './task-compare.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const tjsModules = path.join(root, 'bench', 'transformersjs', 'node_modules');
const models = path.join(root, '.cache', 'bench-models');

const opts = { reps: 3, qaReps: 10, tasks: 'text-classification,question-answering', only: null, json: null };
const flags = { '--reps': 'reps', '--qa-reps': 'qaReps', '--tasks': 'tasks', '--only': 'only', '--json': 'json' };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = flags[process.argv[i]];
  if (!key || process.argv[i + 1] === undefined) {
    console.error(`usage: node bench/js/tasks-browser.mjs [${Object.keys(flags).join(' X] [')} X]`);
    process.exit(2);
  }
  opts[key] = typeof opts[key] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

const MODELS = { 'text-classification': 'bert-base-sequence-classification', 'question-answering': 'bert-base-question-answering' };
const tasks = opts.tasks.split(',');
const configs = [
  { runtime: 'transformers.js', dtype: 'fp32', threads: 1 }, // first: the reference of the checks
  { runtime: 'webformers', dtype: 'fp32', threads: 1 },
  { runtime: 'transformers.js', dtype: 'q8', threads: 1 },
  { runtime: 'transformers.js', dtype: 'fp32', threads: 2 },
  { runtime: 'webformers', dtype: 'fp32', threads: 2 },
  { runtime: 'transformers.js', dtype: 'q8', threads: 2 },
].filter((c) => !opts.only || c.runtime === opts.only);

for (const need of [
  ...(configs.some((c) => c.runtime === 'webformers') ? [path.join(root, 'npm', 'dist', 'index.js')] : []),
  path.join(tjsModules, '@huggingface', 'transformers', 'dist', 'transformers.js'),
  ...tasks.map((t) => path.join(models, MODELS[t], 'onnx', 'model_quantized.onnx')),
]) {
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
    '/models/': models,
    '/data/': path.join(root, 'bench'),
    '/tjs/': path.join(tjsModules, '@huggingface', 'transformers', 'dist'),
    '/ort/': path.join(tjsModules, 'onnxruntime-web', 'dist'),
  },
});

const browser = await launchBrowser({ protocolTimeout: 3_600_000 });
const chromium = await browser.version();

/** Runs in the page: loads one configuration of one task and measures it. */
async function measure(run) {
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const { callTransformersJs: call } = await import('/task-compare.mjs');
  const json = async (file) => (await fetch(`/data/${file}`)).json();
  const [corpus, qa, checks] = await Promise.all([json('corpus.json'), json('qa.json'), json('task-checks.json')]);
  const check = checks[run.task];
  let pipe;
  let adapter = null;
  let checkOptions;
  const t0 = performance.now();
  if (run.runtime === 'webformers') {
    const { pipeline, env } = await import('/webformers/index.js');
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = '/models/';
    env.numThreads = run.threads;
    pipe = await pipeline(run.task, run.model, { device: 'wasm' });
    adapter = pipe.adapter;
    if (pipe.threads !== run.threads) throw new Error(`webformers runs ${pipe.threads} thread(s), not ${run.threads}`);
    checkOptions = check.options;
  } else {
    const { pipeline, env } = await import('/tjs/transformers.js');
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = '/models/';
    env.useBrowserCache = false;
    env.backends.onnx.wasm.wasmPaths = {
      mjs: '/ort/ort-wasm-simd-threaded.asyncify.mjs',
      wasm: '/ort/ort-wasm-simd-threaded.asyncify.wasm',
    };
    env.backends.onnx.wasm.numThreads = run.threads;
    pipe = await pipeline(run.task, run.model, { device: 'wasm', dtype: run.dtype });
    checkOptions = check.tjs_options;
  }
  const result = { adapter, crossOriginIsolated: self.crossOriginIsolated, load_ms: +(performance.now() - t0).toFixed(0) };
  if (run.task === 'text-classification') {
    const pass = async () => {
      for (let i = 0; i < corpus.sentences.length; i += 32) await call(pipe, run.task, corpus.sentences.slice(i, i + 32));
    };
    await pass();
    const ms = [];
    for (let r = 0; r < run.reps; r++) {
      const t = performance.now();
      await pass();
      ms.push(performance.now() - t);
    }
    result.sentences_per_s = +(corpus.sentences.length / (median(ms) / 1000)).toFixed(2);
    result.pass_ms = ms.map((x) => +x.toFixed(0));
  } else {
    for (let i = 0; i < 2; i++) await call(pipe, run.task, qa);
    const ms = [];
    for (let r = 0; r < run.qaReps; r++) {
      const t = performance.now();
      await call(pipe, run.task, qa);
      ms.push(performance.now() - t);
    }
    result.latency_ms = +median(ms).toFixed(1);
    result.latency_ms_min = +Math.min(...ms).toFixed(1);
  }
  result.check_output = await call(pipe, run.task, check.input, checkOptions);
  return result;
}

const results = [];
try {
  for (const task of tasks) {
    let reference = null;
    for (const config of configs) {
      const run = { ...config, task, model: MODELS[task], reps: opts.reps, qaReps: opts.qaReps };
      const page = await browser.newPage();
      page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
      await page.goto(server.url);
      let result;
      try {
        result = { ...run, ...(await page.evaluate(measure, run)) };
      } catch (e) {
        result = { ...run, error: e.message.split('\n')[0] };
      }
      await page.close();
      result.load_average = os.loadavg().map((x) => +x.toFixed(2));
      if (result.check_output) {
        if (!reference) reference = result.check_output;
        else result.check_vs_transformersjs_fp32 = compareTask(task, reference, result.check_output);
        delete result.check_output;
      }
      result.chromium = chromium;
      results.push(result);
      console.log(JSON.stringify(result));
    }
  }
} finally {
  await browser.close();
  await server.close();
}

console.log(`\n${chromium}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), ${new Date().toISOString()}\n`);
console.log('| task | runtime | dtype | threads | sentences/s or latency (ms) | load (ms) | check vs Transformers.js fp32 (agree, max score diff) |');
console.log('|---|---|---|---|---|---|---|');
for (const r of results) {
  const figure = r.error ? `error: ${r.error}` : r.task === 'text-classification' ? `${r.sentences_per_s} sentences/s` : `${r.latency_ms} ms`;
  const c = r.check_vs_transformersjs_fp32;
  console.log(`| ${r.task} | ${r.runtime} | ${r.dtype} | ${r.threads} | ${figure} | ${r.load_ms ?? ''} | ${c ? `${c.agree}/${c.items}, ${c.max_score_diff}` : ''} |`);
}
if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(results, null, 2) + '\n');
