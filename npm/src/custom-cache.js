// Models kept in a cache the user supplies (`env.useCustomCache` with `env.customCache`,
// transformers.js's settings): any object with the Web Cache API's `match(url)` and
// `put(url, response)`, a `Cache` from `caches.open()` included. `CustomCacheStore` is the store
// the engine's Hub client uses then (the contract: core/src/hub/store.rs, as hub-store.js's
// IndexedDbStore keeps it); `readThroughCache` keeps files fetched from plain URLs.
//
// Entries, keyed by http(s) URLs under env.remoteHost so that a real `Cache` takes them:
//   {endpoint}/{repo}/resolve/{commit}/{file}     → 200 with the file's bytes and its ETag (the
//                                                   sha256 of an LFS file, the git blob id of others),
//                                                   or 404: the file does not exist at that commit
//   {endpoint}/api/models/{repo}/revision/{rev}   → {"sha": commit}, what a branch or tag pointed to
// Such a cache holds no partial entries: a download is gathered in Blobs (which browsers may keep
// on disk) and put once, after the engine verified every byte, so an interrupted load starts that
// file again. Files are kept per commit (a new commit downloads its files again).

import { WebformersError } from './engine.js';
import { env, log } from './env.js';

/** Files up to this size come back whole (config and tokenizer files); larger ones by ranges. */
const SMALL = 1 << 20;
const COMMIT = /^[0-9a-f]{40}$/;
/** The ETags the engine gives files: a sha256 or a git blob sha1. */
const ETAG = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** `env.customCache`, checked: a clear Error when `useCustomCache` is set without a usable one. */
export function customCache() {
  const cache = env.customCache;
  const missing = ['match', 'put'].filter((f) => typeof cache?.[f] !== 'function');
  if (!cache || missing.length) {
    const what = cache ? `has no ${missing.join(' or ')} function` : `is ${cache === null ? 'null' : 'not set'}`;
    throw new WebformersError(
      `env.useCustomCache is true, but env.customCache ${what}: it must be an object with the Web Cache API's ` +
        'match(url) and put(url, response) functions (a Cache from caches.open() is one), or set env.useCustomCache = false',
      'config',
    );
  }
  return cache;
}

/** The cached Response for `url`, or null. A cache that throws counts as a miss (with a warning). */
export async function cacheMatch(cache, url) {
  try {
    const hit = await cache.match(url);
    // transformers.js's file cache may answer a path; only a Response is an entry here.
    return hit && typeof hit.blob === 'function' ? hit : null;
  } catch (e) {
    log.warn(`env.customCache.match(${url}) failed, so the file is fetched: ${e?.message ?? e}`);
    return null;
  }
}

/** Puts an entry; a refusal (quota) leaves the load working, uncached, as in transformers.js. */
export async function cachePut(cache, url, response) {
  try {
    await cache.put(url, response);
  } catch (e) {
    log.warn(`env.customCache.put(${url}) failed, so the file is used but not kept: ${e?.message ?? e}`);
  }
}

/** A cached entry's body, or null when it cannot be read (a Response whose body was used). */
async function body(hit, url) {
  try {
    return await hit.blob();
  } catch (e) {
    log.warn(`env.customCache: the entry for ${url} cannot be read, so the file is fetched: ${e?.message ?? e}`);
    return null;
  }
}

/**
 * The bytes at `url` (a file of a model served over HTTP) through the custom cache: a complete
 * 200 entry, else fetched by `fetchBytes(url, onProgress)` and put once whole. Only http(s) URLs
 * are kept: an extension's, a blob's or a data URL's bytes are at hand already.
 */
export async function readThroughCache(url, onProgress, fetchBytes) {
  const cache = customCache();
  if (!/^https?:/i.test(url)) return fetchBytes(url, onProgress);
  const hit = await cacheMatch(cache, url);
  const blob = hit?.ok ? await body(hit, url) : null;
  if (blob) {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    onProgress(bytes.length, bytes.length);
    return bytes;
  }
  const bytes = await fetchBytes(url, onProgress);
  // fetchBytes has checked the length against Content-Length; a 404 (null) is not kept.
  if (bytes) await cachePut(cache, url, new Response(bytes, { headers: { 'content-length': String(bytes.length) } }));
  return bytes;
}

const encodePath = (file) => file.split('/').map(encodeURIComponent).join('/');

/** The engine's Hub store over `env.customCache` (see the top of this file for its entries). */
export class CustomCacheStore {
  constructor(cache, endpoint) {
    this.cache = cache;
    this.endpoint = endpoint;
    /** Large complete files `get` found, for the `open` that reads them by ranges. */
    this.found = new Map();
  }

  fileUrl(repo, commit, file) {
    return `${this.endpoint}/${repo}/resolve/${encodeURIComponent(commit)}/${encodePath(file)}`;
  }

  refUrl(repo, revision) {
    return `${this.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  }

  /**
   * The revision a load asks the engine for: the commit the cache has for a branch or tag, so
   * that a warm load asks the Hub nothing (transformers.js's cache answers by URL, unasked).
   */
  async revisionFor(repo, revision) {
    if (COMMIT.test(revision)) return revision;
    return (await this.commit(repo, revision)) ?? revision;
  }

  async commit(repo, revision) {
    const hit = await cacheMatch(this.cache, this.refUrl(repo, revision));
    if (!hit?.ok) return null;
    try {
      const sha = (await hit.json())?.sha;
      return typeof sha === 'string' && COMMIT.test(sha) ? sha : null;
    } catch {
      return null;
    }
  }

  async setCommit(repo, revision, commit) {
    const json = JSON.stringify({ sha: commit });
    await cachePut(this.cache, this.refUrl(repo, revision), new Response(json, { headers: { 'content-type': 'application/json' } }));
  }

  /** A complete entry: {etag, blob}, or null (missing, absent, or not one this store wrote). */
  async entry(url) {
    const hit = await cacheMatch(this.cache, url);
    if (!hit) return null;
    if (hit.status === 404) return { absent: true };
    const etag = (hit.headers?.get('etag') ?? '').replace(/^W\//, '').replace(/"/g, '');
    if (!hit.ok || !ETAG.test(etag)) return null;
    const blob = await body(hit, url);
    const declared = hit.headers.get('content-length');
    if (!blob || (declared !== null && Number(declared) !== blob.size)) return null;
    return { etag, blob };
  }

  async get(repo, commit, file) {
    const url = this.fileUrl(repo, commit, file);
    const found = await this.entry(url);
    if (!found || found.absent) return found;
    const { etag, blob } = found;
    if (blob.size > SMALL) {
      this.found.set(url, found);
      return { etag, size: blob.size };
    }
    return { etag, size: blob.size, bytes: new Uint8Array(await blob.arrayBuffer()) };
  }

  async setAbsent(repo, commit, file) {
    await cachePut(this.cache, this.fileUrl(repo, commit, file), new Response(null, { status: 404 }));
  }

  /** Entries are per commit: a file of another commit is not shared. */
  async link() {
    return false;
  }

  async open(repo, commit, file, etag, size) {
    const url = this.fileUrl(repo, commit, file);
    const known = this.found.get(url) ?? (await this.entry(url));
    this.found.delete(url);
    if (known?.blob && known.etag === etag && known.blob.size === size) {
      const { blob } = known;
      return {
        held: size > 0 ? [[0, size]] : [],
        read: async (start, end) => new Uint8Array(await blob.slice(start, end).arrayBuffer()),
        write: () => {
          throw new Error(`${url} is complete`);
        },
        flush: async () => {},
        finish: async () => {},
        discard: async () => {},
      };
    }
    // The bytes of one piece at a time become a Blob; the file is put whole at `finish`.
    let pending = [];
    let blobs = [];
    let length = 0;
    const store = this;
    return {
      held: [],
      read: async () => {
        throw new Error('nothing of this file is cached');
      },
      write(offset, bytes) {
        if (offset !== length) throw new Error(`a write at byte ${offset} after ${length} bytes`);
        // `bytes` is a view of the engine's memory: copied now.
        pending.push(bytes.slice());
        length += bytes.length;
      },
      async flush() {
        if (pending.length) blobs.push(new Blob(pending));
        pending = [];
      },
      async finish() {
        await this.flush();
        if (length !== size) throw new Error(`${length} of the ${size} bytes were stored`);
        const headers = { 'content-type': 'application/octet-stream', 'content-length': String(size), etag: `"${etag}"` };
        await cachePut(store.cache, url, new Response(new Blob(blobs), { headers }));
        blobs = [];
      },
      async discard() {
        pending = [];
        blobs = [];
      },
    };
  }
}
