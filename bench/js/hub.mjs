// Hub loading in the browser (a benchmark, not a test): all-MiniLM-L6-v2 from the Hub stand-in
// (tests/hub/server.py on 127.0.0.1: resolve URLs, the weights redirected to a second "CDN" port)
// in one headless Chromium session, each measurement in a new tab, the kinds alternating within
// each repetition:
//
//   raw      the files a cold load downloads, fetched in the page from the same server
//            (redirects followed, bodies read and dropped): the transfer alone
//   cold     webformers' pipeline() with an empty IndexedDB: pin, fetch, verify the sha256, store,
//            stream the tensors into the wasm heap, build the model (the engine already
//            instantiated, as the raw fetch needs none)
//   nocache  the same with env.useBrowserCache = false (nothing written to IndexedDB)
//   warm     webformers from IndexedDB, in a new tab: import, instantiate the engine, pipeline(),
//            and the first embedding ("to first result"); also the pipeline() part alone
//   tjs      Transformers.js 4.3.1 warm from its Cache API (filled by one earlier load), in a new
//            tab: import, pipeline() (ONNX Runtime Web, fp32, 1 thread) and the first embedding
//   tjsCold  Transformers.js with its Cache API emptied first: import, pipeline() (downloading
//            and caching the ONNX model), the first embedding
//
// `--rate-mb N` throttles the Hub stand-in to N MB/s (10^6 bytes) shared by all connections, a
// link of that speed (issue 14's bar: cold <= 1.1x the raw transfer at 50 MB/s); 0 (the default)
// is loopback's own speed. While each cold load runs, Chromium's processes' RSS (the browser's
// whole process tree, summed) is sampled every 20 ms: the peak, and the peak over the tab's RSS
// before the load started. `--tjs 0` leaves Transformers.js out (no ONNX export needed).
//
// Both runtimes run on one thread (the page is not crossOriginIsolated). Transformers.js also
// keeps ONNX Runtime's .wasm in its Cache API (its default), while webformers' .wasm comes from
// the page's server on every load: the warm comparison counts that against webformers.
// The wasm heap is measured after a cold load, when a load's peak is in it (wasm memory never
// shrinks): on 'wasm' the weights live there; on 'webgpu' (one extra load, SwiftShader here) they
// stream through it onto the device. Every warm load is checked to make no weight request, and
// the two runtimes' first embeddings are compared (cosine), so a broken load cannot pass for a
// fast one.
//
//   node bench/js/hub.mjs [--reps 7] [--heap-webgpu 1|0] [--rate-mb 50] [--tjs 1|0]
//
// Needs npm/dist (cd npm && npm run build), bench/transformersjs installed (npm ci
// --ignore-scripts there), the models (scripts/fetch-models.sh) and the ONNX export in
// .cache/models/all-MiniLM-L6-v2-onnx (bench/export-onnx.py), and Chromium.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../scripts/static-server.mjs';
import { launchBrowser } from '../../npm/test/helpers.mjs';
import { startHub } from '../../npm/test/hub-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const tjsModules = path.join(root, 'bench', 'transformersjs', 'node_modules');
const REPO = 'sentence-transformers/all-MiniLM-L6-v2';
const TJS_REPO = 'Xenova/all-MiniLM-L6-v2';
const WEIGHTS = 'model.safetensors';
const TJS_WEIGHTS = 'onnx/model.onnx';
const TEXT = 'The quick brown fox jumps over the lazy dog.';

const opts = { reps: 7, 'heap-webgpu': 1, 'rate-mb': 0, tjs: 1 };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  const value = Number(process.argv[i + 1]);
  const integer = key !== 'rate-mb';
  if (!(key in opts) || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < 0 || (key === 'reps' && value < 1)) {
    console.error('usage: node bench/js/hub.mjs [--reps N (>= 1)] [--heap-webgpu 1|0] [--rate-mb MB/s] [--tjs 1|0]');
    process.exit(2);
  }
  opts[key] = value;
}

const models = path.join(root, '.cache', 'models');
for (const need of [
  path.join(root, 'npm', 'dist', 'index.js'),
  path.join(tjsModules, '@huggingface', 'transformers', 'dist', 'transformers.js'),
  path.join(models, 'all-MiniLM-L6-v2', WEIGHTS),
  ...(opts.tjs ? [path.join(models, 'all-MiniLM-L6-v2-onnx', TJS_WEIGHTS)] : []),
]) {
  if (!fs.existsSync(need)) {
    console.error(`bench: missing ${need} (see the header of this script)`);
    process.exit(1);
  }
}
const modelBytes = fs.statSync(path.join(models, 'all-MiniLM-L6-v2', WEIGHTS)).size;

const load0 = os.loadavg();
const hub = await startHub({ [REPO]: path.join(models, 'all-MiniLM-L6-v2'), [TJS_REPO]: path.join(models, 'all-MiniLM-L6-v2-onnx') });
const server = await startServer({
  mounts: {
    '/': path.join(root, 'npm', 'test', 'pages'),
    '/webformers/': path.join(root, 'npm', 'dist'),
    '/tjs/': path.join(tjsModules, '@huggingface', 'transformers', 'dist'),
    '/ort/': path.join(tjsModules, 'onnxruntime-web', 'dist'),
  },
});
const browser = await launchBrowser({ protocolTimeout: 600_000 });
const chromium = await browser.version();
// Set after the start, so that the Hub's own set-up (hashing the weights) is not throttled.
await hub.rate(opts['rate-mb'] * 1e6);

/** Chromium's whole process tree's resident memory, in bytes (Linux /proc). */
function chromiumRss() {
  const root = browser.process()?.pid;
  if (!root) return 0;
  const parent = new Map();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command may hold spaces and parentheses: ppid is the second field after the last ')'.
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // The process ended between the listing and the read.
    }
  }
  const inTree = (pid) => {
    for (let p = pid, hops = 0; p && hops < 64; p = parent.get(p), hops++) if (p === root) return true;
    return false;
  };
  let pages = 0;
  for (const pid of parent.keys()) {
    if (!inTree(pid)) continue;
    try {
      pages += Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
    } catch {
      // Ended meanwhile.
    }
  }
  return pages * 4096;
}

/** In a new tab: `fn(args)`, with the Hub's endpoint in `args.endpoint`. With `sample`, the
 * result gets `rssPeak` and `rssRise` (bytes): Chromium's RSS sampled while `fn` ran. */
async function inTab(fn, args = {}, { sample = false } = {}) {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(server.url);
  let timer = null;
  let before = 0;
  let peak = 0;
  if (sample) {
    before = chromiumRss();
    peak = before;
    timer = setInterval(() => {
      peak = Math.max(peak, chromiumRss());
    }, 20);
  }
  try {
    const out = await page.evaluate(fn, { endpoint: hub.endpoint, text: TEXT, ...args });
    if (problems.length) throw new Error(`page error: ${problems.join('; ')}`);
    if (sample) {
      clearInterval(timer);
      peak = Math.max(peak, chromiumRss());
      Object.assign(out, { rssPeak: peak, rssRise: peak - before });
    }
    return out;
  } finally {
    if (timer) clearInterval(timer);
    await page.close();
  }
}

/** The files of the GETs answered since the last reset, in request order. */
async function downloaded() {
  const { requests } = await hub.stats();
  return [...new Set(requests.filter((r) => r.method === 'GET' && r.status < 300 && r.file).map((r) => r.file))];
}

/** Whether anything asked for `file` since the last reset. */
async function asked(file) {
  const { requests } = await hub.stats();
  return requests.some((r) => r.file === file);
}

// ---- in the page ----------------------------------------------------------------------------

async function raw({ endpoint, repo, files }) {
  const t = performance.now();
  let bytes = 0;
  for (const file of files) {
    const response = await fetch(`${endpoint}/${repo}/resolve/main/${file}`, { cache: 'no-store' });
    if (!response.ok) throw new Error(`${file}: HTTP ${response.status}`);
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.length;
    }
  }
  return { ms: performance.now() - t, bytes };
}

async function cold({ endpoint, repo, device, useBrowserCache }) {
  const { pipeline, env, cache } = await import('/webformers/index.js');
  const { engine } = await import('/webformers/engine.js');
  // The engine's module (the single-threaded build here: the page is not isolated).
  const wasm = await engine();
  await cache.clear();
  // The browser deletes the last run's blobs after the clear resolves: let that settle, so that
  // the load is timed as a user's first one would be, not beside 91 MB of deletions.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  env.remoteHost = `${endpoint}/`;
  env.useBrowserCache = useBrowserCache;
  const t = performance.now();
  const pipe = await pipeline('feature-extraction', repo, { device });
  const ms = performance.now() - t;
  // The instance is already made: init gives its exports, and with them its memory.
  const heap = (await wasm.default()).memory.buffer.byteLength;
  await pipe.dispose();
  return { ms, heap };
}

async function warm({ endpoint, repo, text }) {
  const t = performance.now();
  const { pipeline, env } = await import('/webformers/index.js');
  env.remoteHost = `${endpoint}/`;
  const { engine } = await import('/webformers/engine.js');
  await engine();
  const t1 = performance.now();
  const pipe = await pipeline('feature-extraction', repo, { device: 'wasm' });
  const loadMs = performance.now() - t1;
  const out = await pipe(text, { pooling: 'mean', normalize: true });
  return { ms: performance.now() - t, loadMs, embedding: Array.from(out.data) };
}

async function tjs({ endpoint, repo, text, empty = false }) {
  if (empty) await caches.delete('transformers-cache');
  const t = performance.now();
  const { pipeline, env } = await import('/tjs/transformers.js');
  env.allowLocalModels = false;
  env.remoteHost = `${endpoint}/`;
  env.useBrowserCache = true;
  env.backends.onnx.wasm.wasmPaths = { mjs: '/ort/ort-wasm-simd-threaded.asyncify.mjs', wasm: '/ort/ort-wasm-simd-threaded.asyncify.wasm' };
  env.backends.onnx.wasm.numThreads = 1;
  const pipe = await pipeline('feature-extraction', repo, { device: 'wasm', dtype: 'fp32' });
  const out = await pipe(text, { pooling: 'mean', normalize: true });
  return { ms: performance.now() - t, embedding: Array.from(out.data) };
}

// ---- the runs -------------------------------------------------------------------------------

const runs = { raw: [], cold: [], nocache: [], warmLoad: [], warm: [], ...(opts.tjs ? { tjs: [], tjsCold: [] } : {}) };
const rss = { cold: [], tjsCold: [] };
let heap = 0;
let heapGpu = null;
let files;
let rawBytes = 0;
let cosine = 1;
try {
  // Once, untimed: which files a cold load downloads (the raw transfer fetches the same), and
  // Transformers.js's Cache API filled (webformers' IndexedDB is filled by each cold run).
  await hub.reset();
  await inTab(cold, { repo: REPO, device: 'wasm', useBrowserCache: false });
  files = await downloaded();
  if (!files.includes(WEIGHTS)) throw new Error(`a cold load downloaded ${files.join(', ')}: no weights?`);
  if (opts.tjs) await inTab(tjs, { repo: TJS_REPO });

  for (let r = 0; r < opts.reps; r++) {
    const x = await inTab(raw, { repo: REPO, files });
    runs.raw.push(x.ms);
    rawBytes = x.bytes;
    runs.nocache.push((await inTab(cold, { repo: REPO, device: 'wasm', useBrowserCache: false })).ms);
    const c = await inTab(cold, { repo: REPO, device: 'wasm', useBrowserCache: true }, { sample: true });
    runs.cold.push(c.ms);
    rss.cold.push(c);
    heap = Math.max(heap, c.heap);

    await hub.reset();
    const w = await inTab(warm, { repo: REPO });
    if (await asked(WEIGHTS)) throw new Error('a warm webformers load asked for the weights');
    runs.warm.push(w.ms);
    runs.warmLoad.push(w.loadMs);

    if (opts.tjs) {
      const tc = await inTab(tjs, { repo: TJS_REPO, empty: true }, { sample: true });
      runs.tjsCold.push(tc.ms);
      rss.tjsCold.push(tc);
      await hub.reset();
      const t = await inTab(tjs, { repo: TJS_REPO });
      if (await asked(TJS_WEIGHTS)) throw new Error('a warm Transformers.js load asked for the weights');
      runs.tjs.push(t.ms);
      const dot = w.embedding.reduce((acc, v, i) => acc + v * t.embedding[i], 0);
      cosine = Math.min(cosine, w.embedding.length === t.embedding.length ? dot : -1);
    }
    console.log(`run ${r + 1}: ${Object.entries(runs).map(([k, v]) => `${k} ${v.at(-1).toFixed(0)}`).join(', ')}`);
  }
  if (opts['heap-webgpu']) {
    try {
      heapGpu = (await inTab(cold, { repo: REPO, device: 'webgpu', useBrowserCache: true })).heap;
    } catch (e) {
      console.log(`webgpu (for the heap): ${e.message.split('\n')[0]}`);
    }
  }
} finally {
  await browser.close();
  await server.close();
  await hub.close();
}

const sorted = (xs) => [...xs].sort((a, b) => a - b);
const min = (xs) => sorted(xs)[0];
const median = (xs) => {
  const s = sorted(xs);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f = (x) => x.toFixed(0);
const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
const load1 = os.loadavg();
console.log(
  `\n${chromium}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), ${new Date().toISOString().slice(0, 10)}, ` +
    `load average ${load0[0].toFixed(1)} before, ${load1[0].toFixed(1)} after; ${opts.reps} runs; ` +
    `a cold load downloads ${files.join(', ')} (${mb(rawBytes)}); ` +
    (opts['rate-mb'] ? `the Hub throttled to ${opts['rate-mb']} MB/s` : 'the Hub unthrottled (loopback)'),
);
console.log('\n| measurement | min (ms) | median (ms) |');
console.log('|---|---|---|');
const rows = [
  ['raw transfer of the same files (fetch in the page)', runs.raw],
  ['webformers cold load into IndexedDB (pipeline ready)', runs.cold],
  ['webformers cold load, useBrowserCache: false', runs.nocache],
  ['webformers warm load from IndexedDB (pipeline ready)', runs.warmLoad],
  ['webformers warm, to first result (import, engine, load, 1 embedding)', runs.warm],
  ...(opts.tjs
    ? [
        ['Transformers.js 4.3.1 warm from its Cache API, to first result', runs.tjs],
        ['Transformers.js 4.3.1 cold (Cache API emptied), to first result', runs.tjsCold],
      ]
    : []),
];
for (const [name, xs] of rows) console.log(`| ${name} | ${f(min(xs))} | ${f(median(xs))} |`);
const ratio = (a, b) => `${(median(a) / median(b)).toFixed(2)} (medians; ${(min(a) / min(b)).toFixed(2)} by minima)`;
console.log(`\ncold ÷ raw: ${ratio(runs.cold, runs.raw)}; cold without IndexedDB ÷ raw: ${ratio(runs.nocache, runs.raw)}`);
if (opts.tjs) {
  console.log(`Transformers.js warm ÷ webformers warm, to first result: ${ratio(runs.tjs, runs.warm)}`);
  console.log(`first embeddings, webformers vs Transformers.js: cosine ${cosine.toFixed(6)} (the lowest over the runs)`);
}
for (const [name, samples] of [['webformers cold load', rss.cold], ['Transformers.js cold load', rss.tjsCold]]) {
  if (!samples.length) continue;
  const peaks = samples.map((x) => x.rssPeak);
  const rises = samples.map((x) => x.rssRise);
  console.log(
    `Chromium's RSS during a ${name} (all its processes, sampled every 20 ms): peak ${mb(median(peaks))} ` +
      `(median; max ${mb(Math.max(...peaks))}), ${mb(median(rises))} over the tab before the load (median)`,
  );
}
console.log(
  `wasm heap after a cold load: ${mb(heap)} on wasm (the weights live there)` +
    (heapGpu === null ? '' : `, ${mb(heapGpu)} on webgpu`) +
    `; the model: ${mb(modelBytes)}`,
);
