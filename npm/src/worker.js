// The worker side of `workerPipeline`: load this module in a module Web Worker and it answers the
// main thread's requests, running pipelines off the main thread.
//
//   // my-worker.js
//   import 'webformers/worker';
//   // main thread
//   import { workerPipeline } from 'webformers';
//   const worker = new Worker(new URL('./my-worker.js', import.meta.url), { type: 'module' });
//   const extractor = await workerPipeline(worker, 'feature-extraction', 'sentence-transformers/all-MiniLM-L6-v2');
//
// (or `new Worker('<package>/dist/worker.js', { type: 'module' })` without a bundler). Messages that
// are not webformers' (they carry `webformers: 1`) are left alone, so a worker can do other work.

// Not index.js: its pipeline() (proxy.js) names this module as a worker to start, and a worker
// whose imports start itself is a cycle that Turbopack's build never finishes.
import { pipeline } from './pipeline.js';
import { env } from './env.js';
import { Tensor } from './tensor.js';
import { describe, exposeStats, invoke } from './call.js';

const pipelines = new Map();
let nextHandle = 1;

function plainError(e) {
  return { message: e?.message ?? String(e), code: e?.code ?? 'engine', name: e?.name ?? 'Error' };
}

/** What the main thread needs to make `pipe.model` (its facts), or why there is none. */
function describeModel(pipe) {
  try {
    const m = pipe.model;
    return { info: { ...m.info, config: m.config }, class_name: m.class_name, device: m.device, input_names: m.input_names };
  } catch (e) {
    return { error: plainError(e) };
  }
}

self.addEventListener('message', async (event) => {
  const msg = event.data;
  if (!msg || msg.webformers !== 1) return;
  const reply = (body, transfer = []) => self.postMessage({ webformers: 1, id: msg.id, ...body }, transfer);
  try {
    switch (msg.type) {
      case 'pipeline': {
        Object.assign(env, msg.env ?? {});
        const pipe = await pipeline(msg.task, msg.model, {
          ...msg.options,
          progress_callback: (data) => reply({ type: 'progress', data }),
        });
        const handle = nextHandle++;
        pipelines.set(handle, pipe);
        reply({ type: 'ready', handle, info: describe(pipe), model: describeModel(pipe) });
        break;
      }
      case 'model': {
        // pipe.model's engine calls (worker-client.js: modelHandle), answered as the engine answers.
        const pipe = pipelines.get(msg.handle);
        if (!pipe) throw Object.assign(new Error('this pipeline was disposed'), { code: 'input' });
        if (msg.method === 'free') {
          await pipe.model.dispose();
          reply({ type: 'result', value: null });
          break;
        }
        if (!['forward', 'generate', 'interrupt'].includes(msg.method)) throw new Error(`unknown model method '${msg.method}'`);
        const value = (await pipe.model._live()[msg.method](...msg.args)) ?? null;
        // Moved, not copied: forward's tensors by name, or generate's one {dims, data}.
        const buffers = value?.data ? [value.data.buffer] : Object.values(value ?? {}).map((t) => t.data.buffer);
        reply({ type: 'result', value }, buffers);
        break;
      }
      case 'call': {
        // The main thread sent the call as the engine takes it (worker-client.js: callArgs).
        const pipe = pipelines.get(msg.handle);
        if (!pipe) throw Object.assign(new Error('this pipeline was disposed'), { code: 'input' });
        const options = { ...(msg.options ?? {}) };
        // The engine's events go back as they are (call.js's eventSink hands them to the
        // main thread's streamer and callbacks).
        if (msg.stream) options.streamer = { forward_event: (e) => reply({ type: 'event', event: e }) };
        const result = await pipe(msg.input, options);
        if (result instanceof Tensor) {
          const { type, dims, data } = result;
          reply({ type: 'result', tensor: { type, dims, data } }, [data.buffer]);
        } else {
          reply({ type: 'result', value: exposeStats(result) });
        }
        break;
      }
      case 'method': {
        const pipe = pipelines.get(msg.handle);
        if (!pipe) throw Object.assign(new Error('this pipeline was disposed'), { code: 'input' });
        reply({ type: 'result', value: await invoke(pipe, msg.method, msg.args) });
        break;
      }
      case 'dispose': {
        const pipe = pipelines.get(msg.handle);
        pipelines.delete(msg.handle);
        await pipe?.dispose();
        reply({ type: 'result', value: null });
        break;
      }
      default:
        throw new Error(`unknown request '${msg.type}'`);
    }
  } catch (e) {
    reply({ type: 'error', error: plainError(e) });
  }
});
