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
import { TOLERANCE, distDir, fixturesDir, maxAbsDiff, minCosine, minilmDir, modelsDir, npmDir, reference } from './helpers.mjs';
import { startHub } from './hub-server.mjs';
import { checkGroup, runGroup, taskGroups, tinyTasksDir, tinyTasksReference } from './tasks.mjs';

const { pipeline, env, Tensor, AutoModel } = await import(path.join(distDir, 'index.js'));

const triple = { 'linux-x64': 'linux-x64-gnu', 'linux-arm64': 'linux-arm64-gnu', 'darwin-arm64': 'darwin-arm64', 'darwin-x64': 'darwin-x64' }[
  `${process.platform}-${process.arch}`
];
const addonPath = path.join(npmDir, 'native', triple ?? 'none', `webformers.${triple}.node`);

const ref = reference();

const largestDiff = (a, b) => a.reduce((worst, x, i) => Math.max(worst, Math.abs(x - b[i])), a.length === b.length ? 0 : Infinity);

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

  test("device 'auto' (the default) in Node is the native CPU engine, as transformers.js's is onnxruntime-node; env.useNative = false keeps WASM", async () => {
    const texts = ref.inputs.slice(0, 4).map((i) => i.text);
    const want = { ...ref, inputs: ref.inputs.slice(0, 4) };
    const native = await pipeline('feature-extraction', minilmDir);
    assert.equal(native.device, 'cpu');
    assert.match(native.adapter, /^native /);
    const out = await native(texts, { pooling: 'mean', normalize: true });
    await native.dispose();
    assert.ok(maxAbsDiff(out.data, want) <= TOLERANCE);
    env.useNative = false;
    try {
      const wasm = await pipeline('feature-extraction', minilmDir);
      assert.equal(wasm.device, 'wasm');
      await wasm.dispose();
    } finally {
      env.useNative = true;
    }
  });

  test("a model class (AutoModel) and pipe.model run natively, the pipeline's model over the pipeline's weights", async () => {
    const extractor = await pipeline('feature-extraction', minilmDir, { device: 'cpu' });
    const model = extractor.model;
    assert.equal(model.device, 'cpu');
    assert.equal(model.class_name, 'AutoModel');
    const alone = await AutoModel.from_pretrained(minilmDir, { device: 'cpu' });
    assert.equal(alone.device, 'cpu');
    const ids = new Tensor('int64', BigInt64Array.from([101n, 7592n, 2088n, 102n]), [1, 4]);
    const mask = new Tensor('int64', BigInt64Array.from([1n, 1n, 1n, 1n]), [1, 4]);
    const a = await model({ input_ids: ids, attention_mask: mask });
    const b = await alone({ input_ids: ids, attention_mask: mask });
    assert.deepEqual(a.last_hidden_state.dims, [1, 4, 384]);
    assert.ok(largestDiff(a.last_hidden_state.data, b.last_hidden_state.data) <= 1e-6);
    await assert.rejects(model({ input_ids: { type: 'float32', dims: [1, 4], data: new Float32Array(3) } }), (e) => e.code === 'input' && /do not fill/.test(e.message));
    await assert.rejects(model({ input_ids: { type: 'string', dims: [1], data: new Uint8Array(1) } }), (e) => e.code === 'input' && /string tensor/.test(e.message));
    // A model disposed on its own is made again while the pipeline lives, over the same weights.
    await model.dispose();
    const again = await extractor.model({ input_ids: ids, attention_mask: mask });
    assert.equal(largestDiff(again.last_hidden_state.data, a.last_hidden_state.data), 0);
    await extractor.dispose();
    await assert.rejects(extractor.model({ input_ids: ids }), (e) => e.code === 'input' && /disposed/.test(e.message));
    await alone.dispose();
    await assert.rejects(alone({ input_ids: ids }), (e) => e.code === 'input' && /disposed/.test(e.message));
  });

  describe('text-generation from a GGUF file natively (SmolLM2-135M-Instruct Q4_1)', () => {
    const gguf = path.join(modelsDir, 'SmolLM2-135M-Instruct.Q4_1.gguf');
    const smol = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'smollm2-reference.json'), 'utf8'));
    const prompt = smol.prompts.find((p) => p.name === 'france');
    const reply = async (generator) => {
      const [out] = await generator(prompt.messages, { max_new_tokens: prompt.greedy.num_new_tokens + 4 });
      return out.generated_text.at(-1).content;
    };

    // (node.test.mjs runs its chat replies on both devices.)
    test('another task, or a missing file, is a clear error', async () => {
      await assert.rejects(pipeline('feature-extraction', gguf, { device: 'cpu' }), (e) => e.code === 'input' && /text-generation only/.test(e.message));
      await assert.rejects(pipeline('text-generation', path.join(modelsDir, 'no-such.gguf'), { device: 'cpu' }), (e) => e.code === 'file' && /no-such\.gguf was not found/.test(e.message));
    });

    test('org/name/file.gguf from the Hub stand-in, with its progress events', async () => {
      const repoDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-native-gguf-'));
      fs.symlinkSync(gguf, path.join(repoDir, 'model.Q4_1.gguf'));
      const hub = await startHub({ 'org/smol-gguf': repoDir });
      const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-native-gguf-cache-'));
      const saved = { remoteHost: env.remoteHost, cacheDir: env.cacheDir };
      Object.assign(env, { remoteHost: `${hub.endpoint}/`, cacheDir });
      try {
        const events = [];
        const generator = await pipeline('text-generation', 'org/smol-gguf/model.Q4_1.gguf', { device: 'cpu', progress_callback: (e) => events.push(e) });
        assert.ok(events.some((e) => e.status === 'done' && e.file === 'model.Q4_1.gguf'), JSON.stringify(events.slice(0, 5)));
        assert.equal(await reply(generator), prompt.greedy.text);
        await generator.dispose();
      } finally {
        Object.assign(env, saved);
        await hub.close();
        fs.rmSync(repoDir, { recursive: true, force: true });
        fs.rmSync(cacheDir, { recursive: true, force: true });
      }
    });
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
      const events = [];
      await embed({ progress_callback: (e) => events.push(e) });
      // transformers.js's events per file and over the load, in order, before the promise settles.
      const statuses = new Set(events.map((e) => e.status));
      for (const s of ['initiate', 'download', 'progress', 'progress_total', 'done', 'ready']) assert.ok(statuses.has(s), `${s} missing: ${[...statuses]}`);
      const weights = events.filter((e) => e.file === 'model.safetensors' && e.status === 'progress');
      assert.ok(weights.length > 0 && weights.at(-1).loaded === weights.at(-1).total, JSON.stringify(weights.at(-1)));
      const total = events.filter((e) => e.status === 'progress_total').at(-1);
      assert.equal(total.loaded, total.total);
      assert.equal(events.at(-1).status, 'ready');
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
