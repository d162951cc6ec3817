// The native engine in Node: webformers-core built as a Node-API addon (bindings/node), with the
// CPU kernels of the machine (AVX-512 / AVX2 / NEON, rayon threads) and wgpu's native GPU
// backends (Vulkan, Metal, DX12), instead of the WASM build. In Node, `device: 'cpu'` and
// `device: 'gpu'` take it where a binary for the platform exists: the optional package
// `webformers-<triple>`, or, in a checkout of the repository, what scripts/build-node-addon.sh
// laid out in npm/native/<triple>/. Elsewhere 'cpu' runs the WASM build, as before.
//
// A native pipeline has the same surface as the engine's `TaskPipeline` (`run`, `call`, `info`),
// so pipeline.js's callable serves both.

import { env, IS_NODE, log, nodeModule } from './env.js';
import { WebformersError } from './engine.js';

/** napi-rs's platform names, by Node's `${process.platform}-${process.arch}`. */
const TRIPLES = {
  'linux-x64': 'linux-x64-gnu',
  'linux-arm64': 'linux-arm64-gnu',
  'darwin-arm64': 'darwin-arm64',
  'darwin-x64': 'darwin-x64',
  'win32-x64': 'win32-x64-msvc',
};

let loading = null;

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

/**
 * Task `task` loaded by the addon from `source` ({dir} or a Hub repository: {repo, revision,
 * endpoint, token, cacheDir, offline}), as a handle with the engine TaskPipeline's methods.
 */
export async function loadNative(addon, task, source, device, dtype) {
  const p = await coded(() => addon.loadPipeline(task, source, device, dtype));
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
      throw new WebformersError("pipe.model is not available on the native engine yet; load the pipeline with device: 'wasm' for it", 'unsupported');
    },
  };
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
