// The browser soak (not a test, not in CI: bench/soak.sh runs it): in headless Chromium, one page
// per device ('wasm', 'webgpu') loads, runs and disposes a pipeline of every task in a loop for a
// given time, as a long-lived page would, and checks that nothing grows: the engine's wasm memory
// (it never shrinks, so growth is a leak or fragmentation), the page's JS heap, the GPU buffers the
// page holds (GPUDevice.createBuffer counted against GPUBuffer.destroy) and the resident memory of
// Chromium's processes. Samples are taken after a forced garbage collection, after two warm-up
// rounds (the baseline) and at the end, and every call's result must stay identical to its first
// round's.
//
//   node bench/js/soak-browser.mjs [--minutes 30] [--devices wasm,webgpu,plain-webgpu] [--tasks TASK,...] [--reuse] [--json FILE]
//
// --tasks keeps only those tasks' workloads (to find which one grows memory); --reuse loads each
// pipeline once and only calls it every round (to tell loads from calls); the device
// 'plain-webgpu' makes the WebGPU calls of an engine round without the engine (the browser's own
// baseline for that call pattern), 'plain-webgpu-uploads' adds a model load's weight uploads,
// 'plain-webgpu-uploads-labels' also labels every object as wgpu does. Each sample's memory is also split by Chromium process kind,
// and the growth from the baseline to the end by allocator (a memory-infra dump).
//
// Bounds (exit status 1 when one is exceeded): wasm memory at most the baseline + 10%; live GPU
// buffers at most the baseline's; the JS heap and Chromium's resident memory at most 10% + 32 MiB
// over the baseline. The devices run one after the other, each for --minutes / (number of devices).
//
// Needs: npm/dist built (cd npm && npm run build), the models (scripts/fetch-models.sh) and
// Chromium (scripts/setup-tools.sh).

import fs from 'node:fs';
import { testServer, launchBrowser, openPage, evaluateWithin } from '../../npm/test/helpers.mjs';

const opts = { minutes: 30, devices: 'wasm,webgpu', json: null, tasks: null, reuse: false };
for (let i = 2; i < process.argv.length; i += 2) {
  if (process.argv[i] === '--reuse') {
    opts.reuse = true;
    i -= 1;
    continue;
  }
  const key = { '--minutes': 'minutes', '--devices': 'devices', '--json': 'json', '--tasks': 'tasks' }[process.argv[i]];
  if (!key || process.argv[i + 1] === undefined) {
    console.error('usage: node bench/js/soak-browser.mjs [--minutes 30] [--devices wasm,webgpu,plain-webgpu] [--tasks TASK,...] [--reuse] [--json FILE]');
    process.exit(2);
  }
  opts[key] = key === 'minutes' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

// The native soak's workloads (tests/soak.rs), with the page's paths.
const ALL_WORKLOADS = [
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
const WORKLOADS = opts.tasks ? ALL_WORKLOADS.filter((w) => opts.tasks.split(',').includes(w.task)) : ALL_WORKLOADS;

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
  // How often each object is made (per round, in the report): a kind made afresh every round
  // that the engine should cache (shader modules, pipelines) points at a leak outside the engine's
  // buffers.
  live.calls = {};
  const counted = (proto, name) => {
    const original = proto[name];
    proto[name] = function (...args) {
      live.calls[name] = (live.calls[name] ?? 0) + 1;
      return original.apply(this, args);
    };
  };
  for (const type of [GPUDevice, GPUQueue, GPUBuffer, GPUCommandEncoder, GPUComputePassEncoder]) {
    for (const name of Object.getOwnPropertyNames(type.prototype)) {
      const d = Object.getOwnPropertyDescriptor(type.prototype, name);
      if (name !== 'constructor' && name !== 'createBuffer' && name !== 'destroy' && typeof d.value === 'function') counted(type.prototype, name);
    }
  }
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
async function round(device, workloads, reuse) {
  const { pipeline, env, read_audio } = await import('/webformers/index.js');
  // The glue of whichever build the engine loads (simd128 or relaxed-simd).
  const { engine } = await import('/webformers/engine.js');
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = '/';
  const results = [];
  for (const w of workloads) {
    try {
      // --reuse: each pipeline loaded once and called every round (calls alone, no loads).
      self.__pipes ??= new Map();
      const key = `${w.task} ${w.model}`;
      const pipe = (reuse && self.__pipes.get(key)) || (await pipeline(w.task, w.model, { device }));
      if (reuse) self.__pipes.set(key, pipe);
      const input = w.audio ? await read_audio(w.audio, 16000) : w.input;
      const out = await pipe(input, w.options ?? {});
      if (!reuse) await pipe.dispose();
      // Tensors as their numbers; everything else as JSON (text-generation's stats are not enumerable).
      results.push(JSON.stringify(out?.dims ? { dims: out.dims, data: Array.from(out.data) } : out));
    } catch (e) {
      return { error: `${w.task} ${w.model}: ${e.message}` };
    }
  }
  // A full collection first (Chromium runs with --js-flags=--expose-gc): the page's dropped
  // ArrayBuffers (fetched weights) are freed lazily, which would make every sample noise.
  const collected = typeof self.gc === 'function';
  if (collected) self.gc();
  const memory = (await (await engine()).default()).memory.buffer.byteLength;
  return {
    results,
    wasm_bytes: memory,
    js_heap_bytes: performance.memory?.usedJSHeapSize ?? 0,
    gpu_buffers: self.__soakGpu.buffers,
    gpu_bytes: self.__soakGpu.bytes,
    gpu_calls: { ...self.__soakGpu.calls },
    collected,
  };
}

/**
 * In the page: the WebGPU calls of one engine round on the WebGPU device (counted by
 * `countGpuBuffers`: per round 3375 bind groups, 1357 queue writes, 82 submissions, 91 mapped
 * reads, 164 error scopes) made with plain WebGPU and no engine, as the device 'plain-webgpu': the
 * browser's own memory for that call pattern, the baseline the engine's WebGPU soak is judged by.
 */
async function plainWebGpuRound(weightSized, labelled) {
  // As the engine's (wgpu's) objects are: labelled, when asked.
  const label = (text) => (labelled ? { label: text } : {});
  if (!self.__plain) {
    const adapter = await navigator.gpu.requestAdapter();
    const device = await adapter.requestDevice();
    const module = device.createShaderModule({
      code: '@group(0) @binding(0) var<storage, read> a: array<f32>; @group(0) @binding(1) var<storage, read_write> b: array<f32>;' +
        '@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) i: vec3u) { if (i.x < arrayLength(&b)) { b[i.x] = a[i.x] * 2.0; } }',
    });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    self.__plain = { device, pipeline };
  }
  const { device, pipeline } = self.__plain;
  const n = 4096;
  const data = new Float32Array(n).fill(1);
  // As the engine's are: views of one large memory (its wasm memory, ~108 MB), at moving offsets.
  if (weightSized) self.__plainMemory ??= new Float32Array((108 << 20) / 4).fill(0.5);
  let writes = 0;
  let groups = 0;
  for (let submit = 0; submit < 82; submit++) {
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    const buffers = [];
    const make = (usage) => {
      const b = device.createBuffer({ size: n * 4, usage, ...label('webformers params') });
      buffers.push(b);
      return b;
    };
    const encoder = device.createCommandEncoder(label('webformers run'));
    const pass = encoder.beginComputePass(label('webformers ops'));
    pass.setPipeline(pipeline);
    const input = make(GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
    const output = make(GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC);
    for (; writes < ((submit + 1) * 1357) / 82; writes++) device.queue.writeBuffer(input, 0, data);
    if (weightSized) {
      // A model load's uploads: MiniLM's 87 weights, here 87 buffers of 1.5 MB written once each
      // from views of one large memory.
      for (let w = 0; w < 87 / 82 + (submit < 5 ? 1 : 0); w++) {
        const view = self.__plainMemory.subarray(((submit * 7919 + w * 104729) % 60) << 18, (((submit * 7919 + w * 104729) % 60) << 18) + 384 * 1024);
        const weight = device.createBuffer({ size: view.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, ...label('webformers weight') });
        buffers.push(weight);
        device.queue.writeBuffer(weight, 0, view);
      }
    }
    for (; groups < ((submit + 1) * 3375) / 82; groups++) {
      pass.setBindGroup(0, device.createBindGroup({ ...label('webformers kernel'), layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: input } }, { binding: 1, resource: { buffer: output } }] }));
      pass.dispatchWorkgroups(n / 64);
    }
    pass.end();
    const reads = submit < 9 ? 2 : 1; // 91 mapped reads in 82 submissions
    const staging = [];
    for (let r = 0; r < reads; r++) {
      const s = make(GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
      encoder.copyBufferToBuffer(output, 0, s, 0, n * 4);
      staging.push(s);
    }
    device.queue.submit([encoder.finish()]);
    const errors = (await Promise.all([device.popErrorScope(), device.popErrorScope()])).filter(Boolean);
    if (errors.length) throw new Error(`plain WebGPU round: ${errors[0].message}`);
    for (const s of staging) {
      await s.mapAsync(GPUMapMode.READ);
      if (new Float32Array(s.getMappedRange())[0] !== 2) throw new Error('plain WebGPU round: wrong result');
      s.unmap();
    }
    for (const b of buffers) b.destroy();
  }
  const collected = typeof self.gc === 'function';
  if (collected) self.gc();
  return { results: ['ok'], wasm_bytes: 0, js_heap_bytes: performance.memory?.usedJSHeapSize ?? 0, gpu_buffers: self.__soakGpu.buffers, gpu_bytes: self.__soakGpu.bytes, gpu_calls: { ...self.__soakGpu.calls }, collected };
}

/**
 * Resident bytes of Chromium's process tree (the browser, its renderers and its GPU process), in
 * all and per kind of process (`--type=` of its command line: renderer, gpu-process, utility for
 * the network and storage services; none for the browser itself), so that growth is attributed.
 */
const NOT_THE_PAGES = new Set(['utility:tracing', 'utility:on_device_model']);

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
  const kindOf = (pid) => {
    try {
      // Chromium rewrites its process title: the switches are one space-separated string there.
      const line = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const type = /--type=(\S+)/.exec(line)?.[1] ?? 'browser';
      const service = /--utility-sub-type=(\S+)/.exec(line)?.[1].split('.')[0];
      return service ? `${type}:${service}` : type;
    } catch {
      return 'gone';
    }
  };
  let total = 0;
  const byKind = {};
  const stack = [rootPid];
  while (stack.length) {
    const pid = stack.pop();
    const bytes = rss.get(pid) ?? 0;
    const kind = kindOf(pid);
    byKind[kind] = (byKind[kind] ?? 0) + bytes;
    // Not the page's: the tracing service the memory dumps start, and Chromium's on-device
    // model service, which it starts on its own some minutes in (~94 MB).
    if (!NOT_THE_PAGES.has(kind)) total += bytes;
    stack.push(...(children.get(pid) ?? []));
  }
  return { total, byKind };
}

/**
 * Chromium's own accounting of where each process's memory is (a memory-infra dump through the
 * DevTools protocol): per process kind, the size of each top-level allocator (malloc,
 * partition_alloc, v8, blink_gc, gpu, shared_memory, ...), so that growth the resident size shows
 * is pinned on an allocator.
 */
async function memoryDump(browser) {
  const session = await browser.target().createCDPSession();
  const events = [];
  session.on('Tracing.dataCollected', (e) => events.push(...e.value));
  const done = new Promise((resolve) => session.once('Tracing.tracingComplete', resolve));
  await session.send('Tracing.start', {
    transferMode: 'ReportEvents',
    traceConfig: { includedCategories: ['disabled-by-default-memory-infra'], excludedCategories: ['*'], memoryDumpConfig: { triggers: [] } },
  });
  await session.send('Tracing.requestMemoryDump', { deterministic: true, levelOfDetail: 'detailed' });
  await session.send('Tracing.end');
  await done;
  await session.detach();
  const kinds = new Map();
  for (const e of events) {
    if (e.ph === 'M' && e.name === 'process_name') kinds.set(e.pid, e.args.name);
  }
  const out = {};
  for (const e of events) {
    const allocators = e.ph === 'v' ? e.args?.dumps?.allocators : null;
    if (!allocators) continue;
    const kind = kinds.get(e.pid) ?? String(e.pid);
    const sizes = (out[kind] ??= {});
    for (const [name, node] of Object.entries(allocators)) {
      // Top-level allocators, and partition_alloc's partitions (array_buffer: ArrayBuffers'
      // contents; buffer, fast_malloc, layout: Blink's); other children are inside their parent.
      if (name.includes('/') && !/^partition_alloc\/partitions\/[^/]+$/.test(name)) continue;
      const size = node.attrs?.size?.value;
      if (size) sizes[name] = (sizes[name] ?? 0) + parseInt(size, 16);
    }
  }
  for (const sizes of Object.values(out)) for (const k of Object.keys(sizes)) sizes[k] = mb(sizes[k]);
  return out;
}

/** `after` less `before`, per process kind and allocator, the changes of at least 1 MB. */
function dumpGrowth(before, after) {
  const out = {};
  for (const [kind, sizes] of Object.entries(after)) {
    for (const [name, size] of Object.entries(sizes)) {
      const grew = Math.round((size - (before[kind]?.[name] ?? 0)) * 10) / 10;
      if (Math.abs(grew) >= 1) (out[kind] ??= {})[name] = grew;
    }
  }
  return out;
}

const mb = (bytes) => Math.round((bytes / 1048576) * 10) / 10;
const view = (s) => ({
  wasm_mb: mb(s.wasm_bytes),
  js_heap_mb: mb(s.js_heap_bytes),
  gc: s.collected,
  gpu_buffers: s.gpu_buffers,
  gpu_mb: mb(s.gpu_bytes),
  chromium_rss_mb: mb(s.rss_bytes),
  rss_by_process_mb: Object.fromEntries(Object.entries(s.rss_by_kind).map(([k, v]) => [k, mb(v)])),
});

async function soak(browser, server, device, minutes) {
  const page = await openPage(browser, 'about:blank');
  // Every console message the page writes (DevTools keeps them in the renderer): count and size.
  const consoleMessages = { count: 0, chars: 0, kinds: {} };
  page.on('console', (m) => {
    consoleMessages.count += 1;
    consoleMessages.chars += m.text().length;
    consoleMessages.kinds[m.type()] = (consoleMessages.kinds[m.type()] ?? 0) + 1;
  });
  await page.evaluateOnNewDocument(countGpuBuffers);
  // Puppeteer enables DevTools' Network domain on every page, and the renderer then keeps the
  // bodies of the page's responses for DevTools to show (tokenizer.json, config.json, ... of every
  // load): ~0.15-0.6 MB of Blink's buffer partition per pipeline load, which looked like the
  // engine's leak. A user's page has no DevTools attached, so the soak measures without it.
  await page._client().send('Network.disable');
  await page.goto(server.url);
  const started = Date.now();
  const deadline = started + minutes * 60_000;
  let first = null;
  let baseline = null;
  let baselineDump = null;
  let last = null;
  const changed = [];
  let rounds = 0;
  let nextReport = started;
  while (rounds < 3 || Date.now() < deadline) {
    const out = device.startsWith('plain-webgpu') ? await evaluateWithin(page, 600, plainWebGpuRound, device.includes('uploads'), device.includes('labels')) : await evaluateWithin(page, 600, round, device, WORKLOADS, opts.reuse);
    if (out.error) throw new Error(`round ${rounds} on ${device}: ${out.error}`);
    if (first === null) first = out.results;
    out.results.forEach((r, i) => {
      if (r !== first[i] && changed.length < 10) changed.push(`round ${rounds}: ${WORKLOADS[i].task} ${WORKLOADS[i].model}: ${r.slice(0, 200)} (first: ${first[i].slice(0, 200)})`);
    });
    rounds += 1;
    const calls = Object.fromEntries(Object.entries(out.gpu_calls ?? {}).map(([k, v]) => [k, v - (last?.gpu_calls?.[k] ?? 0)]));
    const rss = chromiumRss(browser.process().pid);
    last = { ...out, rss_bytes: rss.total, rss_by_kind: rss.byKind };
    if (rounds === 2) {
      baseline = last;
      baselineDump = await memoryDump(browser);
    }
    if (Date.now() >= nextReport) {
      console.error(`soak ${device}: ${((Date.now() - started) / 60000).toFixed(1)} min, round ${rounds}: ${JSON.stringify(view(last))} WebGPU calls this round: ${JSON.stringify(calls)}, console messages so far: ${JSON.stringify(consoleMessages)}`);
      nextReport += 60_000;
    }
  }
  const endDump = await memoryDump(browser);
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
    allocator_growth_mb: dumpGrowth(baselineDump, endDump),
    console_messages: consoleMessages,
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
