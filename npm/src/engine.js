// Loading the engine (the wasm-bindgen module) once, and calling into it safely.
//
// Every call into the engine goes through `guarded`: its promise settles even if the engine
// panics. A panic in wasm cannot unwind; it aborts the instance mid-call. The Rust side reports
// it (with its message) to `onPanic` before aborting, and `onPanic` rejects every call in
// flight, so nothing is left pending forever. The instance is unusable afterwards: later calls
// reject at once with the original message (reload the page or restart the process).

import init, * as wasm from './wasm/webformers_wasm.js';
import { env, IS_NODE, log } from './env.js';

const WASM_FILE = 'webformers_wasm_bg.wasm';

let loading = null;
let crashed = null;
const inflight = new Set();

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

/** Where the .wasm comes from (env.wasmPaths, else next to this file). */
export function wasmUrl() {
  const paths = env.wasmPaths;
  if (typeof paths === 'string' && paths) {
    return new URL(WASM_FILE, new URL(paths.endsWith('/') ? paths : `${paths}/`, baseHref()));
  }
  if (paths && typeof paths === 'object' && paths[WASM_FILE]) return new URL(paths[WASM_FILE], baseHref());
  return new URL('./wasm/webformers_wasm_bg.wasm', import.meta.url);
}

async function instantiate() {
  const url = wasmUrl();
  let source = url;
  if (IS_NODE && url.protocol === 'file:') {
    // Node's fetch cannot read file: URLs. (A variable specifier: bundlers leave it alone.)
    const fsPromises = 'node:fs/promises';
    const { readFile } = await import(/* webpackIgnore: true */ /* @vite-ignore */ fsPromises);
    source = await readFile(url);
  }
  try {
    await init({ module_or_path: source });
  } catch (e) {
    throw new WebformersError(`could not load the webformers WebAssembly module from ${url}: ${e?.message ?? e}`, 'wasm', {
      cause: e,
    });
  }
  wasm.setPanicHandler(onPanic);
  log.debug(`engine ${wasm.version()} loaded from ${url}`);
  return wasm;
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
