// `pipeline()` as the package exports it: on this thread (pipeline.js), or, with
// `env.backends.onnx.wasm.proxy` in a page, in a module worker of its own. It lives apart from
// pipeline.js because worker.js runs pipeline.js: were the `new Worker(new URL('./worker.js',
// import.meta.url))` below in a module the worker itself imports, the worker's module graph would
// start the worker again, a cycle that Turbopack's production build never finishes (Next.js 16
// hung at "Creating an optimized production build").

import { env } from './env.js';
import { pipeline as pipelineHere } from './pipeline.js';
import { workerPipeline } from './worker-client.js';

/** A browser page (not a worker, not Node): where `env.backends.onnx.wasm.proxy` moves pipelines into a worker. */
const IN_PAGE = typeof window !== 'undefined' && typeof document !== 'undefined' && typeof Worker !== 'undefined';

/**
 * Makes a pipeline: `await pipeline('feature-extraction', 'sentence-transformers/all-MiniLM-L6-v2')`.
 * See index.d.ts for the options and what the result is.
 */
export async function pipeline(task, model = null, options = {}) {
  if (env.backends.onnx.wasm.proxy && IN_PAGE) return proxiedPipeline(task, model, options);
  return pipelineHere(task, model, options);
}

/**
 * pipeline() in a module worker of its own (`env.backends.onnx.wasm.proxy`): the page's thread
 * stays free while the model loads and runs; dispose() ends the worker.
 */
async function proxiedPipeline(task, model, options) {
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  let pipe;
  try {
    pipe = await workerPipeline(worker, task, model, options);
  } catch (e) {
    worker.terminate();
    throw e;
  }
  const dispose = pipe.dispose;
  pipe.dispose = async () => {
    await dispose();
    worker.terminate();
  };
  return pipe;
}
