// Node's Hub cache: files on disk in huggingface_hub's layout, the one the native CLI
// (core/src/hub/cache.rs) and Python use, so a model downloaded by any of the three is not
// downloaded again by the others:
//   {cacheDir}/models--{org}--{name}/blobs/{etag}              complete, verified contents
//   {cacheDir}/models--{org}--{name}/blobs/{etag}.incomplete   a download in progress (resumed from its length)
//   {cacheDir}/models--{org}--{name}/snapshots/{commit}/{file} a relative symlink to ../../blobs/{etag}
//   {cacheDir}/models--{org}--{name}/refs/{revision}           the commit a branch or tag pointed to
//   {cacheDir}/models--{org}--{name}/.no_exist/{commit}/{file} files the Hub said do not exist
// A blob appears only by renaming its `.incomplete` file after the engine verified every byte.
// Node only: `fsHubStore()` imports Node's modules when first called, hidden from bundlers, so the
// browser builds never see them.

import { nodeModule } from './env.js';

let fs, os, path;

/** The store for Node's loads, in `cacheDir` (default: huggingface_hub's). */
export async function fsHubStore(cacheDir) {
  if (!fs) [fs, os, path] = await Promise.all(['node:fs/promises', 'node:os', 'node:path'].map(nodeModule));
  return new FsHubStore(cacheDir ? String(cacheDir) : defaultCacheDir());
}

/** Files up to this size come back whole (config and tokenizer files); larger ones by ranges. */
const SMALL = 1 << 20;

/** huggingface_hub's default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
function defaultCacheDir() {
  const e = process.env;
  if (e.HF_HUB_CACHE || e.HUGGINGFACE_HUB_CACHE) return e.HF_HUB_CACHE || e.HUGGINGFACE_HUB_CACHE;
  const home = e.HF_HOME || path.join(e.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

/** A name from the Hub that must stay one path segment (an ETag, a commit, a revision). */
function segment(what, value) {
  if (!value || /[/\\]/.test(value) || value === '.' || value === '..') throw new Error(`unsafe ${what} '${value}' for a cache path`);
  return value;
}

/** A repository file's path under a snapshot: relative, no `..`. */
function filePath(file) {
  const parts = file.split('/');
  if (!file || path.isAbsolute(file) || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new Error(`unsafe file name '${file}' for a cache path`);
  }
  return path.join(...parts);
}

const exists = (p) =>
  fs.stat(p).then(
    (s) => s,
    () => null,
  );

class FsHubStore {
  constructor(root) {
    this.root = root;
  }

  repoDir(repo) {
    const [org, name, ...rest] = repo.split('/');
    if (!org || !name || rest.length) throw new Error(`'${repo}' is not a model id (org/name)`);
    return path.join(this.root, `models--${segment('organization', org)}--${segment('model name', name)}`);
  }

  async commit(repo, revision) {
    try {
      const commit = (await fs.readFile(path.join(this.repoDir(repo), 'refs', filePath(revision)), 'utf8')).trim();
      return commit || null;
    } catch {
      return null;
    }
  }

  async setCommit(repo, revision, commit) {
    const ref = path.join(this.repoDir(repo), 'refs', filePath(revision));
    await fs.mkdir(path.dirname(ref), { recursive: true });
    await fs.writeFile(ref, commit);
  }

  async get(repo, commit, file) {
    const dir = this.repoDir(repo);
    if (await exists(path.join(dir, '.no_exist', segment('commit', commit), filePath(file)))) return { absent: true };
    const snapshot = path.join(dir, 'snapshots', commit, filePath(file));
    let target;
    try {
      target = await fs.realpath(snapshot);
    } catch {
      return null;
    }
    const stat = await exists(target);
    if (!stat) return null;
    // The blob's name is its ETag; a file put there by hand keeps its own name, which is as good a key.
    const etag = path.basename(target);
    if (stat.size > SMALL) return { etag, size: stat.size };
    return { etag, size: stat.size, bytes: new Uint8Array(await fs.readFile(target)) };
  }

  async setAbsent(repo, commit, file) {
    const marker = path.join(this.repoDir(repo), '.no_exist', segment('commit', commit), filePath(file));
    await fs.mkdir(path.dirname(marker), { recursive: true });
    await fs.writeFile(marker, '');
  }

  async linkSnapshot(repo, commit, file, etag) {
    const dir = this.repoDir(repo);
    const link = path.join(dir, 'snapshots', segment('commit', commit), filePath(file));
    await fs.mkdir(path.dirname(link), { recursive: true });
    const blob = path.join(dir, 'blobs', segment('ETag', etag));
    await fs.rm(link, { force: true });
    await fs.symlink(path.relative(path.dirname(link), blob), link);
  }

  async link(repo, commit, file, etag, size) {
    const stat = await exists(path.join(this.repoDir(repo), 'blobs', segment('ETag', etag)));
    if (!stat || stat.size !== size) return false;
    await this.linkSnapshot(repo, commit, file, etag);
    return true;
  }

  async open(repo, commit, file, etag, size) {
    const blobs = path.join(this.repoDir(repo), 'blobs');
    const blob = path.join(blobs, segment('ETag', etag));
    const complete = await exists(blob);
    if (complete && complete.size === size) {
      return {
        held: [[0, size]],
        read: (start, end) => readRange(blob, start, end),
        write: () => {
          throw new Error(`${blob} is complete`);
        },
        flush: async () => {},
        finish: () => this.linkSnapshot(repo, commit, file, etag),
        discard: async () => {},
      };
    }
    await fs.mkdir(blobs, { recursive: true });
    const incomplete = `${blob}.incomplete`;
    // Resumed from its length: the engine writes a file's bytes in order. Files are opened per
    // operation, so a load that fails half way leaves no handle open.
    await fs.appendFile(incomplete, new Uint8Array(0));
    const have = Math.min((await fs.stat(incomplete)).size, size);
    let pending = [];
    let writing = Promise.resolve();
    const store = this;
    return {
      held: have > 0 ? [[0, have]] : [],
      read: (start, end) => readRange(incomplete, start, end),
      write(offset, bytes) {
        // `bytes` is a view of the engine's memory: copied now.
        pending.push({ offset, bytes: bytes.slice() });
      },
      async flush() {
        const runs = pending;
        pending = [];
        const previous = writing;
        // One write in flight while the next piece downloads; an earlier failure is thrown here.
        writing = previous.then(async () => {
          if (!runs.length) return;
          const handle = await fs.open(incomplete, 'r+');
          try {
            for (const run of runs) await handle.write(run.bytes, 0, run.bytes.length, run.offset);
          } finally {
            await handle.close();
          }
        });
        writing.catch(() => {});
        await previous;
      },
      async finish() {
        await this.flush();
        await writing;
        await fs.rename(incomplete, blob);
        await store.linkSnapshot(repo, commit, file, etag);
      },
      async discard() {
        pending = [];
        await writing.catch(() => {});
        await fs.rm(incomplete, { force: true });
      },
    };
  }
}

async function readRange(file, start, end) {
  const handle = await fs.open(file, 'r');
  try {
    const out = new Uint8Array(end - start);
    let at = 0;
    while (at < out.length) {
      const { bytesRead } = await handle.read(out, at, out.length - at, start + at);
      if (bytesRead === 0) throw new Error(`${file} ends before byte ${start + at}`);
      at += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}
