// What every bundler app's page does with its bundled copy of webformers: loads all-MiniLM-L6-v2
// from the page's own server (/models/, never the Hub), embeds the texts of the URL's `texts`
// parameter (a JSON array) on 'wasm' in the page and again in a worker pipeline, and writes what
// happened into `document.body.dataset.result` for npm/test/bundlers.test.mjs to read.
// It takes the package's exports and the app's worker as arguments, so that this file imports
// nothing: each app resolves 'webformers' and bundles its worker itself.

const MODEL = 'all-MiniLM-L6-v2';

export async function runChecks({ pipeline, env, workerPipeline }, startWorker) {
  const texts = JSON.parse(new URLSearchParams(location.search).get('texts') ?? '["Hello world"]');
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = '/models/';
  // Two threads ask for the threaded build, which runs only where the page is cross-origin isolated.
  env.numThreads = 2;
  const result = { isolated: globalThis.crossOriginIsolated === true };
  const embed = async (extractor) => {
    const out = await extractor(texts, { pooling: 'mean', normalize: true });
    return { device: extractor.device, threads: extractor.threads, dims: out.dims, data: Array.from(out.data) };
  };
  try {
    const extractor = await pipeline('feature-extraction', MODEL, { device: 'wasm' });
    result.page = await embed(extractor);
    await extractor.dispose();
    const worker = startWorker();
    const remote = await workerPipeline(worker, 'feature-extraction', MODEL, { device: 'wasm' });
    result.worker = await embed(remote);
    await remote.dispose();
    worker.terminate();
  } catch (e) {
    result.error = String(e?.stack ?? e);
  }
  document.body.dataset.result = JSON.stringify(result);
}
