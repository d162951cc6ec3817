// The browser's Hub cache, in IndexedDB: the store the engine's Hub client (the core's Rust
// protocol, over fetch) reads and writes through (see core/src/hub/store.rs for the contract and
// bindings/wasm/src/hub.rs for the adapter), and `cache`, the JS API that lists and deletes
// cached models. Both live here so that one file owns the schema.
//
// Database `webformers-hub`, version 1:
//   refs    [repo, revision]           → {repo, revision, commit}    what a branch or tag pointed to
//   files   [repo, commit, file]       → {repo, commit, file, etag, size} or {…, absent: true}:
//                                        the manifest, written LAST, once every byte of the file is
//                                        stored and verified (in one transaction with its blob)
//   blobs   [repo, etag]               → {repo, etag, size, time}    contents known complete
//   chunks  [repo, etag, start, end]   → Blob                        bytes start..end of the contents,
//                                        one record per piece of a download (cut at tensor boundaries)
//
// Contents are keyed by ETag (the sha256 of an LFS file, the git blob id of others), which names
// a file's bytes at a commit: a file unchanged between commits is stored once. A file is visible
// only through its manifest, so an interrupted, failed or over-quota download leaves nothing a
// load or `cache.list()` shows as cached; the next load resumes after the chunks it finds (their
// keys say which ranges are held without reading them). Verification happens in the engine
// before `finish` is called; bytes that fail it are discarded.

import { WebformersError } from './engine.js';

const DB_NAME = 'webformers-hub';
/** Files up to this size come back whole (config and tokenizer files); larger ones by ranges. */
const SMALL = 1 << 20;

const hasIndexedDb = () => typeof indexedDB !== 'undefined' && indexedDB !== null;

let opening = null;

function openDb() {
  opening ??= new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore('refs', { keyPath: ['repo', 'revision'] });
      db.createObjectStore('files', { keyPath: ['repo', 'commit', 'file'] });
      db.createObjectStore('blobs', { keyPath: ['repo', 'etag'] });
      db.createObjectStore('chunks');
    };
    request.onsuccess = () => {
      const db = request.result;
      // Another tab upgrading the schema: step aside (the next call reopens).
      db.onversionchange = () => {
        db.close();
        opening = null;
      };
      resolve(db);
    };
    request.onerror = () => reject(request.error);
    request.onblocked = () => reject(new Error('the IndexedDB database is held open by another tab with an older version'));
  }).catch((e) => {
    opening = null;
    throw e;
  });
  return opening;
}

/** Runs `body(stores)` in one transaction; resolves with its result once the transaction commits. */
async function transact(names, mode, body, durability = 'default') {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    let tx;
    try {
      tx = db.transaction(names, mode, { durability });
    } catch (e) {
      reject(e);
      return;
    }
    const stores = Object.fromEntries(names.map((n) => [n, tx.objectStore(n)]));
    let result;
    tx.oncomplete = () => resolve(result);
    tx.onabort = () => reject(tx.error ?? new Error('the IndexedDB transaction was aborted'));
    tx.onerror = (event) => event.preventDefault?.(); // reported by onabort
    Promise.resolve()
      .then(() => body(stores))
      .then(
        (r) => {
          result = r;
        },
        (e) => {
          try {
            tx.abort();
          } catch {}
          reject(e);
        },
      );
  });
}

/** An IDBRequest as a promise. */
const done = (request) =>
  new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });

/** Every key of `store` whose first elements are `prefix`. */
const under = (prefix) => IDBKeyRange.bound(prefix, [...prefix, []]);

/** Sorted, merged [start, end) ranges of chunk keys. */
function merge(keys) {
  const ranges = keys.map((k) => [k[2], k[3]]).sort((a, b) => a[0] - b[0]);
  const out = [];
  for (const [s, e] of ranges) {
    const last = out.at(-1);
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

async function storageWords() {
  try {
    const { usage, quota } = await navigator.storage.estimate();
    const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
    return ` (this origin uses ${mb(usage)} of its ${mb(quota)} quota)`;
  } catch {
    return '';
  }
}

/** One file's contents being stored (or read back by ranges). */
class Partial {
  constructor(repo, etag, size, keys) {
    this.repo = repo;
    this.etag = etag;
    this.size = size;
    this.keys = keys.sort((a, b) => a[2] - b[2]);
    this.held = merge(keys);
    /** Bytes written since the last flush: [{start, parts, length}], contiguous runs. */
    this.pending = [];
    /** The chunk writes in flight, one after another; a failure surfaces at the next flush. */
    this.writing = Promise.resolve();
    /** Chunk records read back, by start: at most the current one and the next (read ahead). */
    this.loaded = new Map();
  }

  chunk(key) {
    const id = key.join('\u0000');
    let entry = this.loaded.get(id);
    if (!entry) {
      entry = transact(['chunks'], 'readonly', (s) => done(s.chunks.get(key))).then(async (v) => {
        if (v instanceof Blob) return new Uint8Array(await v.arrayBuffer());
        if (v instanceof ArrayBuffer) return new Uint8Array(v);
        throw new Error(`the cached bytes ${key[2]}..${key[3]} of ${this.etag} are missing`);
      });
      entry.catch(() => {});
      this.loaded.set(id, entry);
      // Keep two: the one being read and the one after it.
      while (this.loaded.size > 2) this.loaded.delete(this.loaded.keys().next().value);
    }
    return entry;
  }

  async read(start, end) {
    // Within one chunk (reads are smaller than pieces, so mostly): a view of it, not a copy;
    // the engine copies what it gets into its memory at once.
    const within = this.keys.find((k) => k[2] <= start && end <= k[3]);
    if (within) {
      const bytes = await this.chunk(within);
      const next = this.keys.find((k) => k[2] === within[3]);
      if (next) this.chunk(next); // read ahead, as below
      return bytes.subarray(start - within[2], end - within[2]);
    }
    const out = new Uint8Array(end - start);
    let pos = start;
    while (pos < end) {
      // The chunk that holds `pos` and reaches furthest (downloads that overlapped may both be there).
      let key = null;
      for (const k of this.keys) if (k[2] <= pos && pos < k[3] && (!key || k[3] > key[3])) key = k;
      if (!key) throw new Error(`byte ${pos} of ${this.etag} is not in the cache`);
      const bytes = await this.chunk(key);
      const stop = Math.min(end, key[3]);
      out.set(bytes.subarray(pos - key[2], stop - key[2]), pos - start);
      pos = stop;
      const next = this.keys.find((k) => k[2] === key[3]);
      if (next) this.chunk(next); // read ahead while the engine uses these bytes
    }
    return out;
  }

  write(offset, bytes) {
    // `bytes` is a view of the engine's memory: copied now.
    const last = this.pending.at(-1);
    if (last && last.start + last.length === offset) {
      last.parts.push(bytes.slice());
      last.length += bytes.length;
    } else {
      this.pending.push({ start: offset, parts: [bytes.slice()], length: bytes.length });
    }
  }

  async put(runs) {
    const keys = runs.map((run) => [this.repo, this.etag, run.start, run.start + run.length]);
    try {
      await transact(
        ['chunks'],
        'readwrite',
        (s) => {
          // A Blob: the browser writes its parts to disk as they are, no joined copy, no
          // serialization of the bytes.
          runs.forEach((run, i) => s.chunks.put(new Blob(run.parts), keys[i]));
        },
        // Losing the last chunks in a crash costs a re-download, not correctness.
        'relaxed',
      );
      this.keys.push(...keys);
    } catch (e) {
      if (e?.name !== 'QuotaExceededError') throw e;
      // The file does not fit: give back the room its other chunks took.
      await transact(['chunks'], 'readwrite', (s) => s.chunks.delete(under([this.repo, this.etag]))).catch(() => {});
      const error = new Error(
        `storing ${this.size} bytes needs more room than the browser gives this page${await storageWords()}; ` +
          'free some with cache.delete(), or set env.useBrowserCache = false to load without caching',
      );
      error.name = 'QuotaExceededError';
      throw error;
    }
  }

  async flush() {
    const runs = this.pending;
    this.pending = [];
    const previous = this.writing;
    if (runs.length) {
      this.writing = previous.then(() => this.put(runs));
      this.writing.catch(() => {});
    }
    // One write in flight while the next piece downloads; an earlier failure is thrown here.
    await previous;
  }

  async finish(commit, file) {
    await this.flush();
    await this.writing;
    // The manifest last: only now is the file visible.
    try {
      await transact(['blobs', 'files'], 'readwrite', (s) => {
        s.blobs.put({ repo: this.repo, etag: this.etag, size: this.size, time: Date.now() });
        s.files.put({ repo: this.repo, commit, file, etag: this.etag, size: this.size });
      });
    } catch (e) {
      // The manifest did not fit (the weights took the room meanwhile): the chunks it would
      // have shown are given back, not left behind as an incomplete download.
      await this.discard().catch(() => {});
      throw e;
    }
  }

  async discard() {
    this.pending = [];
    await this.writing.catch(() => {});
    await transact(['blobs', 'chunks'], 'readwrite', async (s) => {
      // Never the chunks of contents another load completed meanwhile.
      if (!(await done(s.blobs.get([this.repo, this.etag])))) s.chunks.delete(under([this.repo, this.etag]));
    });
  }
}

/** The store the engine's Hub client uses in browsers (and workers). */
export class IndexedDbStore {
  async commit(repo, revision) {
    const ref = await transact(['refs'], 'readonly', (s) => done(s.refs.get([repo, revision])));
    return ref?.commit ?? null;
  }

  async setCommit(repo, revision, commit) {
    await transact(['refs'], 'readwrite', (s) => s.refs.put({ repo, revision, commit }));
  }

  async get(repo, commit, file) {
    const found = await transact(['files', 'blobs'], 'readonly', async (s) => {
      const manifest = await done(s.files.get([repo, commit, file]));
      if (!manifest || manifest.absent) return manifest;
      return (await done(s.blobs.get([repo, manifest.etag]))) ? manifest : null;
    });
    if (!found) return null;
    if (found.absent) return { absent: true };
    if (found.size > SMALL) return { etag: found.etag, size: found.size };
    const partial = await this.open(repo, commit, file, found.etag, found.size);
    try {
      return { etag: found.etag, size: found.size, bytes: await partial.read(0, found.size) };
    } catch {
      return null; // chunks gone (the site's data cleared halfway): fetched again
    }
  }

  async setAbsent(repo, commit, file) {
    await transact(['files'], 'readwrite', (s) => s.files.put({ repo, commit, file, absent: true }));
  }

  async link(repo, commit, file, etag, size) {
    return transact(['files', 'blobs'], 'readwrite', async (s) => {
      if (!(await done(s.blobs.get([repo, etag])))) return false;
      s.files.put({ repo, commit, file, etag, size });
      return true;
    });
  }

  async open(repo, commit, file, etag, size) {
    const keys = await transact(['chunks'], 'readonly', (s) => done(s.chunks.getAllKeys(under([repo, etag]))));
    const partial = new Partial(repo, etag, size, keys);
    return {
      held: partial.held,
      read: (start, end) => partial.read(start, end),
      write: (offset, bytes) => partial.write(offset, bytes),
      flush: () => partial.flush(),
      finish: () => partial.finish(commit, file),
      discard: () => partial.discard(),
    };
  }
}

/** Where there is no IndexedDB (Node), or caching is off: files stream through, nothing stays. */
export class NoStore {
  async commit() {
    return null;
  }
  async setCommit() {}
  async get() {
    return null;
  }
  async setAbsent() {}
  async link() {
    return false;
  }
  async open() {
    return {
      held: [],
      read: async () => {
        throw new Error('nothing is cached');
      },
      write: () => {},
      flush: async () => {},
      finish: async () => {},
      discard: async () => {},
    };
  }
}

/** The store for a load: IndexedDB when there is one and `useBrowserCache` is on. */
export function hubStore(useBrowserCache = true) {
  return useBrowserCache && hasIndexedDb() ? new IndexedDbStore() : new NoStore();
}

const cacheError = (e) =>
  e instanceof WebformersError ? e : new WebformersError(`the browser cache (IndexedDB): ${e?.message ?? e}`, 'cache', { cause: e });

/**
 * The models the Hub client cached in this browser (IndexedDB, per origin).
 *   await cache.list()        → [{ repo, size, files: [{file, commit, size}], revisions: {main: commit}, incomplete }]
 *   await cache.delete(repo)  → the bytes freed (0 when nothing was cached)
 *   await cache.clear()       → every model
 * `size` counts complete files once per content; `incomplete` the bytes of downloads that did not
 * finish (kept to resume; no load uses them as a file).
 */
export const cache = {
  async list() {
    if (!hasIndexedDb()) return [];
    try {
      const [files, refs, blobs, keys] = await transact(['files', 'refs', 'blobs', 'chunks'], 'readonly', (s) =>
        Promise.all([done(s.files.getAll()), done(s.refs.getAll()), done(s.blobs.getAll()), done(s.chunks.getAllKeys())]),
      );
      const models = new Map();
      const model = (repo) => {
        if (!models.has(repo)) models.set(repo, { repo, size: 0, files: [], revisions: {}, incomplete: 0 });
        return models.get(repo);
      };
      const complete = new Set();
      for (const b of blobs) {
        complete.add(`${b.repo}\u0000${b.etag}`);
        model(b.repo).size += b.size;
      }
      for (const f of files) if (!f.absent) model(f.repo).files.push({ file: f.file, commit: f.commit, size: f.size });
      for (const r of refs) if (models.has(r.repo)) model(r.repo).revisions[r.revision] = r.commit;
      for (const [repo, etag, start, end] of keys) {
        if (!complete.has(`${repo}\u0000${etag}`)) model(repo).incomplete += end - start;
      }
      return [...models.values()].sort((a, b) => a.repo.localeCompare(b.repo));
    } catch (e) {
      throw cacheError(e);
    }
  },

  async delete(repo) {
    if (!hasIndexedDb()) return 0;
    if (typeof repo !== 'string' || !repo) throw new WebformersError('cache.delete(repo): repo must be a model id such as org/name', 'input');
    try {
      const entry = (await cache.list()).find((m) => m.repo === repo);
      await transact(['files', 'refs', 'blobs', 'chunks'], 'readwrite', (s) => {
        for (const name of ['files', 'refs', 'blobs', 'chunks']) s[name].delete(under([repo]));
      });
      return entry ? entry.size + entry.incomplete : 0;
    } catch (e) {
      throw cacheError(e);
    }
  },

  async clear() {
    if (!hasIndexedDb()) return;
    try {
      await transact(['files', 'refs', 'blobs', 'chunks'], 'readwrite', (s) => {
        for (const name of ['files', 'refs', 'blobs', 'chunks']) s[name].clear();
      });
    } catch (e) {
      throw cacheError(e);
    }
  },
};
