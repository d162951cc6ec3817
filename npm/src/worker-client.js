// The main-thread side of running a pipeline in a Web Worker (see worker.js): the same callable
// as `pipeline()` returns, with the work done in the worker. Results come back by transfer
// (no copy of an embedding's Float32Array); progress events and streamed text are forwarded.

import { env, log } from './env.js';
import { WebformersError } from './engine.js';
import { Tensor } from './tensor.js';
import { callable, callArgs, eventSink, result } from './call.js';
import { linkInterrupt } from './stopping.js';
import { IMAGE_KINDS, imageInputForWorker } from './image.js';
import { AUDIO_KINDS, audioInputForWorker } from './audio.js';
import { PreTrainedModel } from './model.js';

const ENV_KEYS = [
  'remoteHost',
  'accessToken',
  'useBrowserCache',
  'useFSCache',
  'cacheDir',
  'remotePathTemplate',
  'localModelPath',
  'allowRemoteModels',
  'allowLocalModels',
  'wasmPaths',
  'useWasmCache',
  'numThreads',
  'logLevel',
  'fetchTimeout',
];

const channels = new WeakMap();

/** One listener per worker, routing replies to the request they answer. */
function channel(worker) {
  let ch = channels.get(worker);
  if (ch) return ch;
  const pending = new Map();
  let nextId = 1;
  let broken = null;
  const failAll = (error) => {
    broken = error;
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  };
  worker.addEventListener('message', (event) => {
    const msg = event.data;
    if (!msg || msg.webformers !== 1) return;
    const p = pending.get(msg.id);
    if (!p) return;
    if (msg.type === 'progress') p.onProgress?.(msg.data);
    else if (msg.type === 'event') p.onEvent?.(msg.event);
    else {
      pending.delete(msg.id);
      if (msg.type === 'error') p.reject(new WebformersError(msg.error.message, msg.error.code));
      else p.resolve(msg);
    }
  });
  worker.addEventListener('error', (event) => {
    event.preventDefault?.();
    failAll(new WebformersError(`the webformers worker failed: ${event.message || 'its script could not be loaded or threw'}`, 'worker'));
  });
  worker.addEventListener('messageerror', () => failAll(new WebformersError('a message from the webformers worker could not be read', 'worker')));
  ch = {
    request(body, { onProgress, onEvent, transfer = [] } = {}) {
      if (broken) return Promise.reject(broken);
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject, onProgress, onEvent });
        try {
          worker.postMessage({ webformers: 1, id, ...body }, transfer);
        } catch (e) {
          // Something in the call that cannot be cloned (a function, a DOM node).
          pending.delete(id);
          reject(new WebformersError(`the call could not be sent to the worker: ${e.message}`, 'input'));
        }
      });
    },
  };
  channels.set(worker, ch);
  return ch;
}

/** The engine's model handle (bindings/wasm/src/model.rs: ModelRunner) for a worker pipeline's model: its calls go to the worker. */
function modelHandle(ch, handle, model) {
  const call = async (method, ...args) => (await ch.request({ type: 'model', handle, method, args })).value;
  return {
    info: () => model.info,
    inputNames: () => model.input_names,
    device: model.device,
    className: model.class_name,
    forward: (inputs) => call('forward', plainTensors(inputs)),
    generate: (inputs, options) => call('generate', plainTensors(inputs), options),
    interrupt: () => call('interrupt'),
    free: () => call('free'),
  };
}

/** Tensors by name as `{type, dims, data}`, what a worker message can carry (a Tensor's methods cannot be posted). */
const plainTensors = (named) => Object.fromEntries(Object.entries(named).map(([k, t]) => [k, t && { type: t.type, dims: t.dims, data: t.data }]));

/**
 * `pipeline()` in a Web Worker: resolves to a callable like the one `pipeline()` gives, whose
 * work runs in `worker` (a module worker running webformers' worker.js, or a script importing it).
 * Any task: the call is put in the engine's shape here (call.js), sent, and its result rebuilt.
 */
export async function workerPipeline(worker, task, model = null, options = {}) {
  const ch = channel(worker);
  const { progress_callback = null, ...rest } = options ?? {};
  if (rest.signal) {
    // An AbortSignal cannot be posted to a worker; aborting there needs a message of its own.
    throw new WebformersError("workerPipeline() does not take a load's signal yet: abort by terminating the worker", 'unsupported');
  }
  if (env.useCustomCache) {
    // Its functions cannot be posted; the worker's own env says where it keeps models.
    log.warn("env.customCache stays on this thread: the worker keeps models as its own env says (set env.useCustomCache and env.customCache in the worker's script)");
  }
  const snapshot = Object.fromEntries(ENV_KEYS.map((k) => [k, env[k]]));
  const ready = await ch.request({ type: 'pipeline', task, model, options: rest, env: snapshot }, { onProgress: progress_callback });
  const { handle, info: meta, model: modelFacts } = ready;
  return callable(meta, {
    model: () => {
      if (modelFacts.error) throw new WebformersError(modelFacts.error.message, modelFacts.error.code);
      return new PreTrainedModel(modelHandle(ch, handle, modelFacts), { model: meta.model, class_name: modelFacts.class_name, device_note: meta.device_note, pipeline: meta.task });
    },
    async run(...args) {
      const { input: raw, options, streamer, callback, tokens, progress, warning, interrupt } = callArgs(meta.input, args);
      // Images: what cannot be posted (elements, canvases) becomes pixels here, moved, not copied.
      const { input, transfer } = IMAGE_KINDS.has(meta.input)
        ? await imageInputForWorker(raw, meta.task)
        : AUDIO_KINDS.has(meta.input)
          ? await audioInputForWorker(raw, meta.task)
          : { input: raw, transfer: [] };
      // The engine's events cross the worker boundary as they are and reach the callbacks here.
      const onEvent = eventSink(streamer, callback, progress, warning, tokens);
      // The signal and criteria stay here; an abort reaches the worker as an `interrupt` request,
      // which it handles between two tokens (the engine yields to the event loop).
      const unlink = await linkInterrupt(interrupt, (method) => ch.request({ type: 'method', handle, method, args: null }));
      let reply;
      try {
        reply = await ch.request({ type: 'call', handle, input, options, stream: !!onEvent }, { onEvent, transfer });
      } finally {
        unlink();
      }
      streamer?.end?.();
      if (reply.tensor) return new Tensor(reply.tensor.type, reply.tensor.data, reply.tensor.dims);
      return result(reply.value);
    },
    invoke: async (method, args) => (await ch.request({ type: 'method', handle, method, args })).value,
    free: () => ch.request({ type: 'dispose', handle }),
  });
}
