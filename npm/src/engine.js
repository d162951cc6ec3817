// Loading the engine (the wasm-bindgen module) once, and calling into it safely.
//
// Four builds of the engine ship in dist/wasm/: the single-threaded one (webformers_wasm) and the
// threaded one (webformers_wasm_threaded: shared memory, `+atomics`), each also as a relaxed-simd
// build (`_relaxed`: the CPU kernels' multiply-adds fused, f32x4.relaxed_madd). The threaded build
// is used when more than one thread is asked for (`env.numThreads`, default: the cores, at most 4)
// and the environment allows it: a crossOriginIsolated page or worker (SharedArrayBuffer, nested
// Workers), or Node (worker_threads). Its CPU kernels then split their work between the calling
// thread and `threads - 1` pool workers (thread-worker.js), each an instance of the same module on
// the same memory. Anywhere else, or if the threaded build fails to start, the single-threaded
// build runs, as before. The relaxed-simd builds are taken where the JS engine validates
// relaxed-simd (a probe module: Chromium since 114, not Node 20) unless `env.relaxedSimd` is
// false; a relaxed build that fails to load falls back to its simd128 twin.
//
// Every call into the engine goes through `guarded`: its promise settles even if the engine
// panics. A panic in wasm cannot unwind; it aborts the instance mid-call. The Rust side reports
// it (with its message) to `onPanic` before aborting, and `onPanic` rejects every call in
// flight, so nothing is left pending forever. The instance is unusable afterwards: later calls
// reject at once with the original message (reload the page or restart the process).

import { env, IS_NODE, log, nodeModule } from './env.js';
import { compileCachedWasm, compileResponse } from './wasm-cache.js';

const WASM_FILE = 'webformers_wasm_bg.wasm';
const WASM_FILE_THREADED = 'webformers_wasm_threaded_bg.wasm';
const WASM_FILE_RELAXED = 'webformers_wasm_relaxed_bg.wasm';
const WASM_FILE_THREADED_RELAXED = 'webformers_wasm_threaded_relaxed_bg.wasm';
/**
 * A module whose one function uses f32x4.relaxed_madd (opcode 0xfd 0x105) on three zero vectors:
 * it validates exactly where the JS engine has relaxed-simd.
 */
const RELAXED_SIMD_PROBE = (() => {
  const zeros = [0xfd, 0x0c, ...new Array(16).fill(0)]; // v128.const 0
  const body = [0x00, ...zeros, ...zeros, ...zeros, 0xfd, 0x85, 0x02, 0x1a, 0x0b]; // madd, drop, end
  const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types = [0x01, 0x04, 0x01, 0x60, 0x00, 0x00]; // one type: () -> ()
  const funcs = [0x03, 0x02, 0x01, 0x00];
  const code = [0x0a, body.length + 2, 0x01, body.length, ...body];
  return new Uint8Array([...header, ...types, ...funcs, ...code]);
})();
/** The default upper bound of `env.numThreads: null` (the cores, at most this many). */
const MAX_DEFAULT_THREADS = 4;

let loading = null;
let crashed = null;
const inflight = new Set();
/** How the engine was loaded: {threads, threaded, note}. */
let loaded = null;

/** An Error from webformers, with a `code` saying what kind of failure it was. */
export class WebformersError extends Error {
  constructor(message, code = 'engine', options) {
    super(message, options);
    this.name = 'WebformersError';
    this.code = code;
  }
}

function baseHref() {
  if (typeof location !== 'undefined' && location.href) return location.href;
  if (IS_NODE) return `file://${process.cwd()}/`;
  return import.meta.url;
}

/** Where a .wasm comes from (env.wasmPaths, else next to this file). */
export function wasmUrl(file = WASM_FILE) {
  const paths = env.wasmPaths;
  if (typeof paths === 'string' && paths) {
    return new URL(file, new URL(paths.endsWith('/') ? paths : `${paths}/`, baseHref()));
  }
  if (paths && typeof paths === 'object' && paths[file]) return new URL(paths[file], baseHref());
  // Literal `new URL(..., import.meta.url)` expressions, so that bundlers ship every file.
  switch (file) {
    case WASM_FILE_THREADED:
      return new URL('./wasm/webformers_wasm_threaded_bg.wasm', import.meta.url);
    case WASM_FILE_RELAXED:
      return new URL('./wasm/webformers_wasm_relaxed_bg.wasm', import.meta.url);
    case WASM_FILE_THREADED_RELAXED:
      return new URL('./wasm/webformers_wasm_threaded_relaxed_bg.wasm', import.meta.url);
    default:
      return new URL('./wasm/webformers_wasm_bg.wasm', import.meta.url);
  }
}

/** Whether to load the relaxed-simd builds: where they validate, unless env.relaxedSimd is false. */
function useRelaxedSimd() {
  if (env.relaxedSimd === false) return false;
  let valid = false;
  try {
    valid = WebAssembly.validate(RELAXED_SIMD_PROBE);
  } catch {
    valid = false;
  }
  if (!valid && env.relaxedSimd === true) log.warn('env.relaxedSimd: this JS engine has no relaxed-simd; using the simd128 build');
  return valid;
}

/** The glue of a build (literal import()s, so that bundlers ship each). */
function importGlue(threaded, relaxed) {
  if (threaded) return relaxed ? import('./wasm/webformers_wasm_threaded_relaxed.js') : import('./wasm/webformers_wasm_threaded.js');
  return relaxed ? import('./wasm/webformers_wasm_relaxed.js') : import('./wasm/webformers_wasm.js');
}

/** The bytes of a file: URL in Node (its fetch cannot read them); else the URL itself. */
async function wasmSource(url) {
  if (IS_NODE && url.protocol === 'file:') {
    const { readFile } = await nodeModule('node:fs/promises');
    return readFile(url);
  }
  return url;
}

/** The threads `env.numThreads` asks for: a positive integer, or null for the default. */
async function requestedThreads() {
  const n = env.numThreads;
  if (n !== null && n !== undefined && n !== 'auto') {
    const k = Math.floor(Number(n));
    if (k >= 1) return k;
    log.warn(`env.numThreads = ${n} is not a positive integer; using the default`);
  }
  let cores = 1;
  if (IS_NODE) {
    const os = await nodeModule('node:os');
    cores = os.availableParallelism?.() ?? os.cpus().length;
  } else {
    cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  }
  return Math.max(1, Math.min(MAX_DEFAULT_THREADS, cores || 1));
}

/** Why this environment cannot run the threaded build (null when it can). */
function threadsUnavailable() {
  if (typeof SharedArrayBuffer === 'undefined') {
    return 'SharedArrayBuffer is not available (the page is not cross-origin isolated: serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)';
  }
  if (IS_NODE) return null;
  if (globalThis.crossOriginIsolated !== true) {
    return 'the page is not cross-origin isolated (serve it with the headers Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)';
  }
  if (typeof Worker === 'undefined') return 'this global scope cannot start Workers';
  return null;
}

async function instantiateSingle(note, relaxed) {
  const file = relaxed ? WASM_FILE_RELAXED : WASM_FILE;
  const url = wasmUrl(file);
  const glue = await importGlue(false, relaxed);
  try {
    // A module compiled from the Cache API (env.useWasmCache), else the file itself.
    const module = await compileCachedWasm(url, file);
    await glue.default({ module_or_path: module ?? (await wasmSource(url)) });
  } catch (e) {
    throw new WebformersError(`could not load the webformers WebAssembly module from ${url}: ${e?.message ?? e}`, 'wasm', {
      cause: e,
    });
  }
  loaded = { threads: 1, threaded: false, simd: relaxed ? 'relaxed-simd' : 'simd128', note };
  return { wasm: glue, url };
}

/** Compiles the module at `url`: streamed when it is fetched, from the bytes in Node. */
async function compileFile(url) {
  const source = await wasmSource(url);
  if (!(source instanceof URL)) return WebAssembly.compile(source);
  const response = await fetch(source);
  if (!response.ok) throw new Error(`HTTP ${response.status} for ${url}`);
  return compileResponse(response);
}

/** Compiles the threaded module once (it is sent to every worker), then instantiates it here. */
async function instantiateThreaded(threads, relaxed) {
  const file = relaxed ? WASM_FILE_THREADED_RELAXED : WASM_FILE_THREADED;
  const url = wasmUrl(file);
  const glue = await importGlue(true, relaxed);
  // From the Cache API (env.useWasmCache), else compiled from the file.
  const module = (await compileCachedWasm(url, file)) ?? (await compileFile(url));
  await glue.default({ module_or_path: module });
  const started = await startWorkers(glue, module, threads - 1, relaxed);
  const note = started < threads - 1 ? `${started + 1} of the ${threads} threads asked for started` : null;
  if (note) log.warn(note);
  loaded = { threads: started + 1, threaded: true, simd: relaxed ? 'relaxed-simd' : 'simd128', note };
  return { wasm: glue, url };
}

/** Loads a build, its relaxed-simd twin first when `relaxed`; a relaxed build that fails falls back. */
async function withRelaxedFallback(relaxed, load) {
  if (!relaxed) return load(false);
  try {
    return await load(true);
  } catch (e) {
    log.warn(`the relaxed-simd build could not load (${e?.message ?? e}); using the simd128 build`);
    return load(false);
  }
}

/**
 * The process's flags, less those about its own entry point (`node --input-type=module -e CODE`
 * would fail the worker: a worker inherits execArgv).
 */
function workerExecArgv() {
  const out = [];
  const args = process.execArgv;
  for (let i = 0; i < args.length; i++) {
    if (/^(-e|-p|-pe|--eval|--print)$/.test(args[i])) i++; // and its code
    else if (!/^--(input-type|eval|print)=/.test(args[i])) out.push(args[i]);
  }
  return out;
}

/** A pool thread's module, for Node's worker_threads (browsers name it literally, for bundlers). */
const THREAD_WORKER_FILE = './thread-worker.js';

/** The pool's workers; kept so that they are not collected (and for tests). */
const workers = [];

/**
 * Starts `count` pool workers on the module's shared memory; resolves with how many registered.
 * A worker that fails to start is left out (the pool works with any number of workers); one
 * whose instance later stops (a panic) poisons the pool, so that the engine panics instead of
 * waiting for it.
 */
async function startWorkers(wasm, module, count, relaxed) {
  const memory = wasm.threadPoolMemory();
  const poison = wasm.threadPoolPoisonAddress();
  // `relaxed`: which glue the worker imports (each build has its own).
  const init = { webformersThread: 1, module, memory, poison, relaxed };
  const one = async (i) => {
    let worker;
    const name = `webformers-thread-${i + 1}`;
    if (IS_NODE) {
      const { Worker } = await nodeModule('node:worker_threads');
      // Hidden from bundlers (a variable, webpack's ignore comment): they would copy this file
      // unbundled as an asset, which their minifiers then fail to parse.
      worker = new Worker(new URL(/* webpackIgnore: true */ THREAD_WORKER_FILE, import.meta.url), { workerData: init, name, execArgv: workerExecArgv() });
      worker.addEventListener = (type, fn) => worker.on(type, type === 'message' ? (data) => fn({ data }) : fn);
    } else {
      // This exact shape (`new Worker(new URL(literal, import.meta.url), {type: 'module'})`) is
      // what Vite and webpack recognise to bundle the worker with its imports.
      worker = new Worker(new URL('./thread-worker.js', import.meta.url), { type: 'module', name });
      worker.postMessage(init);
    }
    workers.push(worker);
    const started = new Promise((resolve) => {
      const timer = setTimeout(() => {
        log.warn(`${name} did not start within 30 s`);
        resolve(false);
      }, 30_000);
      worker.addEventListener('message', (event) => {
        const msg = event.data;
        if (msg?.webformersThread !== 1) return;
        if (msg.ready) {
          clearTimeout(timer);
          resolve(true);
        } else if (msg.error) {
          clearTimeout(timer);
          log.error(`${name}: ${msg.error}`);
          if (msg.died) onPanic(`a thread of the engine stopped: ${msg.error}`);
          resolve(false);
        }
      });
      worker.addEventListener('error', (event) => {
        event?.preventDefault?.();
        clearTimeout(timer);
        log.warn(`${name} failed to start: ${event?.message ?? event}`);
        resolve(false);
      });
    });
    // The pool never keeps a Node process alive (after the listeners: adding one refs again).
    if (IS_NODE) worker.unref();
    return started;
  };
  const ok = await Promise.all(Array.from({ length: count }, (_, i) => one(i)));
  return ok.filter(Boolean).length;
}

/**
 * True in a service worker, where `import()` is forbidden (the engine's glue is imported on first
 * use) and the browser stops the worker when idle: no place for a model.
 */
const IN_SERVICE_WORKER = typeof ServiceWorkerGlobalScope !== 'undefined' && globalThis instanceof ServiceWorkerGlobalScope;

async function instantiate() {
  if (IN_SERVICE_WORKER) {
    throw new WebformersError(
      'webformers cannot run in a service worker: service workers may not import() modules, which loading the engine needs, and the browser stops them when idle. ' +
        'Run pipelines in a page or a Web Worker; in a browser extension, in an extension page such as a side panel or an offscreen document',
      'unsupported',
    );
  }
  const threads = await requestedThreads();
  const relaxed = useRelaxedSimd();
  let note = null;
  let result = null;
  if (threads > 1) {
    note = threadsUnavailable();
    if (note) {
      log.info(`using one thread: ${note}`);
    } else {
      try {
        result = await withRelaxedFallback(relaxed, (r) => instantiateThreaded(threads, r));
      } catch (e) {
        note = `the threaded engine could not start (${e?.message ?? e})`;
        log.warn(`using one thread: ${note}`);
      }
    }
  }
  result ??= await withRelaxedFallback(relaxed, (r) => instantiateSingle(note, r));
  const { wasm, url } = result;
  wasm.setPanicHandler(onPanic);
  log.debug(`engine ${wasm.version()} loaded from ${url} (${loaded.simd}, ${loaded.threads} thread${loaded.threads > 1 ? 's' : ''})`);
  return wasm;
}

/**
 * How the engine runs on the CPU: `{threads, threaded, simd, note}` (`simd`: 'relaxed-simd' or
 * 'simd128'; `note`: why it runs on fewer threads than asked for), once it is loaded; null before.
 */
export function engineThreads() {
  return loaded && { ...loaded };
}

/** The engine's module, instantiated on first use. */
export function engine() {
  if (crashed) return Promise.reject(crashedError());
  loading ??= instantiate().catch((e) => {
    loading = null;
    throw e;
  });
  return loading;
}

function crashedError() {
  return new WebformersError(
    `the engine stopped after an internal error and cannot be used until the page (or process) is reloaded: ${crashed}`,
    'panic',
  );
}

function onPanic(message) {
  crashed ??= String(message);
  const error = new WebformersError(String(message), 'panic');
  for (const entry of inflight) entry.reject(error);
  inflight.clear();
}

/** Turns whatever the engine threw into an Error. */
export function asError(e) {
  if (e instanceof WebAssembly.RuntimeError) {
    crashed ??= e.message;
    return new WebformersError(`internal error in the engine (${e.message})`, 'panic', { cause: e });
  }
  if (e instanceof Error) {
    if (e.code && !(e instanceof WebformersError)) {
      // An engine error: keep its message and code, make it recognisable.
      const w = new WebformersError(e.message, e.code);
      w.stack = e.stack;
      return w;
    }
    return e;
  }
  return new WebformersError(String(e));
}

/** Runs `fn` (a call into the engine, sync or async) so that its promise always settles. */
/** `guarded` for the engine's synchronous calls (tokenizers): its errors thrown as WebformersErrors. */
export function guardedSync(fn) {
  if (crashed) throw crashedError();
  try {
    return fn();
  } catch (e) {
    throw asError(e);
  }
}

export function guarded(fn) {
  if (crashed) return Promise.reject(crashedError());
  return new Promise((resolve, reject) => {
    const entry = { reject };
    inflight.add(entry);
    const settle = (ok, value) => {
      if (!inflight.delete(entry)) return; // already rejected by onPanic
      if (ok) resolve(value);
      else reject(asError(value));
    };
    let result;
    try {
      result = fn();
    } catch (e) {
      settle(false, e);
      return;
    }
    Promise.resolve(result).then(
      (v) => settle(true, v),
      (e) => settle(false, e),
    );
  });
}
