// The native engine in Node: webformers-core built as a Node-API addon (bindings/node), with the
// CPU kernels of the machine (AVX-512 / AVX2 / NEON, rayon threads) and wgpu's native GPU
// backends (Vulkan, Metal, DX12), instead of the WASM build. In Node, devices 'cpu' and 'auto'
// (as in transformers.js, whose Node default is onnxruntime-node's CPU) and 'gpu' take it where
// a binary for the platform exists: the optional package `webformers-<triple>`, or, in a
// checkout of the repository, what scripts/build-node-addon.sh laid out in npm/native/<triple>/.
// Elsewhere, and for device 'wasm', the WASM build runs.
//
// A native pipeline has the same surface as the engine's `TaskPipeline` (`run`, `call`, `info`,
// `model`), and a native model that of its `ModelRunner`, so that pipeline.js's callable and
// model.js's PreTrainedModel serve both.

import { env, IS_NODE, log, nodeModule } from './env.js';
import { WebformersError } from './engine.js';
import { nativeSource } from './fetch.js';

/** napi-rs's platform names, by Node's `${process.platform}-${process.arch}`. */
const TRIPLES = {
  'linux-x64': 'linux-x64-gnu',
  'linux-arm64': 'linux-arm64-gnu',
  'darwin-arm64': 'darwin-arm64',
  'darwin-x64': 'darwin-x64',
  'win32-x64': 'win32-x64-msvc',
};

let loading = null;

/**
 * The native engine's device for the device a user asked for: 'cpu' or 'gpu', or null where the
 * WASM build runs (outside Node, device 'wasm' or 'webgpu', `env.useNative = false`).
 */
export function nativeDevice(asked) {
  if (!IS_NODE || env.useNative === false) return null;
  return { cpu: 'cpu', auto: 'cpu', gpu: 'gpu' }[asked] ?? null;
}

/** The addon, or null where none is installed (or outside Node, or when `env.useNative` is false). */
export function nativeEngine() {
  if (!IS_NODE || env.useNative === false) return Promise.resolve(null);
  loading ??= loadAddon();
  return loading;
}

async function loadAddon() {
  const triple = TRIPLES[`${process.platform}-${process.arch}`];
  if (!triple) return null;
  const { createRequire } = await nodeModule('module');
  const { fileURLToPath } = await nodeModule('url');
  const path = await nodeModule('path');
  const require = createRequire(import.meta.url);
  // A path joined at run time, not `new URL('...', import.meta.url)`, which bundlers would try
  // to ship as an asset.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const places = [`webformers-${triple}`, path.join(here, '..', 'native', triple, `webformers.${triple}.node`)];
  for (const place of places) {
    try {
      const addon = require(place);
      log.debug(`native engine: ${place}`);
      return addon;
    } catch (e) {
      if (e?.code !== 'MODULE_NOT_FOUND') log.warn(`the native engine at ${place} did not load (${e?.message ?? e}); using WASM`);
    }
  }
  return null;
}

/** The addon's errors carry their code before a NUL (`code\0message`): as WebformersErrors. */
function nativeError(e) {
  const message = String(e?.message ?? e);
  const cut = message.indexOf('\u0000');
  if (cut < 0) return e instanceof Error ? e : new WebformersError(message, 'engine');
  return new WebformersError(message.slice(cut + 1), message.slice(0, cut));
}

/** Runs `fn`, its throw or rejection as a WebformersError. */
async function coded(fn) {
  try {
    return await fn();
  } catch (e) {
    throw nativeError(e);
  }
}

let threadsSet = false;

/**
 * Where the addon reads `model` (nativeSource: a folder, or a Hub repository with the package's
 * endpoint, token and cache folder), or null where only the JS loaders reach it (the WASM build
 * then runs). Sizes the addon's thread pool from `env.numThreads` before its first load.
 */
export async function nativeModelSource(addon, model, { revision, localOnly }) {
  const source = await nativeSource(model, { revision, localOnly });
  if (!source) return null;
  if (source.repo) {
    Object.assign(source, {
      endpoint: String(env.remoteHost),
      token: env.accessToken ? String(env.accessToken) : undefined,
      cacheDir: env.cacheDir ? String(env.cacheDir) : undefined,
      offline: Boolean(source.offline),
    });
  }
  // rayon's pool takes its size once, before the first pipeline.
  if (!threadsSet && env.numThreads) {
    threadsSet = true;
    try {
      addon.setThreads(Number(env.numThreads));
    } catch (e) {
      log.warn(`env.numThreads: ${e?.message ?? e}`);
    }
  }
  return source;
}

/** A progress callback for the addon: it must never throw (see `loadNative`). */
function progressSink(progress) {
  return progress
    ? (event) => {
        try {
          progress(event);
        } catch (e) {
          log.warn('progress_callback threw:', e);
        }
      }
    : undefined;
}

/**
 * Task `task` loaded by the addon from `source` ({dir, file?} or a Hub repository: {repo,
 * revision, file?, endpoint, token, cacheDir, offline}), as a handle with the engine
 * TaskPipeline's methods. `progress` gets the Hub download events.
 */
export async function loadNative(addon, task, source, device, dtype, progress) {
  const p = await coded(() => addon.loadPipeline(task, source, device, dtype, progressSink(progress)));
  return {
    kind: p.device,
    info: () => p.info(),
    run: async (value, options, onEvent, media) => {
      // A throw must not reach the addon (inside a thread-safe call it would end the process):
      // the run goes on, then rejects with the first one, as the WASM build's does.
      let thrown = null;
      const sink = onEvent
        ? (event) => {
            try {
              onEvent(event);
            } catch (e) {
              thrown ??= e;
            }
          }
        : undefined;
      const out = await coded(() => p.run(value, options ?? null, sink, nativeMedia(media)));
      if (thrown) throw thrown;
      return out;
    },
    call: (method, args) => coded(() => p.call(method, args ?? null)),
    free: () => p.dispose(),
    model: () => {
      try {
        return modelHandle(p.model());
      } catch (e) {
        throw nativeError(e);
      }
    },
  };
}

/** Model class `className` (`AutoModel`, ...) loaded by the addon from `source` (see loadNative), as model.js's handle. */
export async function loadNativeModel(addon, className, source, device, dtype, progress) {
  return modelHandle(await coded(() => addon.loadModel(className, source, device, dtype, progressSink(progress))));
}

/** The addon's NativeModel with the wasm build's ModelRunner methods, tensors as `{type, dims, data}`. */
function modelHandle(m) {
  return {
    className: m.className,
    device: m.device,
    info: () => m.info(),
    inputNames: () => m.inputNames(),
    forward: async (inputs) => {
      const out = await coded(() => m.forward(nativeTensors(inputs)));
      return Object.fromEntries(
        out.map(({ name, dims, ints, floats }) => [name, ints ? { type: 'int64', dims, data: ints } : { type: 'float32', dims, data: floats }]),
      );
    },
    generate: (inputs, options) => coded(() => m.generate(nativeTensors(inputs), options ?? null)),
    free: () => m.dispose(),
  };
}

const INTEGER_TYPES = new Set(['int64', 'uint64', 'int32', 'uint32', 'int16', 'uint16', 'int8', 'uint8', 'bool']);

/**
 * `{name: Tensor}` (`{type, dims, data}`) as the addon takes them: integers as a BigInt64Array,
 * floats as a Float32Array, as the wasm build reads them.
 */
function nativeTensors(inputs) {
  const out = [];
  for (const [name, t] of Object.entries(inputs)) {
    // transformers.js code passes whole tokenizer outputs; absent optional ones are undefined.
    if (t === undefined || t === null) continue;
    const bad = (what) => new WebformersError(`input \`${name}\`: ${what}`, 'input');
    if (typeof t !== 'object' || typeof t.type !== 'string') throw bad('expected a Tensor ({type, dims, data})');
    if (!Array.isArray(t.dims) || !t.dims.every((d) => Number.isInteger(d) && d >= 0 && d <= 0xffffffff)) throw bad('its `dims` must be an array of sizes');
    if (!ArrayBuffer.isView(t.data)) throw bad('its `data` must be a typed array');
    const dims = t.dims;
    if (t.type === 'float32' || t.type === 'float64') {
      out.push({ name, dims, floats: t.data instanceof Float32Array ? t.data : Float32Array.from(t.data) });
    } else if (INTEGER_TYPES.has(t.type)) {
      if (t.type === 'uint64' && t.data.some((v) => v > 0x7fffffffffffffffn)) throw bad('a value is too large for int64');
      out.push({ name, dims, ints: t.data instanceof BigInt64Array ? t.data : BigInt64Array.from(t.data, (v) => BigInt(v)) });
    } else {
      throw bad(`a ${t.type} tensor is not taken; use int64 for ids and masks, float32 for values`);
    }
  }
  return out;
}

/**
 * The call's media for the addon (`MediaItem`s): file bytes, decoded pixels ({width, height,
 * channels, data}: a RawImage, ImageData) or mono samples ({audio | data, sampling_rate}: a
 * RawAudio), as image.js and audio.js make them.
 */
function nativeMedia(media) {
  if (!media) return undefined;
  return media.map((item, i) => {
    if (item instanceof Uint8Array) return { bytes: item };
    if (item && typeof item === 'object' && 'sampling_rate' in item) {
      const samples = item.audio ?? item.data;
      if (!(samples instanceof Float32Array || samples instanceof Float64Array)) {
        throw new WebformersError(`media item ${i}: audio samples must be a Float32Array or Float64Array`, 'input');
      }
      return { samples: samples instanceof Float32Array ? samples : Float32Array.from(samples), samplingRate: item.sampling_rate };
    }
    if (item && typeof item === 'object' && (item.data instanceof Uint8Array || item.data instanceof Uint8ClampedArray)) {
      const pixels = item.data instanceof Uint8Array ? item.data : new Uint8Array(item.data.buffer, item.data.byteOffset, item.data.length);
      return { width: item.width, height: item.height, channels: item.channels, pixels };
    }
    throw new WebformersError(`media item ${i}: expected file bytes, {width, height, channels, data} pixels or {audio, sampling_rate} samples`, 'input');
  });
}
