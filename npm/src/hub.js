// Hub models: the engine's Hub client (the same Rust protocol as the native CLI) over fetch, with
// this package's IndexedDB cache (hub-store.js), Node's disk cache (hub-fs-store.js) or the user's
// own (custom-cache.js). The revision is pinned to one commit; weights
// stream by Range requests onto the device tensor by tensor; an interrupted load resumes; a second
// load makes no weight request. `env.remoteHost` is the endpoint, `env.accessToken` the token (sent
// to the endpoint's origin only: browsers drop it when the Hub redirects to its CDN).

import { env, IS_NODE } from './env.js';
import { CustomCacheStore, customCache } from './custom-cache.js';
import { fsHubStore } from './hub-fs-store.js';
import { NoStore, hubStore } from './hub-store.js';

/** Files the Hub client fetches as weights (by ranges, onto the device), not as files. */
const WEIGHT_FILES = new Set(['model.safetensors']);

/**
 * Loads `hub` ({repo, revision, file}: `file` is a .gguf in the repository, else null) onto the
 * engine device `device`: the task's files (`spec.required` and `spec.optional`) and its weights.
 * Resolves to the engine's `HubLoaded` (free it once the task is built). `progress(event)` gets
 * transformers.js-shaped events per file and `progress_total` over the load; `signal` (an
 * AbortSignal) aborts it.
 */
export async function hubLoad(wasm, hub, spec, device, progress, signal = null) {
  const files = hub.file ? [] : [...spec.required, ...spec.optional].filter((f) => !WEIGHT_FILES.has(f));
  const { endpoint, token, timeout, store, revision } = await settings(hub);
  // The pipeline says 'ready' itself, once the model is built.
  const onEvent = (event) => event.status !== 'ready' && progress(event);
  return wasm.hubLoad(endpoint, token, hub.repo, revision, files, hub.file ?? null, store, onEvent, timeout, device, signal ?? undefined);
}

/**
 * Small files of a Hub model, without its weights (AutoTokenizer's): resolves to the engine's
 * `ModelFileSet` (free it), through the same client and cache as `hubLoad`.
 */
export async function hubFiles(wasm, hub, required, optional, progress) {
  const { endpoint, token, timeout, store, revision } = await settings(hub);
  return wasm.hubFiles(endpoint, token, hub.repo, revision, required, optional, store, progress, timeout);
}

/** The Hub client's settings from env, and the revision to ask for (see `revisionFor`). */
async function settings(hub) {
  const endpoint = String(env.remoteHost).replace(/\/+$/, '');
  const kept = await store(endpoint);
  return {
    endpoint,
    token: env.accessToken ? String(env.accessToken) : null,
    timeout: Number(env.fetchTimeout) > 0 ? Math.min(Number(env.fetchTimeout), 2 ** 31 - 1) : 0,
    store: kept,
    revision: kept.revisionFor ? await kept.revisionFor(hub.repo, hub.revision) : hub.revision,
  };
}

/**
 * Where a load's files are kept: `env.customCache` when `env.useCustomCache`; else in Node,
 * huggingface_hub's cache folders (shared with the CLI and Python; `env.cacheDir`,
 * `env.useFSCache`); in browsers, IndexedDB (`env.useBrowserCache`).
 */
async function store(endpoint) {
  if (env.useCustomCache) return new CustomCacheStore(customCache(), endpoint);
  if (IS_NODE) return env.useFSCache === false ? new NoStore() : fsHubStore(env.cacheDir);
  return hubStore(env.useBrowserCache !== false);
}
