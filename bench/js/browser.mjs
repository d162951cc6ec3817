// Browser benchmark (not a test): all-MiniLM-L6-v2 sentence embeddings in headless Chromium,
// webformers ('wasm' and 'webgpu') and Transformers.js 4.3.1 (ONNX Runtime Web) side by side in
// one browser session, on the workload of bench/README.md: the 64 corpus sentences in batches of
// 32 (sentences/s, median of passes after one warm-up) and one 16-token sentence at a time
// (median latency). Each configuration runs in its own tab (both runtimes fix their thread count
// when they start); pages are crossOriginIsolated (COOP/COEP), so that ONNX Runtime and
// webformers' threaded build can use 2 threads.
//
//   node bench/js/browser.mjs [--corpus corpus|passages] [--batch 32] [--reps 7] [--latency-runs 100] [--gpu-reps 1]
//        [--gpu-latency-runs 5] [--only webformers|transformers.js] [--devices wasm,webgpu]
//        [--generation wasm,webgpu|none] [--generation-threads 1,2]
//        [--generation-model SmolLM2-135M-Instruct.Q4_1.gguf] [--dtypes fp32,q8] [--json FILE]
//
// --dtypes: the embedding rows at each dtype (default fp32): webformers quantizes at load,
// Transformers.js loads the ONNX export's model_quantized.onnx for q8.
//
// --generation also measures text generation with SmolLM2-135M-Instruct Q4_1 (GGUF; another
// model of .cache/models with --generation-model, as bench/gemma3.sh does) on those devices (on
// 'wasm' with each of --generation-threads): prefill tokens/s on a prompt of 4 corpus sentences
// (154 of SmolLM2's tokens), then decode tokens/s over 64 new tokens.
//
// Needs: npm/dist built (cd npm && npm run build), bench/transformersjs installed
// (npm ci --ignore-scripts there), the ONNX export in .cache/models/all-MiniLM-L6-v2-onnx
// (bench/export-onnx.py), and Chromium (scripts/setup-tools.sh). Prints one JSON line per
// configuration, then a table.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../scripts/static-server.mjs';
import { launchBrowser } from '../../npm/test/helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const tjsModules = path.join(root, 'bench', 'transformersjs', 'node_modules');

const opts = { corpus: 'corpus', batch: 32, reps: 7, latencyRuns: 100, gpuReps: 1, gpuLatencyRuns: 5, only: null, devices: 'wasm,webgpu', generation: 'wasm', generationThreads: '1,2', generationModel: 'SmolLM2-135M-Instruct.Q4_1.gguf', dtypes: 'fp32', json: null };
const flags = {
  // --corpus passages --batch 8: bench/passages.json's 256-token passages, per token (no padding).
  '--corpus': 'corpus',
  '--batch': 'batch',
  '--reps': 'reps',
  '--latency-runs': 'latencyRuns',
  '--gpu-reps': 'gpuReps',
  '--gpu-latency-runs': 'gpuLatencyRuns',
  '--only': 'only',
  '--devices': 'devices',
  '--generation': 'generation',
  '--generation-threads': 'generationThreads',
  '--generation-model': 'generationModel',
  '--dtypes': 'dtypes',
  '--json': 'json',
};
for (let i = 2; i < process.argv.length; i += 2) {
  const key = flags[process.argv[i]];
  if (!key || process.argv[i + 1] === undefined) {
    console.error(`usage: node bench/js/browser.mjs [${Object.keys(flags).join(' X] [')} X]`);
    process.exit(2);
  }
  opts[key] = typeof opts[key] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

const configs = [
  // Chromium has relaxed-simd: webformers' default there is its relaxed build (fused
  // multiply-adds); the simd128 build beside it is what browsers without relaxed-simd run.
  { runtime: 'webformers', device: 'wasm', threads: 1 },
  { runtime: 'webformers', device: 'wasm', threads: 2 },
  { runtime: 'webformers (simd128)', device: 'wasm', threads: 1, relaxedSimd: false },
  { runtime: 'webformers (simd128)', device: 'wasm', threads: 2, relaxedSimd: false },
  { runtime: 'webformers', device: 'webgpu' },
  { runtime: 'transformers.js', device: 'wasm', threads: 1 },
  { runtime: 'transformers.js', device: 'wasm', threads: 2 },
  { runtime: 'transformers.js', device: 'webgpu' },
]
  .filter((c) => (!opts.only || c.runtime.split(' ')[0] === opts.only) && opts.devices.split(',').includes(c.device))
  .flatMap((c) => opts.dtypes.split(',').map((dtype) => ({ ...c, dtype })));

for (const need of [
  path.join(root, 'npm', 'dist', 'index.js'),
  path.join(tjsModules, '@huggingface', 'transformers', 'dist', 'transformers.js'),
  path.join(root, '.cache', 'models', 'all-MiniLM-L6-v2-onnx', 'onnx', 'model.onnx'),
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
    '/models/': path.join(root, '.cache', 'models'),
    '/data/': path.join(root, 'bench'),
    '/fixtures/': path.join(root, 'tests', 'fixtures'),
    '/tjs/': path.join(tjsModules, '@huggingface', 'transformers', 'dist'),
    '/ort/': path.join(tjsModules, 'onnxruntime-web', 'dist'),
  },
});

const browser = await launchBrowser({ protocolTimeout: 1_800_000 });
const chromium = await browser.version();

/** Runs in the page: loads one configuration and measures it. */
async function measure(config) {
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const corpus = await (await fetch(`/data/${config.corpus}.json`)).json();
  const reference = (await (await fetch('/fixtures/minilm-reference.json')).json()).inputs;
  let embed;
  let adapter = null;
  const t0 = performance.now();
  if (config.runtime.startsWith('webformers')) {
    const { pipeline, env } = await import('/webformers/index.js');
    env.allowLocalModels = true;
    env.allowRemoteModels = false;
    env.numThreads = config.threads ?? 1;
    env.relaxedSimd = config.relaxedSimd ?? null;
    const extractor = await pipeline('feature-extraction', 'all-MiniLM-L6-v2', { device: config.device, dtype: config.dtype });
    adapter = extractor.adapter;
    if (config.device === 'wasm' && extractor.threads !== config.threads) {
      throw new Error(`webformers runs ${extractor.threads} thread(s), not ${config.threads}`);
    }
    embed = async (texts) => (await extractor(texts, { pooling: 'mean', normalize: true })).tolist();
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
    env.backends.onnx.wasm.numThreads = config.threads ?? 1;
    const extractor = await pipeline('feature-extraction', 'all-MiniLM-L6-v2-onnx', { device: config.device, dtype: config.dtype });
    embed = async (texts) => (await extractor(texts, { pooling: 'mean', normalize: true })).tolist();
  }
  const loadMs = performance.now() - t0;
  const pass = async () => {
    for (let i = 0; i < corpus.sentences.length; i += config.batch) await embed(corpus.sentences.slice(i, i + config.batch));
  };
  await pass();
  const passMs = [];
  for (let r = 0; r < config.reps; r++) {
    const t = performance.now();
    await pass();
    passMs.push(performance.now() - t);
  }
  for (let i = 0; i < 5; i++) await embed([corpus.single]);
  const latMs = [];
  for (let r = 0; r < config.latencyRuns; r++) {
    const t = performance.now();
    await embed([corpus.single]);
    latMs.push(performance.now() - t);
  }
  const some = reference.filter((r) => r.num_tokens > 2).slice(0, 8);
  const got = await embed(some.map((r) => r.text));
  const minCos = Math.min(...some.map((r, i) => r.embedding.reduce((acc, x, j) => acc + x * got[i][j], 0)));
  return {
    adapter,
    crossOriginIsolated: self.crossOriginIsolated,
    load_ms: +loadMs.toFixed(0),
    throughput_sent_per_s: +(corpus.sentences.length / (median(passMs) / 1000)).toFixed(1),
    corpus_pass_ms: passMs.map((x) => +x.toFixed(1)),
    latency_ms_median: +median(latMs).toFixed(2),
    latency_ms_min: +Math.min(...latMs).toFixed(2),
    min_cosine_vs_reference: +minCos.toFixed(6),
  };
}

/** Runs in the page: a GGUF decoder's prefill and decode speed. */
async function measureGeneration(config) {
  const { pipeline, env } = await import('/webformers/index.js');
  env.numThreads = config.threads ?? 1;
  const corpus = await (await fetch('/data/corpus.json')).json();
  const t0 = performance.now();
  const generator = await pipeline('text-generation', `/models/${config.model}`, { device: config.device });
  const loadMs = performance.now() - t0;
  await generator('Hello', { max_new_tokens: 4 });
  // About 128 tokens of plain text; greedy decoding of 64 new tokens.
  const prompt = corpus.sentences.slice(0, 4).join(' ');
  // min_new_tokens: a model that would end its text early (Gemma 3 270M does after 21) still decodes 64.
  const [out] = await generator(prompt, { max_new_tokens: 64, min_new_tokens: 64, return_full_text: false });
  const s = out.stats;
  return {
    adapter: generator.adapter,
    threads: generator.threads,
    load_ms: +loadMs.toFixed(0),
    prompt_tokens: s.prompt_tokens,
    new_tokens: s.new_tokens,
    prefill_tok_per_s: +(s.prompt_tokens / s.prefill_seconds).toFixed(1),
    decode_tok_per_s: +((s.new_tokens - 1) / s.decode_seconds).toFixed(1),
  };
}

const results = [];
try {
  for (const config of configs) {
    const gpu = config.device === 'webgpu';
    const run = { ...config, corpus: opts.corpus, batch: opts.batch, reps: gpu ? opts.gpuReps : opts.reps, latencyRuns: gpu ? opts.gpuLatencyRuns : opts.latencyRuns };
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
    result.chromium = chromium;
    results.push(result);
    console.log(JSON.stringify(result));
  }
  const generationRuns = (opts.generation === 'none' ? [] : opts.generation.split(',')).flatMap((device) =>
    device === 'wasm' ? opts.generationThreads.split(',').map((t) => ({ device, threads: Number(t) })) : [{ device }],
  );
  for (const { device, threads } of generationRuns) {
    const page = await browser.newPage();
    await page.goto(server.url);
    const model = opts.generationModel;
    let result = { runtime: 'webformers', task: 'text-generation', model, device };
    try {
      result = { ...result, ...(await page.evaluate(measureGeneration, { device, threads, model })) };
    } catch (e) {
      result.error = e.message.split('\n')[0];
    }
    await page.close();
    results.push(result);
    console.log(JSON.stringify(result));
  }
} finally {
  await browser.close();
  await server.close();
}

console.log(`\n${chromium}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), ${new Date().toISOString().slice(0, 10)}\n`);
console.log('| runtime | device | dtype | threads | sentences/s | single latency (ms) | load (ms) | min cosine vs PyTorch |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of results.filter((r) => !r.task)) {
  if (r.error) {
    console.log(`| ${r.runtime} | ${r.device} | ${r.dtype} | ${r.threads ?? '-'} | error: ${r.error} | | | |`);
    continue;
  }
  console.log(`| ${r.runtime} | ${r.device} | ${r.dtype} | ${r.threads ?? '-'} | ${r.throughput_sent_per_s} | ${r.latency_ms_median} | ${r.load_ms} | ${r.min_cosine_vs_reference} |`);
}
const generation = results.filter((r) => r.task);
if (generation.length) {
  console.log('\n| text-generation | device | threads | prompt tokens | prefill tokens/s | decode tokens/s | load (ms) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of generation) {
    console.log(
      r.error
        ? `| ${r.model} | ${r.device} | ${r.threads ?? '-'} | error: ${r.error} | | | |`
        : `| ${r.model} | ${r.device} | ${r.threads ?? '-'} | ${r.prompt_tokens} | ${r.prefill_tok_per_s} | ${r.decode_tok_per_s} | ${r.load_ms} |`,
    );
  }
}
if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(results, null, 2) + '\n');
