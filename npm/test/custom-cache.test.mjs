// transformers.js's cache settings: env.useCustomCache / env.customCache (the user's own cache,
// any object with match(url) and put(url, response)) and env.useWasmCache (the engine's .wasm in
// the Cache API). Against the Hub stand-in (tests/hub/server.py, which counts its requests) and a
// static server that counts its own: in Node, a custom cache that records its calls takes every
// file of a cold load and gives every file of a warm one, the Hub asked nothing; bad customCache
// values are clear Errors. In headless Chromium, over two pages (two engine instances, one
// profile): a custom cache over the Cache API for a Hub model and a model in a folder of the
// page's server, IndexedDB untouched; the second page fetches no .wasm, single-threaded and
// threaded (an isolated page on 2 threads), and a damaged cached module is fetched again.
// Corrupt downloads are never put. Every load must give PyTorch's embeddings
// (tests/fixtures/minilm-reference.json) within 1e-4. About 40 s.
// Needs `npm run build` and scripts/fetch-models.sh first (scripts/test-npm.sh does both).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer } from '../../scripts/static-server.mjs';
import { TOLERANCE, distDir, evaluateWithin, here, launchBrowser, maxAbsDiff, minilmDir, modelsDir, openPage, reference, rejectsWith } from './helpers.mjs';
import { startHub } from './hub-server.mjs';

const REPO = 'sentence-transformers/all-MiniLM-L6-v2';
/** The model without its optional files (sentence-transformers' configs): their 404s are entries too. */
const LEAN = 'test/minilm-lean';
const WEIGHTS = 'model.safetensors';
const MODEL_BYTES = fs.statSync(path.join(minilmDir, WEIGHTS)).size;

const ref = reference();
const few = { ...ref, inputs: ref.inputs.slice(0, 3) };
const texts = few.inputs.map((i) => i.text);

let hub;
let browser;
let leanDir;

before(async () => {
  leanDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-lean-repo-'));
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', WEIGHTS]) fs.symlinkSync(path.join(minilmDir, f), path.join(leanDir, f));
  hub = await startHub({ [REPO]: minilmDir, [LEAN]: leanDir });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await hub?.close();
  if (leanDir) fs.rmSync(leanDir, { recursive: true, force: true });
});

/** The Hub stand-in's requests since the last reset, as `METHOD file`. */
async function hubRequests() {
  return (await hub.stats()).requests.map((r) => `${r.method} ${r.file}`);
}

function assertEmbeddings(data, what) {
  const diff = maxAbsDiff(data, few);
  assert.ok(diff <= TOLERANCE, `${what}: max abs diff ${diff} > ${TOLERANCE}`);
}

/** A custom cache in memory that records its calls, as a user's object would be. */
function recordingCache() {
  const entries = new Map();
  const calls = [];
  return {
    calls,
    entries,
    async match(url) {
      calls.push(`match ${url}`);
      const e = entries.get(url);
      return e && new Response(e.bytes, { status: e.status, headers: e.headers });
    },
    async put(url, response) {
      calls.push(`put ${url}`);
      const bytes = response.status === 404 ? null : new Uint8Array(await response.arrayBuffer());
      entries.set(url, { status: response.status, headers: [...response.headers], bytes });
    },
  };
}

describe('env.useCustomCache in Node', () => {
  test('a cold load puts every file once, whole; a warm load takes every file from it and asks the Hub nothing', { timeout: 300_000 }, async () => {
    const { pipeline, env } = await import(path.join(distDir, 'index.js'));
    const saved = { ...env };
    const cache = recordingCache();
    Object.assign(env, { remoteHost: `${hub.endpoint}/`, allowLocalModels: false, useCustomCache: true, customCache: cache });
    try {
      await hub.reset();
      const cold = await pipeline('feature-extraction', LEAN, { device: 'wasm' });
      assertEmbeddings(Array.from((await cold(texts, { pooling: 'mean', normalize: true })).data), 'cold');
      await cold.dispose();
      const asked = new Set((await hub.stats()).requests.map((r) => r.file).filter((f) => f && !f.startsWith('api/')));
      const puts = cache.calls.filter((c) => c.startsWith('put ')).map((c) => c.slice(4));
      assert.equal(new Set(puts).size, puts.length, `a file was put twice:\n${puts.join('\n')}`);
      const ref = `${hub.endpoint}/api/models/${LEAN}/revision/main`;
      assert.ok(puts.includes(ref), `the branch's commit is kept:\n${puts.join('\n')}`);
      const commit = JSON.parse(new TextDecoder().decode(cache.entries.get(ref).bytes)).sha;
      assert.match(commit, /^[0-9a-f]{40}$/);
      const prefix = `${hub.endpoint}/${LEAN}/resolve/${commit}/`;
      // Every file the Hub was asked about is an entry: its bytes (200), or its absence (404).
      for (const file of asked) assert.ok(cache.entries.has(prefix + file), `${file} was fetched but not put:\n${puts.join('\n')}`);
      for (const file of ['config.json', 'tokenizer.json', WEIGHTS]) {
        const e = cache.entries.get(prefix + file);
        assert.equal(e?.status, 200, file);
        assert.deepEqual(Buffer.from(e.bytes), fs.readFileSync(path.join(minilmDir, file)), `${file}: the cached bytes are the file's`);
      }
      assert.equal(cache.entries.get(prefix + WEIGHTS).bytes.length, MODEL_BYTES);
      const absent = puts.filter((u) => cache.entries.get(u).status === 404);
      assert.ok(absent.some((u) => u.endsWith('/sentence_bert_config.json')), `a missing optional file is remembered as a 404:\n${puts.join('\n')}`);

      await hub.reset();
      cache.calls.length = 0;
      const warm = await pipeline('feature-extraction', LEAN, { device: 'wasm' });
      assertEmbeddings(Array.from((await warm(texts, { pooling: 'mean', normalize: true })).data), 'warm');
      await warm.dispose();
      assert.deepEqual(await hubRequests(), [], 'a warm load asks the Hub nothing');
      assert.deepEqual(cache.calls.filter((c) => c.startsWith('put ')), [], 'a warm load puts nothing');
      for (const file of asked) assert.ok(cache.calls.includes(`match ${prefix}${file}`), `${file} was not taken from the cache`);
    } finally {
      Object.assign(env, saved);
    }
  });

  test('bytes that do not match the sha256: a clear Error, and nothing of the file is put', { timeout: 120_000 }, async () => {
    const { pipeline, env } = await import(path.join(distDir, 'index.js'));
    const saved = { ...env };
    const cache = recordingCache();
    Object.assign(env, { remoteHost: `${hub.endpoint}/`, allowLocalModels: false, useCustomCache: true, customCache: cache });
    try {
      await hub.reset();
      await hub.fault(`file=${WEIGHTS}&kind=corrupt&method=GET&skip=1`);
      await rejectsWith(Error, pipeline('feature-extraction', REPO, { device: 'wasm' }), /model\.safetensors: the downloaded bytes have sha256 [0-9a-f]{64}, not the [0-9a-f]{64} of the file's ETag/, 'integrity');
      const puts = cache.calls.filter((c) => c.startsWith('put '));
      assert.ok(puts.some((c) => c.endsWith('/config.json')), puts.join('\n'));
      assert.ok(!puts.some((c) => c.endsWith(`/${WEIGHTS}`)), `the corrupt weights were put:\n${puts.join('\n')}`);
    } finally {
      Object.assign(env, saved);
    }
  });

  test('useCustomCache without a customCache having match and put: a clear Error', { timeout: 60_000 }, async () => {
    const { pipeline, env } = await import(path.join(distDir, 'index.js'));
    const saved = { ...env };
    Object.assign(env, { remoteHost: `${hub.endpoint}/`, allowLocalModels: false, useCustomCache: true });
    try {
      await hub.reset();
      const pattern = (what) => new RegExp(`env\\.useCustomCache is true, but env\\.customCache ${what}: it must be an object with the Web Cache API's match\\(url\\) and put\\(url, response\\)`);
      env.customCache = null;
      await rejectsWith(Error, pipeline('feature-extraction', REPO, { device: 'wasm' }), pattern('is null'), 'config');
      env.customCache = { put: async () => {} };
      await rejectsWith(Error, pipeline('feature-extraction', REPO, { device: 'wasm' }), pattern('has no match function'), 'config');
      env.customCache = new Map();
      await rejectsWith(Error, pipeline('feature-extraction', REPO, { device: 'wasm' }), pattern('has no match or put function'), 'config');
      assert.deepEqual(await hubRequests(), [], 'nothing was fetched');
    } finally {
      Object.assign(env, saved);
    }
  });
});

/**
 * The package's server for the browser tests, counting its requests (`METHOD path status`).
 * `isolate`: crossOriginIsolated pages (the threaded build).
 */
async function countingServer(isolate = false) {
  const requests = [];
  const server = await startServer({
    isolate,
    mounts: { '/': path.join(here, 'pages'), '/webformers/': distDir, '/models/': modelsDir },
    onRequest(req, res) {
      res.on('finish', () => requests.push(`${req.method} ${new URL(req.url, 'http://x').pathname} ${res.statusCode}`));
      return false;
    },
  });
  return { server, requests };
}

/** Runs `fn(...args)` in a new page of `url`, failing on any console error but the 404s of optional files. */
async function inPage(url, fn, ...args) {
  const p = await openPage(browser, url);
  try {
    return await evaluateWithin(p, 240, fn, ...args);
  } finally {
    assert.deepEqual(p.problems.filter((m) => !/Failed to load resource/.test(m)), []);
    await p.close();
  }
}

describe('in Chromium, over two pages', () => {
  test('a custom cache over the Cache API keeps a Hub model and a folder model; the second page fetches no .wasm and asks no server for a file', { timeout: 300_000 }, async () => {
    const { server, requests } = await countingServer();
    try {
      const load = () =>
        inPage(
          server.url,
          async (endpoint, repo, texts) => {
            const { pipeline, env, cache } = await import('/webformers/index.js');
            env.remoteHost = `${endpoint}/`;
            const store = await caches.open('my-models');
            const calls = [];
            env.useCustomCache = true;
            env.customCache = {
              match: (url) => (calls.push(`match ${url}`), store.match(url)),
              put: (url, response) => (calls.push(`put ${url}`), store.put(url, response)),
            };
            const out = {};
            for (const model of [repo, '/models/all-MiniLM-L6-v2']) {
              const pipe = await pipeline('feature-extraction', model, { device: 'wasm' });
              out[model] = Array.from((await pipe(texts, { pooling: 'mean', normalize: true })).data);
              await pipe.dispose();
            }
            const wasmKeys = (await (await caches.open('webformers-wasm')).keys()).map((r) => r.url);
            return { out, calls, indexedDb: await cache.list(), wasmKeys };
          },
          hub.endpoint,
          REPO,
          texts,
        );
      const files = (list) => list.filter((r) => /^GET \/(models|webformers)\//.test(r));
      await hub.reset();
      const cold = await load();
      for (const [model, data] of Object.entries(cold.out)) assertEmbeddings(data, `cold ${model}`);
      const puts = cold.calls.filter((c) => c.startsWith('put '));
      assert.ok(puts.some((c) => new RegExp(`^put ${hub.endpoint}/${REPO}/resolve/[0-9a-f]{40}/${WEIGHTS}$`).test(c)), puts.join('\n'));
      assert.ok(puts.includes(`put ${server.url}models/all-MiniLM-L6-v2/${WEIGHTS}`), puts.join('\n'));
      assert.deepEqual(cold.indexedDb, [], 'IndexedDB is not used');
      assert.ok(files(requests).includes('GET /webformers/wasm/webformers_wasm_relaxed_bg.wasm 200'), files(requests).join('\n'));
      assert.equal(cold.wasmKeys.length, 1);
      assert.match(cold.wasmKeys[0], /\/webformers\/wasm\/webformers_wasm_relaxed_bg\.wasm\?webformers=[^&]+&sha256=[0-9a-f]{64}$/);

      await hub.reset();
      requests.length = 0;
      const warm = await load();
      for (const [model, data] of Object.entries(warm.out)) assertEmbeddings(data, `warm ${model}`);
      assert.deepEqual(warm.calls.filter((c) => c.startsWith('put ')), [], 'the second page puts nothing');
      assert.deepEqual(await hubRequests(), [], 'the second page asks the Hub nothing');
      // The folder model's existing files come from the cache; only missing optional files are asked again (404, not kept).
      const served = files(requests).filter((r) => !r.endsWith(' 404') && !/\.js 200$/.test(r));
      assert.deepEqual(served, [], `the second page fetched:\n${served.join('\n')}`);
    } finally {
      await server.close();
    }
  });

  test('the threaded build (an isolated page, 2 threads): the second page compiles it from the Cache API', { timeout: 300_000 }, async () => {
    const { server, requests } = await countingServer(true);
    const WASM = 'GET /webformers/wasm/webformers_wasm_threaded_relaxed_bg.wasm 200';
    try {
      const load = () =>
        inPage(
          server.url,
          async (texts) => {
            const { pipeline, env } = await import('/webformers/index.js');
            env.numThreads = 2;
            const pipe = await pipeline('feature-extraction', '/models/all-MiniLM-L6-v2', { device: 'wasm' });
            const data = Array.from((await pipe(texts, { pooling: 'mean', normalize: true })).data);
            await pipe.dispose();
            return { isolated: self.crossOriginIsolated, threads: pipe.threads, data };
          },
          texts,
        );
      const cold = await load();
      assert.equal(cold.isolated, true);
      assert.equal(cold.threads, 2);
      assertEmbeddings(cold.data, 'cold, 2 threads');
      assert.equal(requests.filter((r) => r === WASM).length, 1, requests.join('\n'));
      requests.length = 0;
      const warm = await load();
      assert.equal(warm.threads, 2);
      assertEmbeddings(warm.data, 'warm, 2 threads');
      assert.deepEqual(requests.filter((r) => r.includes('.wasm')), [], 'no .wasm is fetched on the second page');

      // A cached module that does not compile (bytes damaged on disk) is fetched again and replaced.
      const key = await inPage(server.url, async () => {
        const cache = await caches.open('webformers-wasm');
        const [entry] = await cache.keys();
        await cache.put(entry, new Response(new Uint8Array([0, 97, 115, 109, 9, 9]), { headers: { 'content-type': 'application/wasm' } }));
        return entry.url;
      });
      assert.match(key, /webformers_wasm_threaded_relaxed_bg\.wasm\?webformers=/);
      requests.length = 0;
      const damaged = await load();
      assertEmbeddings(damaged.data, 'after a damaged cache entry, 2 threads');
      assert.equal(requests.filter((r) => r === WASM).length, 1, requests.join('\n'));
      requests.length = 0;
      assertEmbeddings((await load()).data, 'repaired, 2 threads');
      assert.deepEqual(requests.filter((r) => r.includes('.wasm')), [], 'the entry was put again');
    } finally {
      await server.close();
    }
  });
});
