// Transformers.js 4.3.1 in Node (onnxruntime-node, CPU) on a pipeline task, the workload of
// `webformers bench TASK` (bench/tasks.sh, bench/vision-tasks.sh): the throughput of calls on
// batches of corpus sentences, and/or the latency of one call. See bench/README.md ("Task
// benchmarks").
//
// node tasks.mjs --task T --model NAME [--dtype fp32|q8] [--threads N] [--reps N]
//                [--corpus FILE --batch N] [--input FILE] [--warmup N] [--compare FILE]
//                [--image FILE [--images N] [--labels A,B,...]]
// --model: a folder under .cache/bench-models (bench/make-task-models.py,
// make-vision-models.py); --input: a JSON file holding the call's first argument
// ({"question", "context"} for question-answering); --image: image tasks, each call on --images
// copies of this file (a path from the repository root), zero-shot-image-classification against
// --labels; --compare: webformers' results on bench/task-checks.json's inputs, compared with this
// run's. Prints one JSON line.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, pipeline, RawImage } from '@huggingface/transformers';
import { compareTask, callTransformersJs } from '../js/task-compare.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

function parseArgs(argv) {
  const opts = {
    task: null, model: null, dtype: 'fp32', threads: 1, reps: 7, corpus: null, batch: 32,
    input: null, warmup: 3, compare: null, image: null, images: 1, labels: null,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--') || !(key in opts) || argv[i + 1] === undefined) {
      throw new Error(`usage: node tasks.mjs ${Object.keys(opts).map((k) => `[--${k} X]`).join(' ')}`);
    }
    opts[key] = typeof opts[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!opts.task || !opts.model) throw new Error('--task and --model are required');
  if (!['fp32', 'q8'].includes(opts.dtype)) throw new Error('--dtype must be fp32 or q8');
  if (!opts.corpus && !opts.input && !opts.image && !opts.compare) throw new Error('give --corpus, --input, --image or --compare');
  if (opts.image && IMAGE_TASKS.includes(opts.task) !== true) throw new Error(`--image is for ${IMAGE_TASKS.join(' and ')}`);
  if (opts.task === 'zero-shot-image-classification' && opts.image && !opts.labels) throw new Error('--labels is required');
  return opts;
}

const IMAGE_TASKS = ['image-classification', 'zero-shot-image-classification'];
// Image inputs are paths from the repository root; Transformers.js reads files by absolute path.
const fromRoot = (input) => (Array.isArray(input) ? input.map(fromRoot) : path.resolve(root, input));

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const readJson = (file) => JSON.parse(fs.readFileSync(path.resolve(root, file), 'utf8'));

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
env.localModelPath = path.join(root, '.cache', 'bench-models');

const t0 = performance.now();
const pipe = await pipeline(opts.task, opts.model, {
  device: 'cpu',
  dtype: opts.dtype,
  // onnxruntime-node's InferenceSession options; one inter-op thread (the graph is a chain).
  session_options: { intraOpNumThreads: opts.threads, interOpNumThreads: 1 },
});
const result = {
  runtime: 'transformers.js',
  transformers_js: '4.3.1',
  node: process.version,
  cpu: os.cpus()[0]?.model,
  task: opts.task,
  model: opts.model,
  dtype: opts.dtype,
  threads: opts.threads,
  load_s: +((performance.now() - t0) / 1000).toFixed(2),
};

if (opts.corpus) {
  const sentences = readJson(opts.corpus).sentences;
  const pass = async () => {
    for (let i = 0; i < sentences.length; i += opts.batch) {
      await callTransformersJs(pipe, opts.task, sentences.slice(i, i + opts.batch));
    }
  };
  await pass(); // warm-up
  const ms = [];
  for (let r = 0; r < opts.reps; r++) {
    const t = performance.now();
    await pass();
    ms.push(performance.now() - t);
  }
  Object.assign(result, {
    sentences: sentences.length,
    batch: opts.batch,
    passes: opts.reps,
    sentences_per_s: +(sentences.length / (median(ms) / 1000)).toFixed(1),
  });
}

if (opts.input) {
  const input = readJson(opts.input);
  let output;
  for (let i = 0; i < Math.max(1, opts.warmup); i++) output = await callTransformersJs(pipe, opts.task, input);
  const ms = [];
  for (let r = 0; r < opts.reps; r++) {
    const t = performance.now();
    await callTransformersJs(pipe, opts.task, input);
    ms.push(performance.now() - t);
  }
  // The same call's tokenizer and model alone: what the pipeline's post-processing adds on top.
  const encode = () => (opts.task === 'question-answering'
    ? pipe.tokenizer(input.question, { text_pair: input.context, padding: true, truncation: true })
    : pipe.tokenizer(input, { padding: true, truncation: true }));
  const modelMs = [];
  for (let r = 0; r < opts.reps; r++) {
    const t = performance.now();
    await pipe.model(encode());
    modelMs.push(performance.now() - t);
  }
  Object.assign(result, {
    calls: opts.reps,
    input_tokens: encode().input_ids.dims.at(-1),
    latency_ms: +median(ms).toFixed(2),
    latency_ms_min: +Math.min(...ms).toFixed(2),
    tokenizer_and_model_ms: +median(modelMs).toFixed(2),
    output,
  });
}

if (opts.image) {
  const file = fromRoot(opts.image);
  const input = opts.images === 1 ? file : Array(opts.images).fill(file);
  const options = opts.task === 'zero-shot-image-classification' ? { candidate_labels: opts.labels.split(',') } : {};
  let output;
  for (let i = 0; i < Math.max(1, opts.warmup); i++) output = await callTransformersJs(pipe, opts.task, input, options);
  const ms = [];
  for (let r = 0; r < opts.reps; r++) {
    const t = performance.now();
    await callTransformersJs(pipe, opts.task, input, options);
    ms.push(performance.now() - t);
  }
  // The pipeline's preprocessing alone, as its _call does it: decoding (prepareImages reads each
  // image with RawImage.read), then the image processor (resize, rescale, normalize).
  const decodeMs = [];
  const processMs = [];
  for (let r = 0; r < opts.reps; r++) {
    let t = performance.now();
    const images = await Promise.all([input].flat().map((f) => RawImage.read(f)));
    decodeMs.push(performance.now() - t);
    t = performance.now();
    await pipe.processor(images);
    processMs.push(performance.now() - t);
  }
  const latency = median(ms);
  Object.assign(result, {
    images: opts.images,
    calls: opts.reps,
    latency_ms: +latency.toFixed(2),
    latency_ms_min: +Math.min(...ms).toFixed(2),
    images_per_s: +(opts.images / (latency / 1000)).toFixed(2),
    decode_ms: +median(decodeMs).toFixed(2),
    preprocess_ms: +median(processMs).toFixed(2),
    // The first image's best labels.
    output: (Array.isArray(output[0]) ? output[0] : output).slice(0, 3),
  });
}

if (opts.compare) {
  const check = readJson('bench/task-checks.json')[opts.task];
  const checkInput = IMAGE_TASKS.includes(opts.task) ? fromRoot(check.input) : check.input;
  const got = await callTransformersJs(pipe, opts.task, checkInput, check.tjs_options);
  const want = JSON.parse(fs.readFileSync(opts.compare, 'utf8'));
  result.check_vs_webformers = compareTask(opts.task, want, got);
}

console.log(JSON.stringify(result));
