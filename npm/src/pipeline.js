// `pipeline(task, model, options)`: the transformers.js entry point, for every task of the engine
// through one engine class (TaskPipeline). What is here is what is genuinely JS: the device
// choice, fetching the model's files (or loading it from the Hub), and the callable (call.js: the
// positional call shapes, streamed text, tensors). Task names, aliases, default models, the files
// to fetch and what the call takes all come from the engine (`taskFiles`).

import { env, IS_NODE, log } from './env.js';
import { engine, engineThreads, guarded, guardedSync, asError, WebformersError } from './engine.js';
import { loadModelFiles, isGguf, modelFileSet } from './fetch.js';
import { loadNative, nativeDevice, nativeEngine, nativeModelSource } from './native.js';
import { hubLoad } from './hub.js';
import { callable, callArgs, result, eventSink } from './call.js';
import { linkInterrupt } from './stopping.js';
import { AutoTokenizer, pipelineTokenizer } from './tokenizer.js';
import { IMAGE_KINDS, imageInput } from './image.js';
import { AUDIO_KINDS, audioInput } from './audio.js';
// model.js imports this module too; PreTrainedModel is only used once a pipeline exists.
import { PreTrainedModel } from './model.js';

const DEVICES = ['auto', 'webgpu', 'wasm'];
/** transformers.js's other device names: 'cpu' runs on WASM here (in a browser it is WASM there too), 'gpu' on WebGPU. */
const DEVICE_ALIASES = { cpu: 'wasm', gpu: 'webgpu' };
/** Errors of the WebGPU device itself (not of the model): 'auto' falls back to WASM on these. */
export const GPU_CODES = new Set(['over_limit', 'out_of_memory', 'device_lost', 'gpu', 'no_adapter']);

/**
 * A small run at load time on WebGPU compiles the GPU pipelines and proves the device works (a
 * device failure then falls back to WASM under 'auto'), by input kind. A probe the task refuses
 * (fill-mask: no mask token in it) proves nothing and is let go; text generation has none (it
 * would decode).
 */
const PROBES = {
  text: ['webformers'],
  text_or_pair: ['webformers'],
  text_with_labels: ['webformers', { candidate_labels: ['webformers'] }],
  question_context: [{ question: 'webformers?', context: 'webformers' }],
  image: [{ $media: 0 }],
  image_with_labels: [{ $media: 0 }, { candidate_labels: ['webformers'] }],
};
/** The image the image probes see: 32x32 mid gray. */
const probeMedia = () => [{ width: 32, height: 32, channels: 3, data: new Uint8Array(32 * 32 * 3).fill(128) }];

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

/** The device option as the engine names it ('gpu' is 'webgpu', 'cpu' is 'wasm'); an unknown one is an Error. */
export function deviceName(asked) {
  const device = DEVICE_ALIASES[asked] ?? asked;
  if (!DEVICES.includes(device)) {
    throw new WebformersError(`unknown device '${asked}': use 'webgpu' (or 'gpu'), 'wasm' (or 'cpu') or 'auto'`, 'input');
  }
  return device;
}

/** Opens the device; `note` says why 'auto' took WASM, when it did. */
export async function openDevice(wasm, device) {
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
 * Loads a model with `load(dev)` on the device `openDevice` opened (`opened`: {dev, note}), and
 * on WebGPU runs `probe(handle)`. Under 'auto', a failure of the WebGPU device itself (GPU_CODES:
 * the model does not fit the adapter, the device is lost) reopens WASM and loads there, as
 * documented. Resolves to {handle, dev, note}: the caller owns both and frees `dev` once the
 * handle holds its own reference. Takes `opened.dev` over: when the load fails, what it opened is
 * freed here, once, and the error thrown (after `checkAborted`, which an abort overrides it with).
 */
export async function loadOnDevice(wasm, device, opened, load, { probe = null, checkAborted = () => {} } = {}) {
  let { dev, note } = opened;
  let handle = null;
  try {
    try {
      handle = await load(dev);
      if (probe && dev.kind === 'webgpu') await probe(handle);
    } catch (e) {
      const error = asError(e);
      checkAborted();
      if (!(device === 'auto' && dev.kind === 'webgpu' && GPU_CODES.has(error.code))) throw error;
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
    throw e;
  }
  return { handle, dev, note };
}

/** A progress callback that cannot fail the load: a throwing callback is the caller's bug, and must not fail (or half-finish) a load. */
export function safeProgress(progress_callback) {
  return (event) => {
    try {
      progress_callback?.(event);
    } catch (e) {
      log.warn('progress_callback threw:', e);
    }
  };
}

/** The load options that pipeline() and the model classes share, with their defaults. */
export function loadOptions(options) {
  const { device = 'auto', dtype = 'auto', revision = 'main', progress_callback = null, local_files_only = false, signal = null } = options ?? {};
  return { device, dtype, revision, progress_callback, local_files_only, signal };
}

/**
 * Makes a pipeline on this thread: `await pipeline('feature-extraction', 'sentence-transformers/all-MiniLM-L6-v2')`.
 * See index.d.ts for the options and what the result is. The package exports proxy.js's
 * `pipeline`, which can move it into a worker first; worker.js runs this one.
 */
export async function pipeline(task, model = null, options = {}) {
  const { device: asked, dtype: dtypeOption, revision, progress_callback, local_files_only, signal } = loadOptions(options);
  const dtype = dtypeSpec(dtypeOption);
  if (signal !== null && (typeof signal !== 'object' || typeof signal.aborted !== 'boolean')) {
    throw new WebformersError('signal must be an AbortSignal', 'input');
  }
  // An AbortSignal stops a load: Hub downloads at once (what is complete stays cached, a file in
  // progress stays resumable and invisible), other steps at the next step.
  const checkAborted = () => {
    if (signal?.aborted) throw abortedError(signal);
  };
  checkAborted();
  const device = deviceName(asked);
  // In Node, 'cpu', 'auto' and 'gpu' are the native engine's where its addon is installed.
  const native = nativeDevice(asked);
  if (native) {
    const addon = await nativeEngine();
    if (addon) {
      const pipe = await nativePipeline(addon, task, model, { device: native, dtype, revision, local_files_only, progress: safeProgress(progress_callback), checkAborted });
      if (pipe) return pipe;
    }
  }
  const wasm = await engine();
  const spec = taskSpec(wasm, task);
  model ??= spec.defaultModel;
  const gguf = typeof model === 'string' && isGguf(model);
  if (gguf && !spec.gguf) {
    throw new WebformersError(`${spec.task} cannot load a .gguf file (${model}); give a model folder`, 'input');
  }
  if (gguf && !wasm.TaskPipeline.supportsGguf()) {
    throw new WebformersError(
      `${model}: this build of webformers cannot load GGUF files yet; use a model folder with model.safetensors`,
      'unsupported',
    );
  }
  const progress = safeProgress(progress_callback);

  // The device first: it is quick, and a missing adapter should fail before a long download.
  let { dev, note } = await openDevice(wasm, device);
  let fetched;
  try {
    checkAborted();
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
  let tokenizer = null;
  // A Hub model streams its weights onto the device inside the engine; a folder's are read onto
  // it from JS memory (modelFileSet).
  const hasTokenizer = fetched.files?.has('tokenizer.json');
  let fileSet = null;
  try {
    if (!fetched.hub) fileSet = modelFileSet(wasm, fetched);
    if (hasTokenizer) tokenizer = await pipelineTokenizer(wasm, { fileSet });
    checkAborted();
    const load = fetched.hub
      ? (d) => loadFromHub(wasm, fetched.hub, spec, d, dtype, progress, signal)
      : (d) =>
          guarded(() => (gguf ? wasm.TaskPipeline.loadGguf(fileSet, fetched.file, d, dtype) : wasm.TaskPipeline.load(spec.task, fileSet, d, dtype)));
    const opened = { dev, note };
    dev = null; // loadOnDevice owns the device now, and frees it when the load fails
    ({ handle, dev, note } = await loadOnDevice(wasm, device, opened, load, { probe: (h) => probe(h, spec.input), checkAborted }));
    if (fetched.hub && !fetched.hub.file && [...spec.required, ...spec.optional].includes('tokenizer.json')) {
      tokenizer = fetched.hub.tokenizer ?? (await pipelineTokenizer(wasm, { hub: { ...fetched.hub, revision: fetched.hub.commit || fetched.hub.revision } }));
      fetched.hub.tokenizer = null;
    }
    checkAborted();
  } catch (e) {
    handle?.free();
    dev?.free();
    tokenizer?.dispose();
    fetched.hub?.tokenizer?.dispose();
    // Whatever the abort broke on its way out, the cause is the abort.
    throw signal?.aborted ? abortedError(signal) : asError(e);
  } finally {
    fileSet?.free();
  }

  const threads = dev.kind === 'wasm' ? engineThreads()?.threads ?? 1 : null;
  const meta = { task: spec.task, model, device: dev.kind, adapter: dev.description, device_note: note, threads, input: spec.input };
  dev.free(); // the task holds its own reference to the device
  const pipe = makePipeline(handle, meta);
  if (tokenizer) withTokenizer(pipe, tokenizer);
  progress({ status: 'ready', task: spec.task, model, name: model, device: meta.device });
  log.info(`${spec.task} ${model} ready on ${meta.adapter}`);
  return pipe;
}

/** The engine's (WASM or native) facts about `task`: its name, default model, files and input kind. */
function taskSpec(engine, task) {
  try {
    return engine.taskFiles(String(task));
  } catch (e) {
    throw asError(e);
  }
}

/** The model's own tokenizer (AutoTokenizer's) as `pipe.tokenizer`, where transformers.js code reads it; disposed with the pipeline. */
function withTokenizer(pipe, tokenizer) {
  pipe.tokenizer = tokenizer;
  const dispose = pipe.dispose;
  pipe.dispose = async () => {
    await dispose();
    tokenizer.dispose();
  };
}

/**
 * A pipeline on the native engine (Node's addon, native.js): the model read from its folder, or
 * fetched from the Hub into huggingface_hub's cache, by the engine itself (the weights
 * memory-mapped, not copied through JS). null where the model is somewhere only the JS loaders
 * reach (a URL, a custom cache): the caller takes the WASM build then.
 */
async function nativePipeline(addon, task, model, { device, dtype, revision, local_files_only, progress, checkAborted }) {
  const spec = taskSpec(addon, task);
  model ??= spec.defaultModel;
  const source = await nativeModelSource(addon, model, { revision, localOnly: local_files_only });
  if (!source) return null;
  checkAborted();
  const handle = await loadNative(addon, spec.task, source, device, dtype, progress);
  // The model's tokenizer for `pipe.tokenizer` (TextStreamer takes it): the WASM engine's, read
  // from the same folder or cache once the native load has filled it. (Read beside the load, a
  // Hub model's tokenizer.json was downloaded twice into the same cache entry at once, and one
  // download's rename broke the other's.) A model without one has none.
  const hasTokenizer = !source.file && [...spec.required, ...spec.optional].includes('tokenizer.json');
  const tokenizing = hasTokenizer
    ? AutoTokenizer.from_pretrained(model, { revision, local_files_only }).catch((e) => {
        log.debug(`no tokenizer for the native pipeline: ${e?.message ?? e}`);
        return null;
      })
    : Promise.resolve(null);
  const adapter = handle.kind === 'cpu' ? `native ${addon.cpuDescription()}` : 'native GPU (wgpu)';
  const meta = { task: spec.task, model, device: handle.kind, adapter, device_note: null, threads: null, input: spec.input };
  const pipe = makePipeline(handle, meta);
  const tokenizer = await tokenizing;
  if (tokenizer) withTokenizer(pipe, tokenizer);
  progress({ status: 'ready', task: spec.task, model, name: model, device: meta.device });
  log.info(`${spec.task} ${model} ready on ${adapter}`);
  return pipe;
}

/** Runs the input kind's probe (see PROBES); only a failure of the device fails the load. */
async function probe(handle, kind) {
  let args = PROBES[kind];
  if (!args) return;
  // A text encoder-decoder (its info says how much the encoder reads) would decode a whole
  // translation: one greedy token runs every kernel it uses.
  if (kind === 'text' && infoOf(handle)?.max_source_positions !== undefined) args = ['webformers', { max_new_tokens: 1, num_beams: 1 }];
  try {
    await guarded(() => handle.run(args[0], args[1] ?? null, null, IMAGE_KINDS.has(kind) ? probeMedia() : null));
  } catch (e) {
    const error = asError(e);
    if (GPU_CODES.has(error.code) || error.code === 'panic') throw error;
    log.debug(`the WebGPU probe run was refused (${error.message})`);
  }
}

/**
 * A Hub model built on device `d`: its weights streamed there (or read back from IndexedDB), then
 * the task. Run again on another device (device 'auto' falling back to WASM), a load resumes from
 * what the first one cached.
 */
async function loadFromHub(wasm, hub, spec, d, dtype, progress, signal) {
  const loaded = await guarded(() => hubLoad(wasm, hub, spec, d, progress, signal));
  // The commit the load pinned: the pipeline's tokenizer reads the same files, from the cache.
  hub.commit = loaded.commit;
  try {
    const handle = await guarded(() => wasm.TaskPipeline.loadFromHub(spec.task, loaded, d, dtype));
    // The pipeline's `tokenizer` from the same files (a load retried on another device replaces it).
    if (!hub.file && [...spec.required, ...spec.optional].includes('tokenizer.json')) {
      hub.tokenizer?.dispose();
      hub.tokenizer = await pipelineTokenizer(wasm, { loaded });
    }
    return handle;
  } finally {
    loaded.free();
  }
}

/** The engine's facts about a loaded model, or null when they cannot be read. */
function infoOf(handle) {
  try {
    return handle.info();
  } catch {
    return null;
  }
}

/** The callable over the engine's `TaskPipeline`: any task, one path. */
function makePipeline(handle, meta) {
  let info = null;
  try {
    info = handle.info();
  } catch (e) {
    log.warn(`${meta.task}: the model's info could not be read: ${e?.message ?? e}`);
  }
  return callable(
    { ...meta, info },
    {
      async run(...args) {
        const { input, options, streamer, callback, tokens, progress, warning, interrupt } = callArgs(meta.input, args);
        // Images become pixels, audio samples (or, in Node, file bytes) that the JSON refers to as {$media: i}.
        const { value, media } = IMAGE_KINDS.has(meta.input)
          ? await imageInput(input, meta.task)
          : AUDIO_KINDS.has(meta.input)
            ? await audioInput(input, meta.task)
            : { value: input, media: null };
        const unlink = await linkInterrupt(interrupt, (method) => guarded(async () => handle.call(method, null)));
        try {
          const out = await guarded(() => handle.run(value, options, eventSink(streamer, callback, progress, warning, tokens), media));
          streamer?.end?.();
          return result(out);
        } finally {
          unlink();
        }
      },
      invoke: (method, args) => guarded(() => handle.call(method, args)),
      free: () => handle.free(),
      model: () => {
        const runner = guardedSync(() => handle.model());
        return new PreTrainedModel(runner, { model: meta.model, class_name: runner.className, device_note: meta.device_note, pipeline: meta.task });
      },
    },
  );
}

/**
 * transformers.js's `dtype`: a name ('q8'), or per module ({ encoder_model: 'fp32',
 * decoder_model_merged: 'q4' }), written for the engine as `encoder_model=fp32,...`.
 */
export function dtypeSpec(dtype) {
  if (dtype === null || dtype === undefined) return 'auto';
  if (typeof dtype === 'string') return dtype;
  if (typeof dtype === 'object') {
    return Object.entries(dtype)
      .map(([module, name]) => `${module}=${name}`)
      .join(',');
  }
  throw new WebformersError(`dtype must be a string or an object of module names, not ${typeof dtype}`, 'input');
}

/** The error of an aborted load, with the signal's reason when it has one. */
function abortedError(signal) {
  const reason = signal.reason instanceof Error ? signal.reason.message : signal.reason;
  return new WebformersError(`the load was aborted${reason ? ` (${reason})` : ''}`, 'aborted', { cause: signal.reason });
}
