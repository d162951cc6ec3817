// Device faults through the package: weights that cannot fit in WebAssembly's 4 GiB memory are a
// clear Error (code 'out_of_memory') before any is read, and the engine instance goes on working
// (a trap would have killed it). The models are MiniLM's config and tokenizer with a
// model.safetensors of 4.2947 GB (8 tensors of 536.8 MB: each addressable, but in all more than the
// memory has left), of one 4.6 GB tensor (past the 32-bit address space), or of one 1 GB tensor
// (over the 512 MiB the safetensors crate can size in wasm32): sparse files, so they take no
// disk, served by the Hub stand-in (tests/hub/server.py). After the refusals, the real MiniLM in the same instance must
// give PyTorch's embeddings (tests/fixtures/minilm-reference.json) within 1e-4.
// Needs `npm run build` and scripts/fetch-models.sh first (scripts/test-npm.sh does both).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TOLERANCE, distDir, maxAbsDiff, minilmDir, reference } from './helpers.mjs';
import { startHub } from './hub-server.mjs';

const REPO = 'sentence-transformers/all-MiniLM-L6-v2';
// Rows of 384 f32 (1536 bytes). 8 tensors of 349_500 rows (536_832_000 bytes, under 512 MiB) make
// 4_294_656_000 bytes: under 2^32, so a wasm32 usize holds every offset, and more than 4 GiB less
// what the instance already uses. One of 3_000_000 rows ends at 4_608_000_000, past 2^32; one of
// 700_000 rows is 1_075_200_000 bytes, over 512 MiB.
const HUGE = { repo: 'test/minilm-4gib', rows: 349_500, tensors: 8 };
const BEYOND = { repo: 'test/minilm-past-4gib', rows: 3_000_000, tensors: 1 };
const LARGE = { repo: 'test/minilm-1gb-tensor', rows: 700_000, tensors: 1 };

let hub;
const dirs = [];

/** A repo of MiniLM's config and tokenizer and a safetensors file of `tensors` f32 [rows, 384] tensors: its header, then zeros (a hole). */
function sparseRepo({ rows, tensors }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-huge-repo-'));
  dirs.push(dir);
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(minilmDir, f), path.join(dir, f));
  const each = rows * 384 * 4;
  const bytes = each * tensors;
  const infos = {};
  for (let i = 0; i < tensors; i++) infos[`filler.${i}`] = { dtype: 'F32', shape: [rows, 384], data_offsets: [i * each, (i + 1) * each] };
  const header = JSON.stringify(infos);
  const padded = header.padEnd(Math.ceil(header.length / 8) * 8, ' ');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(padded.length));
  const file = path.join(dir, 'model.safetensors');
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(padded)]));
  fs.truncateSync(file, 8 + padded.length + bytes);
  return dir;
}

let nodeCache;

before(() => {
  nodeCache = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-node-cache-'));
  dirs.push(nodeCache);
});

after(async () => {
  await hub?.close();
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

test('in Node, weights over the 4 GiB wasm memory are an out_of_memory Error before any is read, and the instance works on', { timeout: 300_000 }, async () => {
  hub = await startHub({ [REPO]: minilmDir, [HUGE.repo]: sparseRepo(HUGE), [BEYOND.repo]: sparseRepo(BEYOND), [LARGE.repo]: sparseRepo(LARGE) });
  const { pipeline, env } = await import(path.join(distDir, 'index.js'));
  const saved = { ...env };
  try {
    env.remoteHost = `${hub.endpoint}/`;
    env.allowLocalModels = false;
    env.cacheDir = nodeCache;
    env.useFSCache = false;
    // 'auto' in Node is the native engine where its addon is built; here it must mean WASM.
    env.useNative = false;
    for (const device of ['wasm', 'auto']) {
      await assert.rejects(pipeline('feature-extraction', HUGE.repo, { device }), (e) => {
        assert.equal(e.code, 'out_of_memory', e.message);
        const pattern = `^out of memory: loading .*model\\.safetensors needs ${HUGE.rows * 1536 * HUGE.tensors} bytes, and WebAssembly memory ends at 4 GiB and \\d+ bytes of it are in use, so \\d+ are left$`;
        assert.match(e.message, new RegExp(pattern), e.message);
        return true;
      });
    }
    const bytes = (m) => m.rows * 1536;
    const cases = [
      [BEYOND, `it ends at byte ${bytes(BEYOND)} of the weights, past what a 32-bit build (WebAssembly: 4 GiB) can address`],
      [LARGE, 'a 32-bit build reads at most 536870911 bytes per tensor (the safetensors crate sizes tensors in bits)'],
    ];
    for (const [model, why] of cases) {
      await assert.rejects(pipeline('feature-extraction', model.repo, { device: 'wasm' }), (e) => {
        assert.equal(e.code, 'out_of_memory', e.message);
        assert.equal(e.message, `out of memory: weight \`filler.0\` needs ${bytes(model)} bytes, and ${why}`);
        return true;
      });
    }
    // Only the header was read: no request reached past it.
    const stats = await hub.stats();
    const ranges = stats.requests.filter((r) => r.file === 'model.safetensors' && r.method === 'GET').map((r) => r.range);
    assert.ok(ranges.length > 0 && ranges.every((r) => /^bytes=0-\d+$/.test(r) && Number(r.split('-')[1]) < 1 << 20), JSON.stringify(ranges));

    const ref = reference();
    const few = { ...ref, inputs: ref.inputs.slice(0, 3) };
    const pipe = await pipeline('feature-extraction', REPO, { device: 'wasm' });
    const out = await pipe(few.inputs.map((i) => i.text), { pooling: 'mean', normalize: true });
    assert.ok(maxAbsDiff(out.data, few) <= TOLERANCE);
    await pipe.dispose();
  } finally {
    Object.assign(env, saved);
  }
});
