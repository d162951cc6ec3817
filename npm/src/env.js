// The global settings, named and defaulted as transformers.js names them.

/** True in Node (not in a browser window or worker, even one that polyfills `process`). */
export const IS_NODE =
  typeof process !== 'undefined' &&
  !!process.versions?.node &&
  typeof window === 'undefined' &&
  typeof WorkerGlobalScope === 'undefined';

/**
 * A Node built-in (`node:fs/promises`...), imported by a variable specifier with the bundlers'
 * ignore comments, so that no bundler (webpack, Vite, esbuild, Next.js) tries to resolve it for
 * a browser build.
 */
export function nodeModule(name) {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ name);
}

export const VERSION = '0.1.0';

export const env = {
  /** The package's version. */
  version: VERSION,
  /** Where models named by id (`org/name`) are fetched from. */
  remoteHost: 'https://huggingface.co/',
  /** The path of a model's files under `remoteHost`. */
  remotePathTemplate: '{model}/resolve/{revision}/',
  /**
   * A Hugging Face access token for private and gated models. Sent as `Authorization: Bearer` to
   * `remoteHost`'s origin only (never to the CDN its downloads are redirected to).
   */
  accessToken: null,
  /** Keep Hub models in IndexedDB (browsers; see `cache`), so a second load downloads nothing. */
  useBrowserCache: true,
  /**
   * Keep Hub models on disk in Node, in huggingface_hub's cache layout (shared with the
   * `webformers` CLI and Python), so a second load downloads nothing.
   */
  useFSCache: true,
  /** That cache's folder: null for huggingface_hub's ($HF_HUB_CACHE, else ~/.cache/huggingface/hub). */
  cacheDir: null,
  /**
   * Keep models in `customCache` instead (transformers.js's setting): any object with the Web
   * Cache API's `match(url)` and `put(url, response)`, a `Cache` from `caches.open()` too. It then
   * replaces IndexedDB and the disk cache for Hub models, and also keeps models fetched from a URL
   * (local paths in browsers, plain HTTP folders). A file is put once, whole and verified; a
   * revision found there is used without asking the Hub, as transformers.js does.
   */
  useCustomCache: false,
  /** The cache `useCustomCache` uses: `{ match(url), put(url, response) }`. */
  customCache: null,
  /**
   * Keep the engine's .wasm in the browser's Cache API (cache `webformers-wasm`, keyed by its URL,
   * the package version and the file's digest), so that a page loaded again compiles it from
   * there instead of downloading it. On by default, as in transformers.js; where there is no Cache
   * API (Node, opaque origins) the .wasm is fetched as usual. Read when the engine first loads.
   */
  useWasmCache: true,
  /** Where models named by id are looked for first: a URL path in browsers, a folder in Node. */
  localModelPath: '/models/',
  /** Fetch models from `remoteHost` (when they are not found locally). */
  allowRemoteModels: true,
  /** Look for models under `localModelPath` first (default: in Node only, as transformers.js). */
  allowLocalModels: IS_NODE,
  /**
   * Where `webformers_wasm_bg.wasm` (and the threaded build's `webformers_wasm_threaded_bg.wasm`,
   * and their relaxed-simd twins `webformers_wasm_relaxed_bg.wasm` and
   * `webformers_wasm_threaded_relaxed_bg.wasm`) is served from: a URL prefix (folder), or an object
   * mapping the file names to their URLs. Default: next to the package's JavaScript.
   */
  wasmPaths: null,
  /**
   * The relaxed-simd builds (fused multiply-adds in the CPU kernels): null (default) or true to
   * take them where the JS engine validates relaxed-simd, false for the simd128 builds always.
   * Read when the engine first loads.
   */
  relaxedSimd: null,
  /**
   * CPU threads for device 'wasm': null (default) for the cores, at most 4; 1 for the
   * single-threaded build. More than one needs SharedArrayBuffer: a crossOriginIsolated page
   * (COOP/COEP headers) or Node; elsewhere the engine runs one thread. Read when the engine first
   * loads (the first pipeline).
   */
  numThreads: null,
  /**
   * Node: `device: 'cpu'` and `device: 'gpu'` run the native engine (the `webformers-<platform>`
   * addon: the machine's own SIMD kernels and threads, wgpu's Vulkan / Metal / DX12) where it is
   * installed; false runs the WASM build for them instead. Ignored in browsers.
   */
  useNative: true,
  /** 'debug' | 'info' | 'warning' | 'error' | 'none', or a `LogLevel` number (transformers.js's). */
  logLevel: 'warning',
  /** A request that receives nothing for this many milliseconds is abandoned (with an Error). */
  fetchTimeout: 30000,
};

/**
 * transformers.js's numeric levels (`env.logLevel = LogLevel.ERROR`): a message shows when its
 * level is at least env.logLevel.
 */
export const LogLevel = Object.freeze({ DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, NONE: 50 });

const LEVELS = { debug: LogLevel.DEBUG, info: LogLevel.INFO, warning: LogLevel.WARNING, warn: LogLevel.WARNING, error: LogLevel.ERROR, none: LogLevel.NONE };

function enabled(level) {
  const current = typeof env.logLevel === 'number' ? env.logLevel : LEVELS[String(env.logLevel).toLowerCase()] ?? LEVELS.warning;
  return LEVELS[level] >= current;
}

/**
 * transformers.js code configures ONNX Runtime's WASM backend here; the settings that have a
 * webformers meaning are kept as env's own: numThreads and wasmPaths are env.numThreads and
 * env.wasmPaths, and `proxy: true` makes pipeline() in a page run in a Web Worker (as
 * ONNX Runtime's proxy worker does). Any other setting is kept and has no effect.
 */
const wasmBackend = {
  get numThreads() {
    return env.numThreads;
  },
  set numThreads(n) {
    env.numThreads = n;
  },
  get wasmPaths() {
    return env.wasmPaths;
  },
  set wasmPaths(paths) {
    env.wasmPaths = paths;
  },
  /** Run pipeline() in a Web Worker (browser pages; elsewhere it runs where it is called). */
  proxy: false,
};
env.backends = { onnx: { wasm: wasmBackend } };

export const log = {
  debug: (...args) => enabled('debug') && console.debug('webformers:', ...args),
  info: (...args) => enabled('info') && console.info('webformers:', ...args),
  warn: (...args) => enabled('warning') && console.warn('webformers:', ...args),
  error: (...args) => enabled('error') && console.error('webformers:', ...args),
};
