// The engine's .wasm kept in the browser's Cache API (`env.useWasmCache`, transformers.js's
// setting): a page loaded again compiles the module from the cached bytes instead of downloading
// them (about 10 MB). The entry's key is the file's URL with the package version and the file's
// sha256, stamped into WASM_DIGESTS by scripts/build.mjs, so a new build never meets an old
// module; entries of other builds of that file are deleted. Bytes are put only when their sha256
// is the stamped one. Without a Cache API (Node, opaque origins, insecure pages), on a URL that
// is not http(s), or in an unbuilt copy (no digests), this gives null and the engine fetches the
// file as before.

import { VERSION, env, log } from './env.js';

export const WASM_CACHE_NAME = 'webformers-wasm';

/** The .wasm files' sha256 (hex), by file name: `npm run build` writes them here. */
const WASM_DIGESTS = /* build: wasm digests */ {};

function cacheKey(url, file) {
  const key = new URL(url.href);
  key.search = `?webformers=${encodeURIComponent(VERSION)}&sha256=${WASM_DIGESTS[file]}`;
  return key.href;
}

async function sha256Hex(bytes) {
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Compiles a Response: streamed where it is served as application/wasm. */
export async function compileResponse(response) {
  if (typeof WebAssembly.compileStreaming === 'function' && /application\/wasm/i.test(response.headers.get('content-type') ?? '')) {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

/**
 * The engine's module `file` (served at `url`), compiled from the Cache API when it holds it,
 * else fetched, compiled and put there. Null when the cache is off or unavailable, or anything
 * in it fails: the caller then loads the file as it would without the cache.
 */
export async function compileCachedWasm(url, file) {
  if (env.useWasmCache === false || !WASM_DIGESTS[file] || !/^https?:$/.test(url.protocol)) return null;
  if (typeof caches === 'undefined' || typeof crypto === 'undefined' || !crypto.subtle) return null;
  let cache;
  try {
    // Opaque origins (sandboxed frames, data: pages) throw here.
    cache = await caches.open(WASM_CACHE_NAME);
  } catch (e) {
    log.debug(`the wasm cache is unavailable: ${e?.message ?? e}`);
    return null;
  }
  const key = cacheKey(url, file);
  try {
    const hit = await cache.match(key);
    if (hit) {
      const module = await compileResponse(hit);
      log.debug(`${file} compiled from the Cache API`);
      return module;
    }
  } catch (e) {
    log.warn(`the cached ${file} could not be compiled, so it is fetched again: ${e?.message ?? e}`);
    await cache.delete(key).catch(() => {});
  }
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const type = response.headers.get('content-type') || 'application/wasm';
    const [module, bytes] = await Promise.all([compileResponse(response.clone()), response.arrayBuffer()]);
    if ((await sha256Hex(bytes)) === WASM_DIGESTS[file]) {
      await cache.put(key, new Response(bytes, { headers: { 'content-type': type, 'content-length': String(bytes.byteLength) } }));
      // Other builds' copies of this file are dead weight now.
      for (const old of await cache.keys()) {
        const u = new URL(old.url);
        if (u.pathname.endsWith(`/${file}`) && old.url !== key) await cache.delete(old);
      }
    } else {
      log.warn(`${url} is not the ${file} of this build of the package (its sha256 differs), so it is not cached`);
    }
    return module;
  } catch (e) {
    log.debug(`the wasm cache could not keep ${file}: ${e?.message ?? e}`);
    return null;
  }
}
