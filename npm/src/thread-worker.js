// One thread of the threaded engine's pool (see engine.js): a Web Worker (or a Node worker
// thread) that instantiates the threaded module on the main instance's shared memory, counts
// itself in, then takes its share of every parallel CPU kernel for the rest of its life (its
// event loop stays blocked inside the engine). Started by the package itself; not an API.


const IS_NODE =
  typeof process !== 'undefined' && !!process.versions?.node && typeof WorkerGlobalScope === 'undefined';

async function start({ module, memory, poison, relaxed }, reply) {
  let wasm;
  try {
    // The glue of the build the main thread loaded (literal paths, for bundlers).
    wasm = relaxed ? await import('./wasm/webformers_wasm_threaded_relaxed.js') : await import('./wasm/webformers_wasm_threaded.js');
    await wasm.default({ module_or_path: module, memory });
  } catch (e) {
    reply({ webformersThread: 1, error: `could not instantiate the threaded engine: ${e?.message ?? e}` });
    return;
  }
  const seen = wasm.threadPoolRegister();
  reply({ webformersThread: 1, ready: true });
  try {
    wasm.threadPoolLoop(seen); // never returns, unless the instance traps (a panic)
  } catch (e) {
    // Tell the threads waiting for this one to stop waiting (they then report the failure).
    Atomics.store(new Int32Array(memory.buffer), poison >> 2, 1);
    reply({ webformersThread: 1, error: String(e?.message ?? e), died: true });
  }
}

if (IS_NODE) {
  const name = 'node:worker_threads';
  const { parentPort, workerData } = await import(/* webpackIgnore: true */ /* @vite-ignore */ name);
  start(workerData, (msg) => parentPort.postMessage(msg));
} else {
  self.addEventListener('message', function onInit(event) {
    if (event.data?.webformersThread !== 1) return;
    self.removeEventListener('message', onInit);
    start(event.data, (msg) => self.postMessage(msg));
  });
}
