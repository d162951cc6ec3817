// The native engine in Node (bindings/node, the Node-API addon; scripts/build-node-addon.sh lays
// it out in npm/native/): `device: 'cpu'` in Node runs it. The real all-MiniLM-L6-v2 against the
// PyTorch reference at fp32 and q8, every tiny task model against Python's pipeline() answers
// (the cases node.test.mjs runs on WASM), the native result beside the WASM build's, a Hub model
// fetched natively into the huggingface_hub cache from the Hub stand-in, streamed text, and
// clear errors. Needs the addon built: scripts/test-npm.sh builds it first.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { TOLERANCE, distDir, fixturesDir, maxAbsDiff, minCosine, minilmDir, npmDir, reference } from './helpers.mjs';
import { startHub } from './hub-server.mjs';
import { checkGroup, runGroup, taskGroups, tinyTasksDir, tinyTasksReference } from './tasks.mjs';

const { pipeline, env, Tensor } = await import(path.join(distDir, 'index.js'));

const triple = { 'linux-x64': 'linux-x64-gnu', 'linux-arm64': 'linux-arm64-gnu', 'darwin-arm64': 'darwin-arm64', 'darwin-x64': 'darwin-x64' }[
  `${process.platform}-${process.arch}`
];
const addonPath = path.join(npmDir, 'native', triple ?? 'none', `webformers.${triple}.node`);

const ref = reference();

describe('the native engine in Node', () => {
  before(() => {
    assert.ok(fs.existsSync(addonPath), `${addonPath} is missing: run scripts/build-node-addon.sh (scripts/test-npm.sh does)`);
  });

  test("device 'cpu' runs all-MiniLM-L6-v2 natively, as PyTorch does, and as the WASM build does", async () => {
    const native = await pipeline('feature-extraction', minilmDir, { device: 'cpu' });
    assert.equal(native.device, 'cpu');
    assert.match(native.adapter, /^native cpu \(/);
    const texts = ref.inputs.map((i) => i.text);
    const out = await native(texts, { pooling: 'mean', normalize: true });
    assert.ok(out instanceof Tensor);
    assert.ok(out.data instanceof Float32Array);
    assert.deepEqual(out.dims, [ref.inputs.length, ref.hidden_size]);
    const diff = maxAbsDiff(out.data, ref);
    assert.ok(diff <= TOLERANCE, `max abs diff ${diff} > ${TOLERANCE}`);
    const wasm = await pipeline('feature-extraction', minilmDir, { device: 'wasm' });
    assert.equal(wasm.device, 'wasm');
    const viaWasm = await wasm(texts, { pooling: 'mean', normalize: true });
    let apart = 0;
    for (let i = 0; i < out.data.length; i++) apart = Math.max(apart, Math.abs(out.data[i] - viaWasm.data[i]));
    assert.ok(apart <= TOLERANCE, `native and WASM differ by ${apart}`);
    await native.dispose();
    await wasm.dispose();
    await assert.rejects(native('after dispose'), /disposed/);
  });

  test("device 'gpu' runs it on wgpu's native Vulkan / Metal / DX12 (lavapipe here), as PyTorch does", async (t) => {
    let gpu;
    try {
      gpu = await pipeline('feature-extraction', minilmDir, { device: 'gpu' });
    } catch (e) {
      // Without an adapter the test skips, saying why, except where the suite requires the GPU
      // (scripts/test.sh, and so CI, sets WEBFORMERS_REQUIRE_GPU=1 with lavapipe installed).
      if (e.code !== 'no_adapter' || process.env.WEBFORMERS_REQUIRE_GPU === '1') throw e;
      t.skip(`no GPU adapter: ${e.message}`);
      return;
    }
    assert.equal(gpu.device, 'gpu');
    const out = await gpu(
      ref.inputs.map((i) => i.text),
      { pooling: 'mean', normalize: true },
    );
    const diff = maxAbsDiff(out.data, ref);
    assert.ok(diff <= TOLERANCE, `max abs diff ${diff} > ${TOLERANCE}`);
    await gpu.dispose();
  });

  test("dtype 'q8' natively stays within cosine 0.997 of PyTorch (int8 activations)", async () => {
    const q8 = await pipeline('feature-extraction', minilmDir, { device: 'cpu', dtype: 'q8' });
    const out = await q8(
      ref.inputs.map((i) => i.text),
      { pooling: 'mean', normalize: true },
    );
    const cosine = minCosine(out.data, ref);
    assert.ok(cosine >= 0.997, `lowest cosine ${cosine}`);
    await q8.dispose();
  });

  const tiny = tinyTasksReference();
  for (const group of taskGroups(tiny)) {
    test(`${group.task} on ${group.model} (${group.cases.length} cases)`, async () => {
      const outcome = await runGroup(pipeline, `${tinyTasksDir}/`, 'cpu', group);
      assert.equal(outcome.device, 'cpu', outcome.error);
      checkGroup(group, outcome, tiny.tolerance);
    });
  }

  test('text generation streams its text natively', async () => {
    const generator = await pipeline('text-generation', path.join(fixturesDir, 'tiny-llama'), { device: 'cpu' });
    const pieces = [];
    const [out] = await generator('Hello', { max_new_tokens: 6, do_sample: false, callback_function: (text) => pieces.push(text) });
    assert.equal(generator.device, 'cpu');
    assert.equal(typeof out.generated_text, 'string');
    assert.ok(pieces.length > 0, 'no streamed text');
    assert.ok(out.generated_text.endsWith(pieces.join('')), `${JSON.stringify(out.generated_text)} does not end with the streamed ${JSON.stringify(pieces.join(''))}`);
    // A callback that throws rejects the call with its error (the process lives on), and the
    // pipeline works on.
    const boom = new Error('the callback threw');
    await assert.rejects(
      generator('Hello', {
        max_new_tokens: 3,
        callback_function: () => {
          throw boom;
        },
      }),
      (e) => e === boom,
    );
    const [again] = await generator('Hello', { max_new_tokens: 6, do_sample: false });
    assert.equal(again.generated_text, out.generated_text);
    await generator.dispose();
  });

  test('bad input is a clear error with a code, and the pipeline works on', async () => {
    await assert.rejects(pipeline('feature-extraction', path.join(os.tmpdir(), 'no-such-model-folder'), { device: 'cpu' }), (e) => {
      assert.equal(e.code, 'file', e.message);
      assert.match(e.message, /no-such-model-folder/);
      return true;
    });
    await assert.rejects(pipeline('no-such-task', minilmDir, { device: 'cpu' }), (e) => e.code === 'unsupported' && /unknown task/.test(e.message));
    const extractor = await pipeline('feature-extraction', minilmDir, { device: 'cpu' });
    await assert.rejects(extractor(42), (e) => e.code === 'input' && /string/.test(e.message));
    const out = await extractor('still works', { pooling: 'mean' });
    assert.deepEqual(out.dims, [1, ref.hidden_size]);
    await extractor.dispose();
  });

  describe('a Hub model, fetched natively into the huggingface_hub cache', () => {
    let hub;
    let cacheDir;
    const saved = { remoteHost: env.remoteHost, cacheDir: env.cacheDir };
    before(async () => {
      hub = await startHub({ 'sentence-transformers/all-MiniLM-L6-v2': minilmDir });
      cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-native-hub-'));
      env.remoteHost = `${hub.endpoint}/`;
      env.cacheDir = cacheDir;
    });
    after(async () => {
      Object.assign(env, saved);
      await hub?.close();
      fs.rmSync(cacheDir, { recursive: true, force: true });
    });

    test('cold, then warm from the cache without a request, then offline', async () => {
      const embed = async (options = {}) => {
        const pipe = await pipeline('feature-extraction', 'sentence-transformers/all-MiniLM-L6-v2', { device: 'cpu', ...options });
        assert.equal(pipe.device, 'cpu');
        const out = await pipe(
          ref.inputs.map((i) => i.text),
          { pooling: 'mean', normalize: true },
        );
        await pipe.dispose();
        const diff = maxAbsDiff(out.data, ref);
        assert.ok(diff <= TOLERANCE, `max abs diff ${diff} > ${TOLERANCE}`);
      };
      await hub.reset();
      await embed();
      const { requests: cold } = await hub.stats();
      assert.ok(cold.some((r) => r.file === 'model.safetensors' && r.method === 'GET'), JSON.stringify(cold));
      const snapshots = path.join(cacheDir, 'models--sentence-transformers--all-MiniLM-L6-v2', 'snapshots');
      const [commit] = fs.readdirSync(snapshots);
      assert.ok(fs.existsSync(path.join(snapshots, commit, 'model.safetensors')), 'the weights are not in the cache');
      await hub.reset();
      await embed();
      const { requests: warm } = await hub.stats();
      assert.ok(!warm.some((r) => r.file === 'model.safetensors' && r.method === 'GET'), `the warm load fetched the weights: ${JSON.stringify(warm)}`);
      await hub.reset();
      await embed({ local_files_only: true });
      assert.deepEqual((await hub.stats()).requests, [], 'an offline load asked the Hub');
    });
  });
});
