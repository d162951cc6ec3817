// Browser task benchmark (not a test): text-classification throughput and question-answering
// latency in headless Chromium, webformers' npm package on 'wasm' (1 and 2 threads) beside
// Transformers.js 4.3.1 on ONNX Runtime Web's wasm (fp32 and q8, 1 and 2 threads), on the
// BERT-base-sized random models of bench/make-task-models.py: the workload of bench/tasks.sh
// (bench/corpus.json's 64 sentences in batches of 32, sentences/s, median of passes after one
// warm-up; bench/qa.json's question on a 298-token context, median latency of calls after
// warm-up calls). With `--tasks image-classification,zero-shot-image-classification`: the
// workload of bench/vision-tasks.sh on the models of bench/make-vision-models.py
// (bench/vision.json: images/s of calls on 1 and 8 images, the median call after a warm-up one;
// images given as URLs of this server, so every call fetches, decodes and preprocesses them;
// decoding is also timed alone with each runtime's RawImage.read, and Transformers.js's image
// processor too; webformers' resize and normalization run inside the engine's call).
// Each configuration runs in its own tab of one browser session (both runtimes fix their thread
// count when they start); pages are crossOriginIsolated so that both can use 2 threads. Every
// configuration also runs bench/task-checks.json's inputs, and the results are compared with
// Transformers.js fp32 on one thread (labels/answers and scores).
//
//   node bench/js/tasks-browser.mjs [--reps 3] [--qa-reps 10] [--tasks text-classification,question-answering]
//        [--image-reps 5] [--batch-reps 2] [--only webformers|transformers.js] [--json FILE]
//
// Needs: npm/dist built (cd npm && npm ci --ignore-scripts && npm run build), bench/transformersjs
// installed (npm ci --ignore-scripts there), the models (.cache/pyref-venv/bin/python
// bench/make-task-models.py, bench/make-vision-models.py) and Chromium (scripts/setup-tools.sh).
// Prints one JSON line per configuration and task, then a table.

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

const opts = {
  reps: 3, qaReps: 10, imageReps: 5, batchReps: 2, tasks: 'text-classification,question-answering', only: null, json: null,
};
const flags = {
  '--reps': 'reps', '--qa-reps': 'qaReps', '--image-reps': 'imageReps', '--batch-reps': 'batchReps', '--tasks': 'tasks',
  '--only': 'only', '--json': 'json',
};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = flags[process.argv[i]];
  if (!key || process.argv[i + 1] === undefined) {
    console.error(`usage: node bench/js/tasks-browser.mjs [${Object.keys(flags).join(' X] [')} X]`);
    process.exit(2);
  }
  opts[key] = typeof opts[key] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

const vision = JSON.parse(fs.readFileSync(path.join(root, 'bench', 'vision.json'), 'utf8'));
const MODELS = { 'text-classification': 'bert-base-sequence-classification', 'question-answering': 'bert-base-question-answering' };
// The image tasks' models and calls per task (one page load measures every batch size).
const BATCHES = {};
for (const r of vision.runs) {
  MODELS[r.task] = r.model;
  (BATCHES[r.task] ??= []).push(r.batch);
}
const tasks = opts.tasks.split(',');
const unknown = tasks.filter((t) => !MODELS[t]);
if (unknown.length) {
  console.error(`bench: unknown task ${unknown.join(', ')}; the tasks are ${Object.keys(MODELS).join(', ')}`);
  process.exit(2);
}
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
    '/fixtures/images/': path.join(root, 'tests', 'fixtures', 'images'),
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
  const check = { ...checks[run.task] };
  // Image inputs are paths from the repository root (bench/vision.json, task-checks.json); here
  // they are URLs of this server, which every runtime fetches and decodes in each call.
  const url = (p) => (Array.isArray(p) ? p.map(url) : new URL(
    p.replace(/^tests\/fixtures\/images\//, '/fixtures/images/').replace(/^\.cache\/bench-models\//, '/models/'),
    location.origin,
  ).href);
  const imageTask = run.batches !== undefined;
  if (imageTask) check.input = url(check.input);
  let pipe;
  let tjs = null;
  let RawImage;
  let adapter = null;
  let checkOptions;
  const t0 = performance.now();
  if (run.runtime === 'webformers') {
    const webformers = await import('/webformers/index.js');
    const { pipeline, env } = webformers;
    RawImage = webformers.RawImage;
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.localModelPath = '/models/';
    env.numThreads = run.threads;
    pipe = await pipeline(run.task, run.model, { device: 'wasm' });
    adapter = pipe.adapter;
    if (pipe.threads !== run.threads) throw new Error(`webformers runs ${pipe.threads} thread(s), not ${run.threads}`);
    checkOptions = check.options;
  } else {
    tjs = await import('/tjs/transformers.js');
    const { pipeline, env } = tjs;
    RawImage = tjs.RawImage;
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
  } else if (imageTask) {
    const vision = await json('vision.json');
    const image = url(vision.image);
    const options = run.task === 'zero-shot-image-classification' ? { candidate_labels: vision.labels } : {};
    result.batches = [];
    for (const batch of run.batches) {
      const input = batch === 1 ? image : Array(batch).fill(image);
      await call(pipe, run.task, input, options);
      const ms = [];
      for (let r = 0; r < (batch === 1 ? run.imageReps : run.batchReps); r++) {
        const t = performance.now();
        await call(pipe, run.task, input, options);
        ms.push(performance.now() - t);
      }
      const row = { images: batch, latency_ms: +median(ms).toFixed(1), images_per_s: +(batch / (median(ms) / 1000)).toFixed(2) };
      if (RawImage) {
        // The pipeline's preprocessing alone, as the call does it: RawImage.read (fetch and
        // decode in the browser) for each image, then Transformers.js's image processor (resize,
        // rescale, normalize); webformers' runs inside the engine's call, not timed apart here.
        const decodeMs = [];
        const processMs = [];
        for (let r = 0; r < Math.max(3, run.imageReps); r++) {
          let t = performance.now();
          const images = await Promise.all([input].flat().map((u) => RawImage.read(u)));
          decodeMs.push(performance.now() - t);
          if (tjs) {
            t = performance.now();
            await pipe.processor(images);
            processMs.push(performance.now() - t);
          }
        }
        row.decode_ms = +median(decodeMs).toFixed(1);
        if (tjs) row.preprocess_ms = +median(processMs).toFixed(1);
      }
      result.batches.push(row);
    }
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
      const run = {
        ...config, task, model: MODELS[task], reps: opts.reps, qaReps: opts.qaReps, imageReps: opts.imageReps,
        batchReps: opts.batchReps, batches: BATCHES[task],
      };
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
console.log('| task | runtime | dtype | threads | sentences/s, images/s or latency (ms) | load (ms) | check vs Transformers.js fp32 (agree, max score diff) |');
console.log('|---|---|---|---|---|---|---|');
for (const r of results) {
  const figures = r.error ? [`error: ${r.error}`]
    : r.task === 'text-classification' ? [`${r.sentences_per_s} sentences/s`]
    : r.batches ? r.batches.map((b) => `${b.images_per_s} images/s (${b.images} per call${b.decode_ms === undefined ? '' : `; decode ${b.decode_ms} ms`}${b.preprocess_ms === undefined ? '' : `, processor ${b.preprocess_ms} ms`})`)
    : [`${r.latency_ms} ms`];
  const c = r.check_vs_transformersjs_fp32;
  for (const figure of figures) {
    console.log(`| ${r.task} | ${r.runtime} | ${r.dtype} | ${r.threads} | ${figure} | ${r.load_ms ?? ''} | ${c ? `${c.agree}/${c.items}, ${c.max_score_diff}` : ''} |`);
  }
}
if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(results, null, 2) + '\n');
