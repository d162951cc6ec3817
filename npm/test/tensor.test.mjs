// The package's Tensor and tensor functions against transformers.js 4.3.1's, run side by side on
// the same inputs in this test: indexing, iteration, item, tolist, slice, permute / transpose,
// view, squeeze / unsqueeze, flatten, sum / mean / norm / normalize / min / max, arithmetic with a
// number, to (float32, int64 as BigInt64Array, int32, uint8, bool), cat, stack, mean_pooling,
// quantize_embeddings and cos_sim. Same dims and type, integers and layouts identical, float
// results within 1e-6 relative (transformers.js accumulates some reductions in float32, the
// package in doubles). Also: LogLevel, env.backends.onnx.wasm mapped onto env, device aliases.
// transformers.js comes from bench/transformersjs (scripts/test-npm.sh installs it there, with
// no install scripts); the package from npm/dist (`npm run build`).

import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const ours = await import(pathToFileURL(path.join(here, '..', 'dist', 'index.js')).href);
const theirs = await import(
  pathToFileURL(path.join(here, '..', '..', 'bench', 'transformersjs', 'node_modules', '@huggingface', 'transformers', 'dist', 'transformers.node.mjs')).href
);

/** Deterministic values in [-1, 1) (a linear congruential generator: no test depends on its quality). */
function values(n, seed = 1) {
  const out = new Float32Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out[i] = x / 1073741824 - 1;
  }
  return out;
}

/** The same tensor on both sides. */
function both(type, data, dims) {
  return [new ours.Tensor(type, data.slice(), dims.slice()), new theirs.Tensor(type, data.slice(), dims.slice())];
}

/** Our result against theirs: dims, type, and the data (floats within 1e-6 relative). */
function same(got, want, label) {
  if (typeof want !== 'object' || want === null) {
    if (typeof want === 'number') assert.ok(Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want)), `${label}: ${got} vs ${want}`);
    else assert.equal(got, want, label);
    return;
  }
  assert.deepEqual(got.dims, want.dims, `${label}: dims`);
  assert.equal(got.type, want.type, `${label}: type`);
  assert.equal(got.data.constructor.name, want.data.constructor.name, `${label}: data array`);
  assert.equal(got.data.length, want.data.length, `${label}: size`);
  for (let i = 0; i < want.data.length; i++) {
    const [g, w] = [got.data[i], want.data[i]];
    if (typeof w === 'bigint' || Number.isInteger(w)) assert.equal(g, w, `${label}: element ${i}`);
    else assert.ok(Math.abs(g - w) <= 1e-6 * Math.max(1, Math.abs(w)), `${label}: element ${i}: ${g} vs ${w}`);
  }
}

describe('Tensor as transformers.js 4.3.1 has it', () => {
  const data = values(24);
  const [a, b] = both('float32', data, [2, 3, 4]);

  test('dims, type, data, size, indexing, iteration, item, tolist', () => {
    assert.ok(a instanceof ours.Tensor);
    same(a, b, 'the tensor');
    assert.equal(a.size, b.size);
    for (const i of [0, 1, -1]) same(a[i], b[i], `[${i}]`);
    same(a[1][2], b[1][2], '[1][2]');
    same(a[0][1][3], b[0][1][3], '[0][1][3] (a scalar tensor)');
    assert.equal(a[0][1][3].item(), b[0][1][3].item());
    const [ra, rb] = [[...a], [...b]];
    assert.equal(ra.length, rb.length);
    ra.forEach((r, i) => same(r, rb[i], `row ${i} of the iteration`));
    assert.deepEqual([...a[0][0]], [...b[0][0]], 'a 1-D tensor iterates its elements');
    assert.deepEqual(a.tolist(), b.tolist());
    assert.throws(() => a.item(), /24 elements/);
    assert.throws(() => a[2], /out of bounds/);
  });

  test('slice, permute, transpose, view, squeeze, unsqueeze, flatten', () => {
    const cases = [
      ['slice(null, [1, 3], 2)', (t) => t.slice(null, [1, 3], 2)],
      ['slice(1)', (t) => t.slice(1)],
      ['slice([0, 1], null, [-2, null])', (t) => t.slice([0, 1], null, [-2, null])],
      ['slice([0, 9], [-9, 2])', (t) => t.slice([0, 9], [-9, 2])],
      ['permute(2, 0, 1)', (t) => t.permute(2, 0, 1)],
      ['transpose(1, 0, 2)', (t) => t.transpose(1, 0, 2)],
      ['view(6, 4)', (t) => t.view(6, 4)],
      ['view(-1, 2)', (t) => t.view(-1, 2)],
      ['unsqueeze(0)', (t) => t.unsqueeze(0)],
      ['unsqueeze(-1)', (t) => t.unsqueeze(-1)],
      ['unsqueeze(1).squeeze()', (t) => t.unsqueeze(1).squeeze()],
      ['unsqueeze(0).unsqueeze(2).squeeze([0])', (t) => t.unsqueeze(0).unsqueeze(2).squeeze([0])],
      ['unsqueeze(0).squeeze(0)', (t) => t.unsqueeze(0).squeeze(0)],
      ['flatten()', (t) => t.flatten()],
      ['flatten(1)', (t) => t.flatten(1)],
      ['flatten(0, 1)', (t) => t.flatten(0, 1)],
    ];
    for (const [label, op] of cases) same(op(a), op(b), label);
    assert.throws(() => a.view(5, -1), /does not hold/);
    assert.throws(() => a.permute(0, 0, 1), /not an order/);
  });

  test('sum, mean, norm, normalize, min, max, arithmetic', () => {
    const cases = [
      ['sum()', (t) => t.sum()],
      ['sum(1)', (t) => t.sum(1)],
      ['sum(-1, true)', (t) => t.sum(-1, true)],
      ['mean()', (t) => t.mean()],
      ['mean(0)', (t) => t.mean(0)],
      ['mean(2, true)', (t) => t.mean(2, true)],
      ['norm()', (t) => t.norm()],
      ['norm(2, 1)', (t) => t.norm(2, 1)],
      ['normalize()', (t) => t.normalize()],
      ['normalize(2, -1)', (t) => t.normalize(2, -1)],
      ['min()', (t) => t.min()],
      ['max(1)', (t) => t.max(1)],
      ['min(2, true)', (t) => t.min(2, true)],
      ['mul(2.5)', (t) => t.mul(2.5)],
      ['add(1)', (t) => t.add(1)],
      ['div(4)', (t) => t.div(4)],
      ['sub(0.5)', (t) => t.sub(0.5)],
      ['clone()', (t) => t.clone()],
    ];
    for (const [label, op] of cases) same(op(a), op(b), label);
    assert.equal(a.mean().item(), a.mean().item());
    same(a.sum().item(), b.sum().item(), 'sum().item()');
  });

  test('to: float32, int64 (BigInt64Array), int32, uint8, bool, and back', () => {
    const [s, t] = both('float32', new Float32Array([-2.5, -0.5, 0, 0.75, 3.25, 7]), [2, 3]);
    for (const type of ['float32', 'int64', 'int32', 'uint8', 'bool', 'float64']) same(s.to(type), t.to(type), `to('${type}')`);
    same(s.to('int64').to('float32'), t.to('int64').to('float32'), "to('int64').to('float32')");
    assert.equal(s.to('float32'), s, 'to its own type is the tensor itself');
    const [i, j] = both('int64', new BigInt64Array([1n, -2n, 3n, 40n]), [2, 2]);
    same(i, j, 'an int64 tensor');
    same(i.sum(1), j.sum(1), 'int64 sum(1)');
    same(i[1], j[1], 'int64 [1]');
    assert.deepEqual(i.tolist(), j.tolist());
    assert.throws(() => new ours.Tensor('float32', new Float32Array(5), [2, 3]), /do not fill/);
    assert.throws(() => new ours.Tensor('complex', new Float32Array(1), [1]), /unknown type/);
  });

  test('cat, stack, mean_pooling, quantize_embeddings, cos_sim', () => {
    const [c, d] = both('float32', values(24, 7), [2, 3, 4]);
    for (const dim of [0, 1, 2, -1]) same(ours.cat([a, c], dim), theirs.cat([b, d], dim), `cat(${dim})`);
    for (const dim of [0, 1, 3]) same(ours.stack([a, c], dim), theirs.stack([b, d], dim), `stack(${dim})`);
    const [mask, theirMask] = both('int64', new BigInt64Array([1n, 1n, 0n, 1n, 0n, 0n]), [2, 3]);
    same(ours.mean_pooling(a, mask), theirs.mean_pooling(b, theirMask), 'mean_pooling');
    const [e, f] = both('float32', values(32, 3), [2, 16]);
    for (const precision of ['binary', 'ubinary']) {
      same(ours.quantize_embeddings(e, precision), theirs.quantize_embeddings(f, precision), `quantize_embeddings ${precision}`);
    }
    assert.throws(() => ours.quantize_embeddings(a, 'binary'), /\[n, width\]/);
    same(ours.cos_sim(data.subarray(0, 12), data.subarray(12)), theirs.cos_sim(data.subarray(0, 12), data.subarray(12)), 'cos_sim');
    assert.throws(() => ours.cat([a, c.view(4, 3, 2)], 0), /does not match/);
  });
});

describe('env and LogLevel as transformers.js code sets them', () => {
  test('LogLevel has its values; numeric levels filter the log', () => {
    assert.deepEqual({ ...ours.LogLevel }, { ...theirs.LogLevel });
    const before = ours.env.logLevel;
    const seen = [];
    const warn = console.warn;
    console.warn = (...args) => seen.push(args.join(' '));
    try {
      ours.env.logLevel = ours.LogLevel.ERROR;
      ours.env.numThreads = 'many'; // warned about when the engine loads, not here: check the logger
    } finally {
      console.warn = warn;
      ours.env.numThreads = null;
      ours.env.logLevel = before;
    }
    assert.deepEqual(seen, []);
  });

  test('env.backends.onnx.wasm.numThreads and wasmPaths are env.numThreads and env.wasmPaths; proxy is kept', () => {
    const wasm = ours.env.backends.onnx.wasm;
    wasm.numThreads = 1;
    assert.equal(ours.env.numThreads, 1);
    ours.env.numThreads = 2;
    assert.equal(wasm.numThreads, 2);
    wasm.wasmPaths = '/assets/';
    assert.equal(ours.env.wasmPaths, '/assets/');
    wasm.proxy = false;
    ours.env.numThreads = null;
    ours.env.wasmPaths = null;
  });

  test("device 'cpu' is the native engine in Node ('wasm' with env.useNative false); other names are a clear error", async () => {
    const model = path.join(here, '..', '..', 'tests', 'fixtures', 'tiny-tasks');
    await assert.rejects(ours.pipeline('feature-extraction', model, { device: 'tpu' }), /unknown device 'tpu': use 'webgpu' \(or 'gpu'\), 'wasm' \(or 'cpu'\)/);
    const tinyBert = path.join(here, '..', '..', 'tests', 'fixtures', 'tiny-bert-pooler');
    const native = await ours.pipeline('feature-extraction', tinyBert, { device: 'cpu' });
    assert.equal(native.device, 'cpu');
    await native.dispose();
    ours.env.useNative = false;
    try {
      const pipe = await ours.pipeline('feature-extraction', tinyBert, { device: 'cpu' });
      assert.equal(pipe.device, 'wasm');
      await pipe.dispose();
    } finally {
      ours.env.useNative = true;
    }
  });
});
