// `pipeline(task, model, options)`: the transformers.js entry point. One entry per task in TASKS
// (its default model and how its callable is made); the engine's tasks do the work.

import { env, log } from './env.js';
import { engine, engineThreads, guarded, asError, WebformersError } from './engine.js';
import { loadModelFiles, isGguf } from './fetch.js';
import { Tensor } from './tensor.js';
import { TextStreamer } from './streamer.js';
import { hubLoad } from './hub.js';

const DEVICES = ['auto', 'webgpu', 'wasm'];
/** Errors of the WebGPU device itself (not of the model): 'auto' falls back to WASM on these. */
const GPU_CODES = new Set(['over_limit', 'gpu', 'no_adapter']);

const TASKS = {
  'feature-extraction': {
    defaultModel: 'sentence-transformers/all-MiniLM-L6-v2',
    load: (wasm, files, device, dtype) => wasm.FeatureExtractionTask.load(files, device, dtype),
    loadFromHub: (wasm, loaded, device, dtype) => wasm.FeatureExtractionTask.loadFromHub(loaded, device, dtype),
    // A small run at load time compiles the GPU pipelines and proves the device works.
    warmUp: (handle) => handle.run(['webformers'], 'mean', true),
    make: featureExtraction,
  },
  'text-generation': {
    defaultModel: 'HuggingFaceTB/SmolLM2-135M-Instruct',
    load: (wasm, files, device, dtype) => wasm.TextGenerationTask.load(files, device, dtype),
    loadFromHub: (wasm, loaded, device, dtype) => wasm.TextGenerationTask.loadFromHub(loaded, device, dtype),
    supportsGguf: (wasm) => wasm.TextGenerationTask.supportsGguf(),
    loadGguf: (wasm, files, file, device, dtype) => wasm.TextGenerationTask.loadGguf(files, file, device, dtype),
    make: textGeneration,
  },
};

/**
 * Whether `'auto'` should use WebGPU, and why not: it needs an adapter that is real hardware. A
 * software fallback adapter (`isFallbackAdapter`, such as SwiftShader) runs compute shaders on
 * the CPU, many times slower than WASM SIMD, so 'auto' takes WASM there; device 'webgpu' still
 * uses it. A model over the adapter's limits falls back later, at load (see `pipeline`).
 */
async function autoChoice() {
  const gpu = globalThis.navigator?.gpu;
  if (!gpu) return { use: false, why: 'this environment has no WebGPU (navigator.gpu is missing)' };
  let adapter = null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    return { use: false, why: `requesting a WebGPU adapter failed: ${e?.message ?? e}` };
  }
  if (!adapter) return { use: false, why: 'no WebGPU adapter is available' };
  if (adapter.info?.isFallbackAdapter || adapter.isFallbackAdapter) {
    const name = adapter.info?.description || adapter.info?.vendor || 'a software adapter';
    return { use: false, why: `the WebGPU adapter is a software fallback (${name}), slower than WASM SIMD` };
  }
  return { use: true };
}

/** Opens the device; `note` says why 'auto' took WASM, when it did. */
async function openDevice(wasm, device) {
  if (device !== 'auto') return { dev: await guarded(() => wasm.openDevice(device)), note: null };
  const { use, why } = await autoChoice();
  if (!use) {
    log.info(`device 'auto': using WASM (${why})`);
    return { dev: await guarded(() => wasm.openDevice('wasm')), note: why };
  }
  const dev = await guarded(() => wasm.openDevice('auto'));
  if (dev.note) log.info(`device 'auto': using WASM (${dev.note})`);
  return { dev, note: dev.note ?? null };
}

/**
 * Makes a pipeline: `await pipeline('feature-extraction', 'sentence-transformers/all-MiniLM-L6-v2')`.
 * See index.d.ts for the options and what the result is.
 */
export async function pipeline(task, model = null, options = {}) {
  const {
    device = 'auto',
    dtype = 'auto',
    revision = 'main',
    progress_callback = null,
    local_files_only = false,
  } = options ?? {};
  if (!DEVICES.includes(device)) {
    throw new WebformersError(`unknown device '${device}': use 'webgpu', 'wasm' or 'auto'`, 'input');
  }
  const wasm = await engine();
  let spec;
  try {
    spec = wasm.taskFiles(String(task));
  } catch (e) {
    throw asError(e);
  }
  const entry = TASKS[spec.task];
  model ??= entry.defaultModel;
  const gguf = typeof model === 'string' && isGguf(model);
  if (gguf && !entry.loadGguf) {
    throw new WebformersError(`${spec.task} cannot load a .gguf file (${model}); give a model folder`, 'input');
  }
  if (gguf && !entry.supportsGguf(wasm)) {
    throw new WebformersError(
      `${model}: this build of webformers cannot load GGUF files yet; use a model folder with model.safetensors`,
      'unsupported',
    );
  }
  // A throwing callback is the caller's bug; it must not fail (or half-finish) the load.
  const progress = (event) => {
    try {
      progress_callback?.(event);
    } catch (e) {
      log.warn('progress_callback threw:', e);
    }
  };

  // The device first: it is quick, and a missing adapter should fail before a long download.
  let { dev, note } = await openDevice(wasm, device);
  let fetched;
  try {
    fetched = await loadModelFiles(model, {
      revision,
      required: spec.required,
      optional: spec.optional,
      progress,
      localOnly: local_files_only,
    });
  } catch (e) {
    dev.free();
    throw e;
  }
  let handle = null;
  // A Hub model streams its weights onto the device inside the engine; other files come whole.
  const fileSet = fetched.hub ? null : new wasm.ModelFileSet(fetched.name);
  try {
    for (const [name, bytes] of fetched.files ?? []) fileSet.insert(name, bytes);
    fetched.files?.clear();
    const load = fetched.hub
      ? (d) => loadFromHub(wasm, entry, fetched.hub, spec, d, dtype, progress)
      : (d) => guarded(() => (gguf ? entry.loadGguf(wasm, fileSet, fetched.file, d, dtype) : entry.load(wasm, fileSet, d, dtype)));
    try {
      handle = await load(dev);
      if (dev.kind === 'webgpu' && entry.warmUp) await guarded(() => entry.warmUp(handle));
    } catch (e) {
      const error = asError(e);
      if (!(device === 'auto' && dev.kind === 'webgpu' && GPU_CODES.has(error.code))) throw error;
      // Documented: 'auto' falls back to WASM when the model does not fit the adapter.
      note = `the model does not fit this WebGPU adapter (${error.message})`;
      log.warn(`device 'auto': using WASM: ${note}`);
      handle?.free();
      handle = null;
      dev.free();
      dev = null;
      dev = await guarded(() => wasm.openDevice('wasm'));
      handle = await load(dev);
    }
  } catch (e) {
    handle?.free();
    dev?.free();
    throw asError(e);
  } finally {
    fileSet?.free();
  }

  const threads = dev.kind === 'wasm' ? engineThreads()?.threads ?? 1 : null;
  const info = { task: spec.task, model, device: dev.kind, adapter: dev.description, note, threads };
  dev.free(); // the task holds its own reference to the device
  const pipe = entry.make(handle, info);
  progress({ status: 'ready', task: spec.task, model, name: model, device: info.device });
  log.info(`${spec.task} ${model} ready on ${info.adapter}`);
  return pipe;
}

/**
 * A Hub model built on device `d`: its weights streamed there (or read back from IndexedDB), then
 * the task. Run again on another device (device 'auto' falling back to WASM), a load resumes from
 * what the first one cached.
 */
async function loadFromHub(wasm, entry, hub, spec, d, dtype, progress) {
  const loaded = await guarded(() => hubLoad(wasm, hub, spec, d, progress));
  try {
    return await guarded(() => entry.loadFromHub(wasm, loaded, d, dtype));
  } finally {
    loaded.free();
  }
}

/** The callable's common part: calls run one at a time; dispose() frees the model. */
function callable(handle, info, run) {
  let queue = Promise.resolve();
  let disposed = false;
  const pipe = (...args) => {
    if (disposed) return Promise.reject(new WebformersError(`this ${info.task} pipeline was disposed`, 'input'));
    const result = queue.then(() => run(...args));
    queue = result.catch(() => {});
    return result;
  };
  Object.defineProperties(pipe, {
    task: { value: info.task, enumerable: true },
    model: { value: info.model, enumerable: true },
    /** 'webgpu' or 'wasm': where this pipeline runs. */
    device: { value: info.device, enumerable: true },
    /** The adapter or CPU in words. */
    adapter: { value: info.adapter, enumerable: true },
    /** Why device 'auto' ended up on WASM (null otherwise). */
    device_note: { value: info.note ?? null, enumerable: true },
    /** CPU threads of a 'wasm' pipeline (null on WebGPU). */
    threads: { value: info.threads, enumerable: true },
  });
  pipe.dispose = async () => {
    if (disposed) return;
    disposed = true;
    await queue;
    handle.free();
  };
  return pipe;
}

const POOLINGS = { none: 'none', mean: 'mean', cls: 'cls', first_token: 'cls' };

function featureExtraction(handle, info) {
  const pipe = callable(handle, info, async (texts, options = {}) => {
    const { pooling = 'none', normalize = false } = options ?? {};
    const list = typeof texts === 'string' ? [texts] : Array.isArray(texts) ? texts : null;
    if (!list || !list.every((t) => typeof t === 'string')) {
      throw new WebformersError('feature-extraction takes a string or an array of strings', 'input');
    }
    if (!(pooling in POOLINGS)) {
      throw new WebformersError(`unknown pooling '${pooling}': use 'none', 'mean' or 'cls'`, 'input');
    }
    const out = await guarded(() => handle.run(list, POOLINGS[pooling], !!normalize));
    return new Tensor('float32', out.data, Array.from(out.dims));
  });
  pipe.hidden_size = handle.hiddenSize;
  return pipe;
}

const isMessages = (x) => Array.isArray(x) && x.length > 0 && x.every((m) => m && typeof m === 'object' && 'role' in m);

function textGeneration(handle, info) {
  const generateOne = async (input, options) => {
    const { streamer = null, return_full_text = true, callback_function = null, ...rest } = options;
    const generation = {};
    for (const key of ['max_new_tokens', 'do_sample', 'temperature', 'top_k', 'top_p', 'repetition_penalty', 'seed', 'stop']) {
      if (rest[key] !== undefined && rest[key] !== null) generation[key] = rest[key];
    }
    if (typeof generation.stop === 'string') generation.stop = [generation.stop];
    const onText = (piece) => {
      if (streamer) streamer.on_finalized_text(piece, false);
      if (callback_function) callback_function(piece);
    };
    const prompt = isMessages(input) ? input.map(({ role, content }) => ({ role: String(role), content: String(content) })) : input;
    const out = await guarded(() => handle.generate(prompt, JSON.stringify(generation), onText));
    streamer?.end?.();
    const stats = {
      prompt_tokens: out.promptTokens,
      new_tokens: out.tokenIds.length,
      stop_reason: out.stopReason,
      prefill_seconds: out.prefillSeconds,
      decode_seconds: out.decodeSeconds,
    };
    const generated_text = isMessages(input)
      ? [...input, { role: 'assistant', content: out.text }]
      : return_full_text
        ? input + out.text
        : out.text;
    return { generated_text, stats };
  };
  const pipe = callable(handle, info, async (input, options = {}) => {
    options ??= {};
    const single = typeof input === 'string' || isMessages(input);
    if (single) return [await generateOne(input, options)];
    if (Array.isArray(input) && input.length > 0 && input.every((x) => typeof x === 'string' || isMessages(x))) {
      const all = [];
      for (const one of input) all.push([await generateOne(one, options)]);
      return all;
    }
    throw new WebformersError('text-generation takes a string, a messages array ({role, content}[]), or an array of those', 'input');
  });
  // transformers.js code passes `generator.tokenizer` to `new TextStreamer(...)`.
  pipe.tokenizer = { streamer: TextStreamer };
  /** The prompt as the model sees it (a chat rendered through the model's template). */
  pipe.apply_chat_template = (messages) => guarded(() => handle.promptText(messages));
  return pipe;
}
