// What every pipeline callable shares, in the page and through a worker (worker-client.js): the
// call's arguments as the engine takes them, and the callable's properties. Nothing here names
// a task: the engine says what a task's first argument is (`taskFiles(task).input`), and
// transformers.js's positional call shapes follow from that.

import { WebformersError } from './engine.js';
import { Tensor } from './tensor.js';
import { TextStreamer, WhisperTextStreamer } from './streamer.js';
import { interruptSources, InterruptableStoppingCriteria } from './stopping.js';
import { log } from './env.js';

const isPlainObject = (x) => x !== null && typeof x === 'object' && !Array.isArray(x) && !ArrayBuffer.isView(x);
const isLabels = (x) => typeof x === 'string' || (Array.isArray(x) && x.every((l) => typeof l === 'string'));

/**
 * transformers.js's positional call shapes, by input kind, as `[input, options]`:
 *   question_context: `qa(question, context, options)` → `{question, context}` (arrays of
 *     questions and contexts pair up);
 *   text_with_labels, image_with_labels: `classifier(inputs, candidate_labels, options)` →
 *     `options.candidate_labels`.
 * Every other kind (and the two-argument form of these) is `(input, options)` as it is.
 */
const SHAPES = {
  question_context(args) {
    const [question, context, options] = args;
    if (typeof question === 'string' && typeof context === 'string') return [{ question, context }, options];
    if (Array.isArray(question) && Array.isArray(context) && question.length === context.length && question.every((q) => typeof q === 'string')) {
      return [question.map((q, i) => ({ question: q, context: context[i] })), options];
    }
    return [question, context];
  },
  text_with_labels: withLabels,
  image_with_labels: withLabels,
};

/** `(inputs, candidate_labels, options)` → `(inputs, {...options, candidate_labels})`. */
function withLabels(args) {
  const [inputs, labels, options] = args;
  if (isLabels(labels)) return [inputs, { ...(options ?? {}), candidate_labels: labels }];
  return [inputs, labels];
}

/**
 * A call's arguments as the engine takes them: `{input, options, streamer, callback, progress, warning, interrupt}`.
 * The options lose what cannot cross into the engine: `streamer`, `callback_function`,
 * `progress_callback` and `warning_callback` (the engine's events go to them instead), `signal` and `stopping_criteria` (an AbortSignal and
 * InterruptableStoppingCriteria: `interrupt`, for stopping.js's linkInterrupt) and keys left
 * `undefined` (absent, not null: `top_k: null` means "every label").
 */
export function callArgs(kind, args) {
  const [input, rawOptions] = (SHAPES[kind] ?? ((a) => [a[0], a[1]]))(args);
  if (rawOptions !== undefined && rawOptions !== null && !isPlainObject(rawOptions)) {
    throw new WebformersError(`the call's options must be an object, not ${Array.isArray(rawOptions) ? 'an array' : typeof rawOptions}`, 'input');
  }
  const {
    streamer = null,
    callback_function = null,
    progress_callback = null,
    warning_callback = null,
    signal = null,
    stopping_criteria = null,
    token_callback_function = null,
    ...rest
  } = rawOptions ?? {};
  for (const [name, f] of [['warning_callback', warning_callback], ['token_callback_function', token_callback_function], ['callback_function', callback_function]]) {
    if (f !== null && typeof f !== 'function') throw new WebformersError(`${name} must be a function, not ${typeof f}`, 'input');
  }
  if (signal !== null && (typeof signal !== 'object' || typeof signal.addEventListener !== 'function')) {
    throw new WebformersError('signal must be an AbortSignal', 'input');
  }
  // Only InterruptableStoppingCriteria runs here (the engine stops between two tokens); a
  // criteria of any other kind would be silently ignored, so it is refused. Stop strings
  // (`stop_strings`), `eos_token_id` and `max_length` cover the usual custom criteria.
  const criteriaList = stopping_criteria == null ? [] : Array.isArray(stopping_criteria) ? stopping_criteria : [stopping_criteria];
  const other = criteriaList.filter((c) => !(c instanceof InterruptableStoppingCriteria));
  if (other.length) {
    const name = (c) => (typeof c === 'function' ? `function ${c.name || '(anonymous)'}` : c?.constructor?.name ?? typeof c);
    throw new WebformersError(
      `stopping_criteria: only InterruptableStoppingCriteria is supported, not ${other.map(name).join(', ')}; use stop_strings, eos_token_id or max_length for other stops`,
      'unsupported',
    );
  }
  const options = {};
  for (const [key, value] of Object.entries(rest)) if (value !== undefined) options[key] = value;
  return {
    input,
    options,
    streamer,
    callback: callback_function,
    tokens: token_callback_function,
    progress: progress_callback,
    warning: warning_callback,
    interrupt: interruptSources(signal, stopping_criteria),
  };
}

/**
 * The function that hands the engine's events (plain objects: `{type: 'text', text}`,
 * `{type: 'tokens', ids}`, `{type: 'chunk_start' | 'chunk_end', time}`,
 * `{type: 'progress', done, total, unit}`, `{type: 'warning', message}`) to the call's streamer
 * (transformers.js's TextStreamer / WhisperTextStreamer callbacks), callback_function,
 * progress_callback and warning_callback. The progress callback gets
 * `{status: 'progress', progress, done, total, unit}` (`progress` in percent, as the download
 * progress events have it). A warning goes to `warning_callback`, else to `console.warn` through
 * the package's log (env.logLevel), never lost: so there is always a sink. A streamer with
 * `forward_event` (the worker's) gets the events as they are.
 */
export function eventSink(streamer, callback, progress, warning, tokens = null) {
  return (e) => {
    // The call's own token_callback_function (transformers.js has it on its streamers) gets the
    // new ids first, worker or not.
    if (tokens && e.type === 'tokens') tokens(e.ids.map((id) => BigInt(id)));
    if (streamer?.forward_event) {
      streamer.forward_event(e);
      return;
    }
    switch (e.type) {
      case 'text':
        streamer?.on_finalized_text(e.text, false);
        callback?.(e.text);
        break;
      case 'tokens':
        streamer?.token_callback_function?.(e.ids.map((id) => BigInt(id)));
        break;
      case 'chunk_start':
        streamer?.on_chunk_start?.(e.time);
        break;
      case 'chunk_end':
        streamer?.on_chunk_end?.(e.time);
        break;
      case 'progress':
        progress?.({ status: 'progress', progress: e.total > 0 ? (100 * e.done) / e.total : 100, done: e.done, total: e.total, unit: e.unit });
        break;
      case 'warning':
        if (warning) warning({ type: 'warning', message: e.message });
        else log.warn(e.message);
        break;
    }
  };
}

/**
 * The engine's result as the call returns it: a tensor becomes a `Tensor`; text generation's
 * `stats` (token counts, times) stay readable as `out[0].stats` but are not enumerable, so the
 * result has transformers.js's shape for deepEqual, JSON.stringify and spreading.
 */
export function result(out) {
  if (out && out.data instanceof Float32Array && Array.isArray(out.dims)) return new Tensor('float32', out.data, out.dims);
  hideStats(out);
  return out;
}

/** `result`'s output with `stats` enumerable again, to cross a worker boundary (a structured clone drops non-enumerable properties). */
export function exposeStats(x) {
  if (Array.isArray(x)) return x.map(exposeStats);
  if (isPlainObject(x) && 'generated_text' in x && x.stats !== undefined) return { ...x, stats: x.stats };
  return x;
}

function hideStats(x) {
  if (Array.isArray(x)) {
    for (const item of x) hideStats(item);
  } else if (isPlainObject(x) && 'generated_text' in x && 'stats' in x) {
    Object.defineProperty(x, 'stats', { value: x.stats, enumerable: false, writable: true, configurable: true });
  }
}

/**
 * Makes the callable: calls run one at a time through `run(...args)`; `meta` gives its
 * properties (`task`, `model`, `device`, `adapter`, `device_note`, `threads`, `input` (the input kind),
 * and `info`: the engine's facts about the model, also each as a property, as `hidden_size`);
 * `invoke(method, args)` calls a task's own operation; `free()` runs once on `dispose()`;
 * `model()` makes the pipeline's model object (`pipe.model`, made on first read, disposed with
 * the pipeline) or throws why there is none.
 */
export function callable(meta, { run, invoke, free, model: makeModel }) {
  let queue = Promise.resolve();
  let disposed = false;
  const pipe = (...args) => {
    if (disposed) return Promise.reject(new WebformersError(`this ${meta.task} pipeline was disposed`, 'input'));
    const out = queue.then(() => run(...args));
    queue = out.catch(() => {});
    return out;
  };
  const info = Object.freeze({ ...(meta.info ?? {}) });
  let model = null;
  Object.defineProperties(pipe, {
    task: { value: meta.task, enumerable: true },
    /** The model id, URL or folder the pipeline was made from. */
    model_id: { value: meta.model, enumerable: true },
    /**
     * The loaded model, as transformers.js's `pipe.model`: a callable PreTrainedModel (the class
     * AutoModelFor... gives) over the pipeline's weights, no second copy. Made on first read; a
     * model disposed on its own is made again while the pipeline lives.
     */
    model: {
      get() {
        if (model?._handle || (model && disposed)) return model;
        if (disposed) throw new WebformersError(`this ${meta.task} pipeline was disposed`, 'input');
        if (!makeModel) throw new WebformersError(`${meta.task}: pipe.model is not available on this pipeline`, 'unsupported');
        model = makeModel();
        return model;
      },
    },
    /** 'webgpu' or 'wasm': where this pipeline runs. */
    device: { value: meta.device, enumerable: true },
    /** The adapter or CPU in words. */
    adapter: { value: meta.adapter, enumerable: true },
    /** Why device 'auto' ended up on WASM (null otherwise). */
    device_note: { value: meta.device_note ?? null, enumerable: true },
    /** CPU threads of a 'wasm' pipeline (null on WebGPU). */
    threads: { value: meta.threads ?? null, enumerable: true },
    /** Facts about the loaded model (hidden_size, labels, mask_token, ...). */
    info: { value: info, enumerable: true },
  });
  for (const [key, value] of Object.entries(info)) {
    if (!(key in pipe)) Object.defineProperty(pipe, key, { value, enumerable: true });
  }
  if (meta.input === 'text_or_chat') {
    // transformers.js code passes `generator.tokenizer` to `new TextStreamer(...)`.
    pipe.tokenizer = { streamer: TextStreamer };
    /** The prompt as the model sees it (a chat rendered through the model's template). */
    pipe.apply_chat_template = (messages) =>
      disposed ? Promise.reject(new WebformersError(`this ${meta.task} pipeline was disposed`, 'input')) : invoke('apply_chat_template', messages);
    /** Forgets the KV cache kept from the last call (multi-turn reuse: the `reuse_cache` option). */
    pipe.clear_cache = async () => {
      if (!disposed) await invoke('clear_cache', null);
    };
  }
  if (meta.input === 'text' && info.max_source_positions !== undefined) {
    // The text encoder-decoders (translation, summarization, text2text-generation):
    // transformers.js code passes `translator.tokenizer` to `new TextStreamer(...)`.
    pipe.tokenizer = { streamer: TextStreamer };
  }
  if (meta.input === 'audio') {
    // transformers.js code passes `transcriber.tokenizer` to `new WhisperTextStreamer(...)` and
    // reads the sampling rate from the processor.
    pipe.tokenizer = { streamer: WhisperTextStreamer };
    if (info.sampling_rate) pipe.processor = { feature_extractor: { config: { sampling_rate: info.sampling_rate } } };
  }
  metas.set(pipe, { meta: { ...meta, info }, invoke });
  pipe.dispose = async () => {
    if (disposed) return;
    disposed = true;
    await queue;
    // The model shares the weights: they go when both are freed.
    await model?.dispose();
    await free();
  };
  return pipe;
}

const metas = new WeakMap();

/** What a worker sends back about a pipeline it made (see worker.js): the `meta` it was made with. */
export function describe(pipe) {
  return metas.get(pipe).meta;
}

/** A task's own operation on a pipeline (for worker.js: the main thread asked for it). */
export function invoke(pipe, method, args) {
  return metas.get(pipe).invoke(method, args);
}
