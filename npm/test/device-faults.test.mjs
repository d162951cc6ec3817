// Device faults through the package: weights that cannot fit in WebAssembly's 4 GiB memory are a
// clear Error (code 'out_of_memory') before any is read, and the engine instance goes on working
// (a trap would have killed it). The model is MiniLM's config and tokenizer with a
// model.safetensors whose header describes 4.6 GB of weights: a sparse file, so it takes no disk,
// served by the Hub stand-in (tests/hub/server.py). After the refusal, the real MiniLM from the same
// instance must give PyTorch's embeddings (tests/fixtures/minilm-reference.json) within 1e-4.
// Needs `npm run build` and scripts/fetch-models.sh first (scripts/test-npm.sh does both).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { TOLERANCE, distDir, maxAbsDiff, minilmDir, reference } from './helpers.mjs';
import { startHub } from './hub-server.mjs';

const REPO = 'sentence-transformers/all-MiniLM-L6-v2';
const HUGE = 'test/minilm-over-4gib';
// 3_000_000 rows of 384 f32: 4.608 GB, over the 4 GiB (4.295 GB) a wasm32 memory can reach.
const ROWS = 3_000_000;
const HUGE_BYTES = ROWS * 384 * 4;

let hub;
let hugeDir;
let nodeCache;

/** A safetensors file of one f32 [ROWS, 384] tensor: the header, then HUGE_BYTES of zeros (a hole). */
function writeSparseSafetensors(file) {
  const header = JSON.stringify({ 'embeddings.word_embeddings.weight': { dtype: 'F32', shape: [ROWS, 384], data_offsets: [0, HUGE_BYTES] } });
  const padded = header.padEnd(Math.ceil(header.length / 8) * 8, ' ');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(padded.length));
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from(padded)]));
  fs.truncateSync(file, 8 + padded.length + HUGE_BYTES);
}

before(() => {
  hugeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-huge-repo-'));
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(minilmDir, f), path.join(hugeDir, f));
  writeSparseSafetensors(path.join(hugeDir, 'model.safetensors'));
  nodeCache = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-node-cache-'));
});

after(async () => {
  await hub?.close();
  for (const dir of [hugeDir, nodeCache]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('in Node, weights over the 4 GiB wasm memory are an out_of_memory Error before any is read, and the instance works on', { timeout: 300_000 }, async () => {
  hub = await startHub({ [REPO]: minilmDir, [HUGE]: hugeDir });
  const { pipeline, env } = await import(path.join(distDir, 'index.js'));
  const saved = { ...env };
  try {
    env.remoteHost = `${hub.endpoint}/`;
    env.allowLocalModels = false;
    env.cacheDir = nodeCache;
    env.useFSCache = false;
    for (const device of ['wasm', 'auto']) {
      await assert.rejects(pipeline('feature-extraction', HUGE, { device }), (e) => {
        assert.equal(e.code, 'out_of_memory', e.message);
        assert.match(e.message, new RegExp(`^out of memory: loading .*model\\.safetensors needs ${HUGE_BYTES} bytes, and WebAssembly memory ends at 4 GiB and \\d+ bytes of it are in use`), e.message);
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
