// The browser soak (not a test, not in CI: bench/soak.sh runs it): in headless Chromium, one page
// per device ('wasm', 'webgpu') loads, runs and disposes a pipeline of every task in a loop for a
// given time, as a long-lived page would, and checks that nothing grows: the engine's wasm memory
// (it never shrinks, so growth is a leak or fragmentation), the page's JS heap, the GPU buffers the
// page holds (GPUDevice.createBuffer counted against GPUBuffer.destroy) and the resident memory of
// Chromium's processes. Samples are taken after a forced garbage collection, after two warm-up
// rounds (the baseline) and at the end, and every call's result must stay identical to its first
// round's.
//
//   node bench/js/soak-browser.mjs [--minutes 30] [--devices wasm,webgpu] [--json FILE]
//
// Bounds (exit status 1 when one is exceeded): wasm memory at most the baseline + 10%; live GPU
// buffers at most the baseline's; JS heap and Chromium's resident memory at most 10% + 32 MiB over
// the baseline. The devices run one after the other, each for --minutes / (number of devices).
//
// Needs: npm/dist built (cd npm && npm run build), the models (scripts/fetch-models.sh) and
// Chromium (scripts/setup-tools.sh).

import fs from 'node:fs';
import { testServer, launchBrowser, openPage, evaluateWithin } from '../../npm/test/helpers.mjs';

const opts = { minutes: 30, devices: 'wasm,webgpu', json: null };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = { '--minutes': 'minutes', '--devices': 'devices', '--json': 'json' }[process.argv[i]];
  if (!key || process.argv[i + 1] === undefined) {
    console.error('usage: node bench/js/soak-browser.mjs [--minutes 30] [--devices wasm,webgpu] [--json FILE]');
    process.exit(2);
  }
  opts[key] = key === 'minutes' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

// The native soak's workloads (tests/soak.rs), with the page's paths.
const WORKLOADS = [
  { task: 'feature-extraction', model: '/models/all-MiniLM-L6-v2', input: ['A man is eating food.', 'A soak runs the same calls for half an hour.'], options: { pooling: 'mean', normalize: true } },
  { task: 'fill-mask', model: '/fixtures/tiny-tasks/bert-masked-lm', input: 'The capital of France is [MASK].' },
  { task: 'text-classification', model: '/fixtures/tiny-tasks/bert-sequence-classification', input: 'I loved this film.', options: { top_k: 2 } },
  { task: 'token-classification', model: '/fixtures/tiny-tasks/roberta-token-classification', input: 'Paris is in France.' },
  {
    task: 'question-answering',
    model: '/fixtures/tiny-tasks/distilbert-question-answering',
    input: { question: 'Where is Paris?', context: 'Paris is in France. It was a long day in the city.' },
  },
  {
    task: 'zero-shot-classification',
    model: '/fixtures/tiny-tasks/xlm-roberta-sequence-classification',
    input: 'The service was slow and rude.',
    options: { candidate_labels: ['food', 'service', 'weather'] },
  },
  { task: 'text-generation', model: '/fixtures/tiny-llama', input: 'Once upon a time', options: { max_new_tokens: 8 } },
  { task: 'text-generation', model: '/fixtures/tiny-gemma3', input: 'Once upon a time', options: { max_new_tokens: 8 } },
  { task: 'translation', model: '/fixtures/seq2seq/tiny-marian', input: 'Hello world.', options: { num_beams: 2, max_new_tokens: 8 } },
  { task: 'summarization', model: '/fixtures/seq2seq/tiny-bart', input: 'The soak loads every task again and again.', options: { max_new_tokens: 8 } },
  { task: 'text2text-generation', model: '/fixtures/seq2seq/tiny-t5', input: 'translate English to German: Hello.', options: { max_new_tokens: 8 } },
  { task: 'image-classification', model: '/fixtures/vision/tiny-dinov2-classifier', input: '/fixtures/images/cat.jpg', options: { top_k: 2 } },
  { task: 'image-feature-extraction', model: '/fixtures/vision/tiny-dinov2', input: '/fixtures/images/coffee.png' },
  {
    task: 'zero-shot-image-classification',
    model: '/fixtures/vision/tiny-clip',
    input: '/fixtures/images/astronaut.webp',
    options: { candidate_labels: ['cat', 'dog', 'bridge'] },
  },
  { task: 'object-detection', model: '/fixtures/vision/tiny-detr', input: '/fixtures/images/cat.jpg', options: { threshold: 0.0 } },
  { task: 'automatic-speech-recognition', model: '/fixtures/whisper/tiny-whisper-en', audio: '/fixtures/speech/us-short.flac', options: { return_timestamps: true, max_new_tokens: 16 } },
];

/** Installed in the page before anything runs: counts the GPU buffers alive (created, not destroyed). */
function countGpuBuffers() {
  const live = { buffers: 0, bytes: 0 };
  self.__soakGpu = live;
  if (!self.GPUDevice) return;
  const destroyed = new WeakSet();
  const create = GPUDevice.prototype.createBuffer;
  GPUDevice.prototype.createBuffer = function (descriptor) {
    const buffer = create.call(this, descriptor);
    live.buffers += 1;
    live.bytes += buffer.size;
    return buffer;
  };
  const destroy = GPUBuffer.prototype.destroy;
  GPUBuffer.prototype.destroy = function () {
    if (!destroyed.has(this)) {
      destroyed.add(this);
      live.buffers -= 1;
      live.bytes -= this.size;
    }
    return destroy.call(this);
  };
}

/** In the page: one round (every workload loaded, called once, disposed); results and samples. */
async function round(device, workloads) {
  const { pipeline, env, read_audio } = await import('/webformers/index.js');
  const glue = await import('/webformers/wasm/webformers_wasm.js');
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = '/';
  const results = [];
  for (const w of workloads) {
    try {
      const pipe = await pipeline(w.task, w.model, { device });
      const input = w.audio ? await read_audio(w.audio, 16000) : w.input;
      const out = await pipe(input, w.options ?? {});
      await pipe.dispose();
      // Tensors as their numbers; everything else as JSON (text-generation's stats are not enumerable).
      results.push(JSON.stringify(out?.dims ? { dims: out.dims, data: Array.from(out.data) } : out));
    } catch (e) {
      return { error: `${w.task} ${w.model}: ${e.message}` };
    }
  }
  // A full collection first (Chromium runs with --js-flags=--expose-gc): the page's dropped
  // ArrayBuffers (fetched weights) are freed lazily, which would make every sample noise.
  if (self.gc) self.gc();
  const memory = (await glue.default()).memory.buffer.byteLength;
  return {
    results,
    wasm_bytes: memory,
    js_heap_bytes: performance.memory?.usedJSHeapSize ?? 0,
    gpu_buffers: self.__soakGpu.buffers,
    gpu_bytes: self.__soakGpu.bytes,
  };
}

/** Resident bytes of Chromium's process tree (the browser, its renderers and its GPU process). */
function chromiumRss(rootPid) {
  const children = new Map();
  const rss = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = fs.readFileSync(`/proc/${entry}/status`, 'utf8');
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]);
      rss.set(Number(entry), Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0) * 1024);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch {
      // The process ended while listing.
    }
  }
  let total = 0;
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop();
    total += rss.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

const mb = (bytes) => Math.round((bytes / 1048576) * 10) / 10;
const view = (s) => ({ wasm_mb: mb(s.wasm_bytes), js_heap_mb: mb(s.js_heap_bytes), gpu_buffers: s.gpu_buffers, gpu_mb: mb(s.gpu_bytes), chromium_rss_mb: mb(s.rss_bytes) });

async function soak(browser, server, device, minutes) {
  const page = await openPage(browser, 'about:blank');
  await page.evaluateOnNewDocument(countGpuBuffers);
  await page.goto(server.url);
  const started = Date.now();
  const deadline = started + minutes * 60_000;
  let first = null;
  let baseline = null;
  let last = null;
  const changed = [];
  let rounds = 0;
  let nextReport = started;
  while (rounds < 3 || Date.now() < deadline) {
    const out = await evaluateWithin(page, 600, round, device, WORKLOADS);
    if (out.error) throw new Error(`round ${rounds} on ${device}: ${out.error}`);
    if (first === null) first = out.results;
    out.results.forEach((r, i) => {
      if (r !== first[i] && changed.length < 10) changed.push(`round ${rounds}: ${WORKLOADS[i].task} ${WORKLOADS[i].model}: ${r.slice(0, 200)} (first: ${first[i].slice(0, 200)})`);
    });
    rounds += 1;
    last = { ...out, rss_bytes: chromiumRss(browser.process().pid) };
    if (rounds === 2) baseline = last;
    if (Date.now() >= nextReport) {
      console.error(`soak ${device}: ${((Date.now() - started) / 60000).toFixed(1)} min, round ${rounds}: ${JSON.stringify(view(last))}`);
      nextReport += 60_000;
    }
  }
  const problems = page.problems.filter((m) => !/status of 404/.test(m));
  await page.close();
  const exceeded = [];
  if (last.wasm_bytes > baseline.wasm_bytes * 1.1) exceeded.push(`wasm memory ${baseline.wasm_bytes} -> ${last.wasm_bytes}`);
  if (last.gpu_buffers > baseline.gpu_buffers) exceeded.push(`GPU buffers ${baseline.gpu_buffers} -> ${last.gpu_buffers}`);
  const slack = (b) => b * 1.1 + 32 * 1048576;
  if (last.js_heap_bytes > slack(baseline.js_heap_bytes)) exceeded.push(`JS heap ${baseline.js_heap_bytes} -> ${last.js_heap_bytes}`);
  if (last.rss_bytes > slack(baseline.rss_bytes)) exceeded.push(`Chromium resident memory ${baseline.rss_bytes} -> ${last.rss_bytes}`);
  return {
    device,
    minutes: Math.round((Date.now() - started) / 6000) / 10,
    pipelines_per_round: WORKLOADS.length,
    rounds,
    calls: rounds * WORKLOADS.length,
    baseline_after_round_2: view(baseline),
    end: view(last),
    bounds_exceeded: exceeded,
    results_changed: changed,
    page_problems: problems.slice(0, 10),
  };
}

const devices = opts.devices.split(',');
const server = await testServer();
const browser = await launchBrowser({ protocolTimeout: 900_000, args: ['--enable-precise-memory-info', '--js-flags=--expose-gc'] });
const reports = [];
let failed = false;
try {
  for (const device of devices) {
    const report = await soak(browser, server, device, opts.minutes / devices.length);
    console.log(JSON.stringify(report));
    reports.push(report);
    failed ||= report.bounds_exceeded.length > 0 || report.results_changed.length > 0 || report.page_problems.length > 0;
  }
} finally {
  await browser.close();
  await server.close();
}
if (opts.json) fs.writeFileSync(opts.json, reports.map((r) => JSON.stringify(r)).join('\n') + '\n');
process.exit(failed ? 1 : 0);
