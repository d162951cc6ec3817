// Where a model's files are, and getting the bytes of local and plain-HTTP ones with progress
// events. Hub ids are not fetched here: `loadModelFiles` hands them back (`{hub}`) for the engine's
// Hub client (hub.js: pinned, streamed by ranges onto the device, cached in IndexedDB).
//
// Where `model` points:
//   - an absolute or ./relative path, or a file: URL (Node): a local folder, or a .gguf file;
//   - a /path or ./relative URL (browsers): a folder on the page's server;
//   - an http(s) URL: a folder served over HTTP (or a .gguf file);
//   - an id (`org/name`, or `org/name/file.gguf`): `env.localModelPath + model` first when
//     `env.allowLocalModels`, then the Hub at `env.remoteHost` when `env.allowRemoteModels` (with a
//     `env.remotePathTemplate` other than the Hub's own, a plain HTTP folder there instead).
//
// Progress events have transformers.js's shape:
//   {status: 'initiate' | 'download' | 'progress' | 'done', name, file, loaded, total, progress}

import { env, IS_NODE, log, nodeModule } from './env.js';
import { WebformersError } from './engine.js';
import { readThroughCache } from './custom-cache.js';

const isUrl = (s) => /^(https?|blob|data):/i.test(s);
const isFileUrl = (s) => /^file:/i.test(s);
const isExtensionUrl = (s) => /^(chrome|moz|safari-web)-extension:/i.test(s);
const isAbsolutePath = (s) => s.startsWith('/') || /^[A-Za-z]:[\\/]/.test(s);

/** A .gguf model is one file; anything else is a folder. */
export const isGguf = (model) => /\.gguf(\?.*)?$/i.test(model);

function baseHref() {
  if (typeof location !== 'undefined' && location.href) return location.href;
  return undefined;
}

let nodeModules = null;
/** Node's fs, path and url, imported only in Node (variable specifiers: bundlers leave them alone). */
async function node() {
  nodeModules ??= Promise.all(['node:fs/promises', 'node:path', 'node:url'].map(nodeModule)).then(([fs, path, url]) => ({ fs, path, url }));
  return nodeModules;
}

// ---- sources: a folder on disk (Node) or over HTTP -------------------------------------------

/** A folder on disk. `open(file)` resolves to null when the file does not exist. */
async function fsSource(dir, name) {
  const { fs, path } = await node();
  return {
    name,
    where: dir,
    local: true,
    async probe() {
      let stat;
      try {
        stat = await fs.stat(dir);
      } catch {
        return `${dir} does not exist (expected a model folder)`;
      }
      if (!stat.isDirectory()) return `${dir} is not a folder (expected a model folder)`;
      return null;
    },
    /** Whether `file` is in the folder (a stat: nothing is read). */
    async has(file) {
      try {
        return (await fs.stat(path.join(dir, file))).isFile();
      } catch {
        return false;
      }
    },
    async read(file, onProgress) {
      const full = path.join(dir, file);
      let handle;
      try {
        handle = await fs.open(full, 'r');
      } catch (e) {
        if (e.code === 'ENOENT') return null;
        throw new WebformersError(`${full}: ${e.message}`, 'file', { cause: e });
      }
      try {
        const { size } = await handle.stat();
        const bytes = new Uint8Array(size);
        let loaded = 0;
        while (loaded < size) {
          const { bytesRead } = await handle.read(bytes, loaded, Math.min(size - loaded, 16 << 20), loaded);
          if (bytesRead === 0) throw new WebformersError(`${full}: the file shrank while being read`, 'file');
          loaded += bytesRead;
          onProgress(loaded, size);
        }
        return bytes;
      } finally {
        await handle.close();
      }
    },
    describe: (file) => path.join(dir, file),
  };
}

/** A folder served over HTTP (`base` ends with '/'). */
function httpSource(base, name) {
  return {
    name,
    where: base,
    async probe() {
      return null;
    },
    read: (file, onProgress) => {
      const url = new URL(file, base).href;
      return env.useCustomCache ? readThroughCache(url, onProgress, fetchBytes) : fetchBytes(url, onProgress);
    },
    describe: (file) => new URL(file, base).href,
  };
}

/**
 * GETs `url` into a Uint8Array, calling onProgress(loaded, total). Resolves to null on 404.
 * Rejects with a clear Error on a network failure, another HTTP error, or `env.fetchTimeout`
 * milliseconds without data.
 */
async function fetchBytes(url, onProgress) {
  const controller = new AbortController();
  const timeoutMs = Number(env.fetchTimeout) > 0 ? Number(env.fetchTimeout) : 0;
  let timer = null;
  let timedOut = false;
  const arm = () => {
    if (!timeoutMs) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
  };
  const stalled = () =>
    new WebformersError(`fetching ${url} timed out: nothing was received for ${timeoutMs} ms (env.fetchTimeout)`, 'network');
  arm();
  try {
    let response;
    try {
      response = await fetch(url, { signal: controller.signal });
    } catch (e) {
      if (timedOut) throw stalled();
      // A browser extension's own files have no 404: fetching one that is not packaged fails
      // outright (Chromium's net::ERR_FILE_NOT_FOUND), so it counts as missing.
      if (isExtensionUrl(url)) return null;
      const why = e?.cause?.code || e?.cause?.message || e?.message || String(e);
      throw new WebformersError(`could not fetch ${url} (${why}): is the host reachable?`, 'network', { cause: e });
    }
    if (response.status === 404) {
      response.body?.cancel().catch(() => {});
      return null;
    }
    if (!response.ok) {
      response.body?.cancel().catch(() => {});
      throw new WebformersError(`fetching ${url} failed: HTTP ${response.status} ${response.statusText}`.trim(), 'network');
    }
    const total = Number(response.headers.get('content-length')) || 0;
    let buffer = new Uint8Array(total || 1 << 16);
    let loaded = 0;
    onProgress(0, total);
    if (!response.body) {
      const all = new Uint8Array(await response.arrayBuffer());
      onProgress(all.length, total || all.length);
      return all;
    }
    const reader = response.body.getReader();
    for (;;) {
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (timedOut) throw stalled();
        throw new WebformersError(`fetching ${url} failed after ${loaded} bytes: ${e?.message ?? e}`, 'network', { cause: e });
      }
      if (chunk.done) break;
      arm();
      const bytes = chunk.value;
      if (loaded + bytes.length > buffer.length) {
        const grown = new Uint8Array(Math.max(buffer.length * 2, loaded + bytes.length));
        grown.set(buffer.subarray(0, loaded));
        buffer = grown;
      }
      buffer.set(bytes, loaded);
      loaded += bytes.length;
      onProgress(loaded, total);
    }
    if (total && loaded < total) {
      throw new WebformersError(`fetching ${url}: the body ended after ${loaded} of ${total} bytes`, 'network');
    }
    return loaded === buffer.length ? buffer : buffer.slice(0, loaded);
  } finally {
    clearTimeout(timer);
  }
}

// ---- resolving a model name to sources -------------------------------------------------------

const HUB_TEMPLATE = '{model}/resolve/{revision}/';
/** `name` or `org/name`, as the Hub spells repository ids. */
const isRepoId = (s) => /^[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9])?(?:\/[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9])?)?$/.test(s) && !/\.\.|--/.test(s);

function fillTemplate(model, revision) {
  return String(env.remotePathTemplate)
    .replaceAll('{model}', model)
    .replaceAll('{revision}', encodeURIComponent(revision));
}

const withSlash = (s) => (s.endsWith('/') ? s : `${s}/`);

/** The places to look for `model`, in order. Each is a function making the source. */
async function candidates(model, { revision, localOnly }) {
  const relative = model.startsWith('./') || model.startsWith('../');
  if (IS_NODE && (isAbsolutePath(model) || isFileUrl(model) || relative)) {
    const { url, path } = await node();
    const dir = isFileUrl(model) ? url.fileURLToPath(model) : path.resolve(model);
    return [() => fsSource(dir, model)];
  }
  if (isUrl(model)) return [() => httpSource(withSlash(model), model)];
  if (!IS_NODE && (model.startsWith('/') || relative)) {
    return [() => httpSource(withSlash(new URL(model, baseHref()).href), model)];
  }
  const list = [];
  if (env.allowLocalModels) {
    if (IS_NODE) {
      const { path } = await node();
      list.push(() => fsSource(path.resolve(String(env.localModelPath), model), model));
    } else {
      list.push(() => httpSource(withSlash(new URL(withSlash(String(env.localModelPath)) + model, baseHref()).href), model));
    }
  }
  if (env.allowRemoteModels && !localOnly) {
    if (String(env.remotePathTemplate) === HUB_TEMPLATE && isRepoId(model)) list.push(() => ({ hub: { repo: model, revision } }));
    else list.push(() => httpSource(withSlash(new URL(fillTemplate(model, revision), withSlash(String(env.remoteHost))).href), model));
  }
  if (list.length === 0) {
    throw new WebformersError(
      `cannot load ${model}: env.allowLocalModels and env.allowRemoteModels are both off` +
        (localOnly ? ' (or local_files_only is set)' : ''),
      'config',
    );
  }
  return list;
}

/**
 * Where the native engine (Node) can read `model` itself: `{dir}` (the first local folder that
 * holds a config.json, as loadModelFiles looks; a .gguf model adds its `file`, looked for
 * instead) or a Hub repository `{repo, revision, file?}` (fetched
 * natively into huggingface_hub's cache; `offline` with `localOnly`: from the cache alone). null
 * where only the JS loaders can (a URL, a custom path template or cache): the caller then takes
 * the WASM build.
 */
export async function nativeSource(model, { revision = 'main', localOnly = false }) {
  if (typeof model !== 'string' || model === '') {
    throw new WebformersError('the model must be a non-empty string (an id, a URL or a path)', 'input');
  }
  if (env.useCustomCache) return null;
  const { where, file } = isGguf(model) ? ggufPlace(model) : { where: model, file: null };
  const marker = file ?? 'config.json';
  const misses = [];
  // local_files_only still reads a Hub model from the cache natively (offline: no request).
  for (const make of await candidates(where, { revision, localOnly: false })) {
    const source = await make();
    if (source.hub) return { repo: source.hub.repo, revision: source.hub.revision, offline: localOnly, file: file ?? undefined };
    if (!source.local) return null;
    const problem = await source.probe();
    if (!problem && (await source.has(marker))) return { dir: source.where, file: file ?? undefined };
    misses.push(problem ?? (file ? `${source.where}/${file} was not found` : `${model} is not a model: ${source.where}/config.json was not found`));
  }
  throw new WebformersError(misses.length === 1 ? misses[0] : `could not find the model ${model}: ${misses.join('; ')}`, 'file');
}

/**
 * A .gguf model's one file (`file`) and the folder or repository it is looked for in (`where`),
 * as a folder model's config.json is looked for. A file in a Hub repository's folder
 * (`org/name/sub/file.gguf`) belongs to `org/name`.
 */
function ggufPlace(model) {
  const plain = model.replace(/\?.*$/, '');
  const parts = plain.split('/');
  let cut = plain.lastIndexOf('/');
  if (parts.length > 3 && isRepoId(parts.slice(0, 2).join('/')) && !isUrl(model) && !isAbsolutePath(model) && !model.startsWith('.')) {
    cut = parts[0].length + parts[1].length + 1;
  }
  const file = decodeURIComponent(plain.slice(cut + 1));
  let where = cut > 0 ? model.slice(0, cut) : '.';
  if (where === '.' || where === '..') where += '/';
  return { where, file };
}

// ---- loading --------------------------------------------------------------------------------

/**
 * Fetches a model's files. `required` and `optional` are file names inside the model folder
 * (the first required one, config.json, decides whether a candidate place holds the model).
 * For a .gguf model the one file is fetched instead. Resolves to
 * `{name, where, files: Map<string, Uint8Array>}`, or, where the model is a Hub repository, to
 * `{name, hub: {repo, revision, file}}` (`file`: the .gguf file in it, else null) for hub.js.
 */
export async function loadModelFiles(model, { revision = 'main', required, optional = [], progress = () => {}, localOnly = false }) {
  if (typeof model !== 'string' || model === '') {
    throw new WebformersError('the model must be a non-empty string (an id, a URL or a path)', 'input');
  }
  const emit = (event) => {
    try {
      progress(event);
    } catch (e) {
      log.warn('progress_callback threw:', e);
    }
  };
  const name = model;
  let where = model;
  let file = null;
  if (isGguf(model)) {
    ({ where, file } = ggufPlace(model));
    required = [file];
    optional = [];
  }
  const makers = await candidates(where, { revision, localOnly });
  // Why each place did not hold the model, as whole sentences.
  const misses = [];
  for (const make of makers) {
    const source = await make();
    if (source.hub) return { name, hub: { ...source.hub, file } };
    const problem = await source.probe();
    if (problem) {
      misses.push(problem);
      continue;
    }
    // The first required file says whether this place holds the model at all.
    const [first, ...rest] = required;
    const head = await readOne(source, first, emit, name);
    if (head === null) {
      misses.push(
        file
          ? `${source.describe(first)} was not found`
          : `${model} is not a model: ${source.describe(first)} was not found`,
      );
      log.debug(`${model}: not at ${source.where}`);
      continue;
    }
    const files = await readAll(source, rest, optional, emit, name);
    files.set(first, head);
    return { name, where: source.where, file, files };
  }
  throw new WebformersError(misses.length === 1 ? misses[0] : `could not find the model ${model}: ${misses.join('; ')}`, 'file');
}

async function readOne(source, file, emit, name) {
  let started = false;
  const bytes = await source.read(file, (loaded, total) => {
    if (!started) {
      started = true;
      emit({ status: 'initiate', name, file });
      emit({ status: 'download', name, file });
    }
    emit({ status: 'progress', name, file, loaded, total, progress: total ? (loaded / total) * 100 : 0 });
  });
  if (bytes !== null) {
    if (!started) emit({ status: 'initiate', name, file });
    emit({ status: 'done', name, file, loaded: bytes.length, total: bytes.length, progress: 100 });
  }
  return bytes;
}

/**
 * The engine's `ModelFileSet` of what `loadModelFiles` fetched from a folder (not the Hub), the
 * Map then emptied. Safetensors weights are not copied into wasm memory: the engine reads them
 * onto the device tensor by tensor at load (a whole file there would need a hole that large in a
 * heap that never shrinks).
 */
export function modelFileSet(wasm, fetched) {
  const fileSet = new wasm.ModelFileSet(fetched.name);
  for (const [name, bytes] of fetched.files) {
    if (name.endsWith('.safetensors')) fileSet.insertWeights(name, bytes);
    else fileSet.insert(name, bytes);
  }
  fetched.files.clear();
  return fileSet;
}

async function readAll(source, required, optional, emit, name) {
  const files = new Map();
  const fetchOne = async (file, mustExist) => {
    const bytes = await readOne(source, file, emit, name);
    if (bytes === null) {
      if (mustExist) {
        throw new WebformersError(`${name}: the required file ${file} was not found at ${source.describe(file)}`, 'file');
      }
      return;
    }
    files.set(file, bytes);
  };
  await Promise.all([...required.map((f) => fetchOne(f, true)), ...optional.map((f) => fetchOne(f, false))]);
  return files;
}
