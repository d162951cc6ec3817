// The built package (dist/) in Node, on WASM: the real all-MiniLM-L6-v2 against the PyTorch
// reference, the API's shapes, progress events, text generation on a tiny model, bad input, the
// TypeScript types, and the packed package installed into an empty folder.
// Needs `npm run build` and scripts/fetch-models.sh first (scripts/test-npm.sh does both).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer } from '../../scripts/static-server.mjs';
import {
  NODE_DEVICES,
  TOLERANCE,
  brokenModels,
  closedPort,
  deviceLabel,
  distDir,
  fixturesDir,
  installPacked,
  nativePackageDir,
  maxAbsDiff,
  minCosine,
  minilmDir,
  modelsDir,
  npmDir,
  reference,
} from './helpers.mjs';
import { checkGroup, runGroup, taskGroups, tinyTasksDir, tinyTasksReference } from './tasks.mjs';

const { pipeline, env, Tensor, TextStreamer, InterruptableStoppingCriteria, WebformersError, cos_sim } = await import(
  path.join(distDir, 'index.js')
);

const ref = reference();
const tinyLlama = path.join(fixturesDir, 'tiny-llama');
const tinyRef = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'tiny-decoders-reference.json'), 'utf8')).models['tiny-llama'];

/** Runs `promise`, expecting a rejection with an Error whose message matches `pattern`. */
async function rejects(promise, pattern, code) {
  const error = await promise.then(
    () => assert.fail(`expected a rejection matching ${pattern}`),
    (e) => e,
  );
  assert.ok(error instanceof Error, `not an Error: ${error}`);
  assert.match(error.message, pattern);
  if (code) assert.equal(error.code, code, error.message);
  return error;
}

describe('feature-extraction on WASM in Node', () => {
  let extractor;
  const events = [];
  before(async () => {
    extractor = await pipeline('feature-extraction', minilmDir, {
      device: 'wasm',
      progress_callback: (e) => events.push(e),
    });
  });
  after(() => extractor?.dispose());

  test('matches the PyTorch reference on 29 inputs', async () => {
    assert.equal(extractor.device, 'wasm');
    // The default env.numThreads: the cores, at most 4 (the threaded build, on worker_threads).
    assert.equal(extractor.threads, Math.min(4, os.availableParallelism()));
    const out = await extractor(
      ref.inputs.map((i) => i.text),
      { pooling: 'mean', normalize: true },
    );
    assert.ok(out instanceof Tensor);
    assert.equal(out.type, 'float32');
    assert.ok(out.data instanceof Float32Array);
    assert.deepEqual(out.dims, [ref.inputs.length, ref.hidden_size]);
    const diff = maxAbsDiff(out.data, ref);
    assert.ok(diff <= TOLERANCE, `max abs diff ${diff} > ${TOLERANCE}`);
  });

  test("dtype 'q8' (linear layers quantized at load, int8 activations) stays within cosine 0.997 of PyTorch", async () => {
    // As tests/minilm.rs natively: Q8_0 weights take the int8 path by default on the CPU (lowest
    // 0.9977, on the input "?"); the per-module object form names the model.
    for (const dtype of ['q8', { model: 'q8' }]) {
      const q8 = await pipeline('feature-extraction', minilmDir, { device: 'wasm', dtype });
      try {
        const out = await q8(ref.inputs.map((i) => i.text), { pooling: 'mean', normalize: true });
        const cos = minCosine(out.data, ref);
        assert.ok(cos >= 0.997, `${JSON.stringify(dtype)}: lowest cosine ${cos}`);
      } finally {
        await q8.dispose();
      }
    }
  });

  test('shapes: a single string, pooling none, tolist, unnormalized', async () => {
    const one = await extractor('Hello world', { pooling: 'mean', normalize: true });
    assert.deepEqual(one.dims, [1, 384]);
    const list = one.tolist();
    assert.equal(list.length, 1);
    assert.equal(list[0].length, 384);
    assert.ok(Math.abs(cos_sim(list[0], list[0]) - 1) < 1e-6);
    const tokens = await extractor(['Hello world', 'A longer sentence than that one'], {});
    assert.equal(tokens.dims.length, 3);
    assert.equal(tokens.dims[0], 2);
    assert.equal(tokens.dims[2], 384);
    const raw = await extractor(ref.inputs[0].text, { pooling: 'mean' });
    const want = ref.inputs[0].mean_unnormalized;
    if (want) {
      const worst = Math.max(...want.map((x, j) => Math.abs(x - raw.data[j])));
      assert.ok(worst <= TOLERANCE, `unnormalized mean: ${worst}`);
    }
  });

  test('progress events have transformers.js shape', () => {
    const byFile = new Map();
    for (const e of events) {
      assert.ok(['initiate', 'download', 'progress', 'done', 'ready'].includes(e.status), e.status);
      if (e.status === 'ready') continue;
      assert.equal(e.name, minilmDir);
      assert.equal(typeof e.file, 'string');
      if (!byFile.has(e.file)) byFile.set(e.file, []);
      byFile.get(e.file).push(e);
    }
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors']) {
      const list = byFile.get(f);
      assert.ok(list, `no events for ${f}`);
      assert.equal(list[0].status, 'initiate');
      assert.equal(list.at(-1).status, 'done');
      const progress = list.filter((e) => e.status === 'progress');
      assert.ok(progress.length > 0);
      for (const p of progress) {
        assert.equal(typeof p.loaded, 'number');
        assert.equal(typeof p.total, 'number');
        assert.ok(p.progress >= 0 && p.progress <= 100);
      }
      assert.equal(progress.at(-1).loaded, fs.statSync(path.join(minilmDir, f)).size);
    }
    const ready = events.at(-1);
    assert.equal(ready.status, 'ready');
    assert.equal(ready.task, 'feature-extraction');
  });

  test('calls run one after another, and dispose() frees the pipeline', async () => {
    const p = await pipeline('embeddings', minilmDir, { device: 'wasm' });
    const [a, b] = await Promise.all([p('first'), p(['second', 'third'], { pooling: 'cls' })]);
    assert.equal(a.dims[0], 1);
    assert.deepEqual(b.dims, [2, 384]);
    await p.dispose();
    await rejects(p('after'), /disposed/);
  });
});

describe('concurrent calls and pipelines (issue: reliability)', () => {
  const texts = ['I loved this film.', 'The service was slow and rude.', 'Paris is in France.', 'Nothing works.'];
  const tiny = (name) => path.join(fixturesDir, 'tiny-tasks', name);

  test('16 calls in flight on one pipeline give what each gives alone', async () => {
    const p = await pipeline('text-classification', tiny('bert-sequence-classification'), { device: 'wasm' });
    const alone = [];
    for (const t of texts) alone.push(await p(t, { top_k: 2 }));
    const order = Array.from({ length: 16 }, (_, i) => (i * 3) % texts.length);
    const together = await Promise.all(order.map((i) => p(texts[i], { top_k: 2 })));
    together.forEach((got, k) => assert.deepEqual(got, alone[order[k]], `call ${k}`));
    await p.dispose();
  });

  test('4 pipelines at once on one device give what each gives alone; a disposed one rejects', async () => {
    const specs = [
      ['text-classification', 'bert-sequence-classification', {}],
      ['token-classification', 'roberta-token-classification', {}],
      ['fill-mask', 'bert-masked-lm', null],
      ['text-generation', null, { max_new_tokens: 6 }],
    ];
    const load = ([task, name]) => pipeline(task, name ? tiny(name) : tinyLlama, { device: 'wasm' });
    // text-generation's results carry timings, which differ from run to run
    const untimed = (out) => (Array.isArray(out) ? out.map(({ stats, ...rest }) => rest) : out);
    const inputOf = ([task]) => (task === 'fill-mask' ? texts.map((t) => t.replace(/\w+\.$/, '[MASK].')) : texts);
    const pipes = await Promise.all(specs.map(load));
    const alone = [];
    for (const [i, p] of pipes.entries()) {
      const out = [];
      for (const t of inputOf(specs[i])) out.push(untimed(await p(t, specs[i][2] ?? undefined)));
      alone.push(out);
    }
    const together = await Promise.all(pipes.map((p, i) => Promise.all(inputOf(specs[i]).map(async (t) => untimed(await p(t, specs[i][2] ?? undefined))))));
    together.forEach((got, i) => assert.deepEqual(got, alone[i], specs[i][0]));
    await pipes[0].dispose();
    await rejects(pipes[0](texts[0]), /disposed/, 'input');
    assert.deepEqual(await pipes[1](texts[0]), alone[1][0], 'the others go on');
    await Promise.all(pipes.slice(1).map((p) => p.dispose()));
  });
});

for (const device of NODE_DEVICES) {
  describe(`text-generation on ${deviceLabel(device)} in Node (tiny random Llama)`, () => {
    let generator;
    before(async () => {
      generator = await pipeline('text-generation', tinyLlama, { device });
    });
    after(() => generator?.dispose());

    test('greedy continuation matches transformers, streamed piece by piece', async () => {
      const prompt = tinyRef.prompts[0];
      const pieces = [];
      const streamer = new TextStreamer(generator.tokenizer, { skip_prompt: true, callback_function: (t) => pieces.push(t) });
      const [out] = await generator(prompt.text, {
        max_new_tokens: prompt.greedy_ids.length,
        streamer,
        return_full_text: false,
      });
      assert.equal(out.generated_text, prompt.greedy_text);
      assert.equal(pieces.join(''), prompt.greedy_text);
      assert.equal(out.stats.new_tokens, prompt.greedy_ids.length);
      assert.equal(out.stats.stop_reason, 'max_tokens');
      const [full] = await generator(prompt.text, { max_new_tokens: 3 });
      assert.ok(full.generated_text.startsWith(prompt.text));
    });

    test('a messages array goes through the chat template', async () => {
      const row = tinyRef.chat_batch.rows[0];
      assert.equal(await generator.apply_chat_template(row.messages), row.rendered_text);
      const [out] = await generator(row.messages, { max_new_tokens: 4 });
      assert.equal(out.generated_text.length, row.messages.length + 1);
      assert.equal(out.generated_text.at(-1).role, 'assistant');
    });

    test('bad generation input rejects clearly', async () => {
      await rejects(generator(42), /string, a messages array/, 'input');
      await rejects(generator('x', { max_new_tokens: 0 }), /max_new_tokens/);
      await rejects(generator('x', { no_such_option: 1 }), /no_such_option/);
    });

    test('an AbortSignal or an InterruptableStoppingCriteria stops the generation mid-way', async () => {
      const prompt = tinyRef.prompts[0];
      // Aborted from the streamed text's callback: the generation stops after that token.
      const controller = new AbortController();
      let pieces = 0;
      const onPiece = () => {
        if (++pieces === 3) controller.abort();
      };
      const [a] = await generator(prompt.text, { max_new_tokens: 200, signal: controller.signal, callback_function: onPiece });
      assert.equal(a.stats.stop_reason, 'interrupted');
      const n = a.stats.new_tokens;
      assert.ok(n >= 3 && n < 200, `${n} tokens`);
      const m = Math.min(n, prompt.greedy_ids.length);
      assert.deepEqual(a.stats.token_ids.slice(0, m), prompt.greedy_ids.slice(0, m));
      // An already aborted signal: nothing is generated; the next call without it runs.
      const [b] = await generator(prompt.text, { max_new_tokens: 5, signal: AbortSignal.abort() });
      assert.equal(b.stats.new_tokens, 0);
      const [c] = await generator(prompt.text, { max_new_tokens: 5 });
      assert.equal(c.stats.stop_reason, 'max_tokens');
      // From a timer (a macrotask): it lands mid-generation only because the engine's loop yields
      // to the event loop (at most every 10 ms). When the generation outlasts the timer plus that
      // interval with room to spare, it must have been interrupted.
      const criteria = new InterruptableStoppingCriteria();
      const timer = setTimeout(() => criteria.interrupt(), 5);
      const t0 = performance.now();
      const [d] = await generator(prompt.text, { max_new_tokens: 240, stopping_criteria: criteria });
      const ms = performance.now() - t0;
      clearTimeout(timer);
      if (ms > 60) assert.equal(d.stats.stop_reason, 'interrupted', `${ms.toFixed(0)} ms, ${d.stats.new_tokens} tokens`);
      // It stays interrupted until reset, as in transformers.js.
      criteria.interrupt();
      const [e] = await generator(prompt.text, { max_new_tokens: 5, stopping_criteria: criteria });
      assert.equal(e.stats.new_tokens, 0);
      criteria.reset();
      const [f] = await generator(prompt.text, { max_new_tokens: 5, stopping_criteria: criteria });
      assert.equal(f.stats.stop_reason, 'max_tokens');
    });

    test("generation options give transformers' generate() tokens (generation/options-reference.json)", async () => {
      const cases = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'generation/options-reference.json'), 'utf8')).cases;
      const mine = cases.filter((c) => c.model === 'tiny-llama');
      assert.ok(mine.length >= 16);
      for (const c of mine) {
        const ids = [];
        const [out] = await generator(c.prompt, { ...c.options, token_callback_function: (t) => ids.push(...t.map(Number)) });
        assert.deepEqual(Array.from(out.stats.token_ids), c.token_ids, `${c.prompt} ${JSON.stringify(c.options)}`);
        assert.deepEqual(ids, c.token_ids, 'token_callback_function');
      }
      // Sampling several sequences: one result each.
      const three = await generator('The keeper', { do_sample: true, seed: 3, num_return_sequences: 3, max_new_tokens: 4 });
      assert.equal(three.length, 3);
      await rejects(generator('The keeper', { num_return_sequences: 2 }), /needs do_sample/);
    });

    test('stats are not enumerable: the result has transformers.js shape', async () => {
      const out = await generator('The keeper', { max_new_tokens: 2, return_full_text: false });
      assert.deepEqual(Object.keys(out[0]), ['generated_text']);
      assert.deepEqual(JSON.parse(JSON.stringify(out)), [{ generated_text: out[0].generated_text }]);
      const s = out[0].stats;
      assert.equal(s.new_tokens, 2);
      for (const key of ['prompt_tokens', 'prompt_tokens_reused', 'time_to_first_token', 'tokens_per_second', 'prefill_seconds', 'decode_seconds']) {
        assert.equal(typeof s[key], 'number', key);
      }
    });

    test('three chat turns reuse the kept cache and give the tokens of fresh runs', async () => {
      const fresh = await pipeline('text-generation', tinyLlama, { device });
      try {
        await generator.clear_cache();
        let messages = [{ role: 'user', content: 'Is the storm over?' }];
        let reused = 0;
        for (const next of ['When will it end?', 'Thank you.', null]) {
          const [out] = await generator(messages, { max_new_tokens: 6, no_repeat_ngram_size: 2 });
          const [want] = await fresh(messages, { max_new_tokens: 6, no_repeat_ngram_size: 2, reuse_cache: false });
          assert.deepEqual(out.stats.token_ids, want.stats.token_ids);
          assert.equal(want.stats.prompt_tokens_reused, 0);
          reused += out.stats.prompt_tokens_reused;
          if (next === null) assert.ok(out.stats.prompt_tokens_reused > 20, `${out.stats.prompt_tokens_reused} reused`);
          messages = [...out.generated_text, { role: 'user', content: next }];
        }
        assert.ok(reused > 0);
      } finally {
        await fresh.dispose();
      }
    });

    test('chat options: tools, documents, chat_template, chat_template_kwargs (chat/reference.json)', async () => {
      const cases = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'chat/reference.json'), 'utf8')).cases;
      const c = cases.find((x) => x.name === "tiny-llama override: documents");
      const request = { messages: c.messages, documents: c.documents, chat_template: c.source, chat_template_kwargs: c.extra };
      assert.equal(await generator.apply_chat_template(request), c.rendered);
      const t = cases.find((x) => x.name === "tiny-llama override: tools");
      assert.equal(await generator.apply_chat_template({ messages: t.messages, tools: t.tools, chat_template: t.source, chat_template_kwargs: t.extra }), t.rendered);
      const [out] = await generator(c.messages, { max_new_tokens: 2, documents: c.documents, chat_template: c.source, chat_template_kwargs: c.extra });
      assert.deepEqual(out.generated_text.slice(0, -1), c.messages);
      await rejects(generator('text', { tools: [] }), /messages prompt/);
      await rejects(generator(c.messages, { tools: 'x' }), /tools/);
    });

    test('stopping criteria other than InterruptableStoppingCriteria are refused by name', async () => {
      class MaxTime {
        _call() {
          return [false];
        }
      }
      await rejects(generator('x', { stopping_criteria: [new MaxTime()] }), /MaxTime/, 'unsupported');
      await rejects(generator('x', { stopping_criteria: function stopNow() {} }), /stopNow/, 'unsupported');
      await rejects(generator('x', { signal: 'abort' }), /AbortSignal/, 'input');
      await rejects(generator('x', { penalty_alpha: 0.6 }), /penalty_alpha/);
    });
  });
}

for (const device of NODE_DEVICES) {
  describe(`text-generation from a GGUF file on ${deviceLabel(device)} in Node (SmolLM2-135M-Instruct Q4_1)`, () => {
    const gguf = path.join(modelsDir, 'SmolLM2-135M-Instruct.Q4_1.gguf');
    const smol = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'smollm2-reference.json'), 'utf8'));
    let generator;
    before(async () => {
      generator = await pipeline('text-generation', gguf, { device });
    });
    after(() => generator?.dispose());

    for (const name of ['france', 'greeting']) {
      test(`greedy chat reply '${name}' matches transformers`, async () => {
        const prompt = smol.prompts.find((p) => p.name === name);
        assert.equal(await generator.apply_chat_template(prompt.messages), prompt.text);
        const pieces = [];
        const [out] = await generator(prompt.messages, {
          max_new_tokens: prompt.greedy.num_new_tokens + 4,
          callback_function: (t) => pieces.push(t),
        });
        const reply = out.generated_text.at(-1);
        assert.equal(reply.role, 'assistant');
        assert.equal(reply.content, prompt.greedy.text);
        assert.equal(pieces.join(''), prompt.greedy.text);
        assert.equal(out.stats.stop_reason, 'eos');
        assert.equal(out.stats.new_tokens, prompt.greedy.num_new_tokens);
      });
    }
  });
}

describe('every tiny task model on WASM in Node matches Python (tiny-tasks-reference.json)', () => {
  const tiny = tinyTasksReference();
  for (const group of taskGroups(tiny)) {
    test(`${group.task} on ${group.model} (${group.cases.length} cases)`, async () => {
      const outcome = await runGroup(pipeline, `${tinyTasksDir}/`, 'wasm', group);
      checkGroup(group, outcome, tiny.tolerance);
    });
  }

  test("transformers.js's call shapes, the model's facts, and bad calls", async () => {
    const model = (name) => path.join(tinyTasksDir, name);
    const classifier = await pipeline('zero-shot-classification', model('bert-sequence-classification'), { device: 'wasm' });
    const find = (task, m, pred) => {
      const index = tiny.cases.findIndex((c) => c.task === task && c.model === m && pred(c));
      return { ...tiny.cases[index], index };
    };
    const multi = find('zero-shot-classification', 'bert-sequence-classification', (c) => c.options.multi_label === true && typeof c.input === 'string');
    const { candidate_labels, ...rest } = multi.options;
    checkGroup({ task: 'zero-shot-classification', model: 'bert', cases: [multi] }, { outputs: [{ value: await classifier(multi.input, candidate_labels, rest) }] }, tiny.tolerance);
    assert.deepEqual(classifier.labels, classifier.info.labels);
    await rejects(classifier('no labels'), /candidate_labels/, 'input');
    await rejects(classifier('x', ['a'], { no_such_option: 1 }), /no_such_option/, 'input');
    await classifier.dispose();
    const sentiment = await pipeline('sentiment-analysis', model('distilbert-sequence-classification'), { device: 'wasm' });
    assert.equal(sentiment.task, 'text-classification');
    assert.ok(Array.isArray(sentiment.labels) && sentiment.labels.length > 1);
    // A key left undefined is absent (the default), not null (which asks for every label).
    assert.equal((await sentiment('The bridge has seven arches.', { top_k: undefined })).length, 1);
    await rejects(sentiment(42), /a string, \{text, text_pair\}/, 'input');
    await rejects(sentiment('x', 'not options'), /options must be an object/, 'input');
    await sentiment.dispose();
    const unmasker = await pipeline('fill-mask', model('bert-masked-lm'), { device: 'wasm' });
    assert.equal(unmasker.mask_token, '[MASK]');
    await rejects(unmasker('no mask here'), /no mask token/, 'input');
    await unmasker.dispose();
  });
});

describe('bad input rejects with a clear Error', () => {
  let server;
  let broken;
  before(async () => {
    broken = brokenModels();
    server = await startServer({ mounts: { '/': broken } });
  });
  after(async () => {
    await server?.close();
    fs.rmSync(broken, { recursive: true, force: true });
  });

  test('a folder that does not exist', async () => {
    await rejects(pipeline('feature-extraction', '/no/such/folder', { device: 'wasm' }), /\/no\/such\/folder does not exist/, 'file');
  });

  test('a folder that is not a model', async () => {
    const dir = path.join(broken, 'not-a-model');
    await rejects(pipeline('feature-extraction', dir, { device: 'wasm' }), /is not a model: .*config\.json was not found/, 'file');
  });

  test('a model missing a required file (local and over HTTP: 404)', async () => {
    await rejects(pipeline('feature-extraction', path.join(broken, 'no-weights'), { device: 'wasm' }), /model\.safetensors was not found/, 'file');
    await rejects(
      pipeline('feature-extraction', `${server.url}no-weights/`, { device: 'wasm' }),
      /model\.safetensors was not found at http:\/\/127\.0\.0\.1:\d+\/no-weights\/model\.safetensors/,
      'file',
    );
    await rejects(pipeline('feature-extraction', `${server.url}not-a-model`, { device: 'wasm' }), /is not a model/, 'file');
  });

  test('an unreachable host', async () => {
    const saved = { ...env };
    try {
      env.remoteHost = `http://127.0.0.1:${await closedPort()}/`;
      env.allowLocalModels = false;
      // The Hub client retries (0.5 + 1 + 2 + 4 s), then names the repository, file and host.
      await rejects(pipeline('feature-extraction', 'org/model', { device: 'wasm' }), /org\/model: config\.json: HEAD 127\.0\.0\.1:\d+: fetch failed \(ECONNREFUSED\), still after 5 tries/, 'network');
    } finally {
      Object.assign(env, saved);
    }
  });

  test('a server that stops sending times out (env.fetchTimeout)', async () => {
    const stall = await startServer({
      mounts: {},
      onRequest: (req, res) => {
        res.writeHead(200, { 'Content-Length': '1000' });
        res.write('{');
        return true; // never ends
      },
    });
    const saved = env.fetchTimeout;
    try {
      env.fetchTimeout = 500;
      await rejects(pipeline('feature-extraction', `${stall.url}m/`, { device: 'wasm' }), /timed out/, 'network');
    } finally {
      env.fetchTimeout = saved;
      await stall.close();
    }
  });

  test('an HTTP error other than 404', async () => {
    const failing = await startServer({ mounts: {}, onRequest: (req, res) => (res.writeHead(500).end(), true) });
    try {
      await rejects(pipeline('feature-extraction', `${failing.url}m/`, { device: 'wasm' }), /HTTP 500/, 'network');
    } finally {
      await failing.close();
    }
  });

  test('remote and local models both disallowed', async () => {
    const saved = { ...env };
    try {
      env.allowLocalModels = false;
      env.allowRemoteModels = false;
      await rejects(pipeline('feature-extraction', 'org/model'), /allowLocalModels and env\.allowRemoteModels are both off/);
    } finally {
      Object.assign(env, saved);
    }
  });

  test('unknown task, device, dtype, pooling; WebGPU in Node', async () => {
    await rejects(pipeline('summarize-everything', minilmDir), /unknown task `summarize-everything`/, 'unsupported');
    await rejects(pipeline('feature-extraction', minilmDir, { device: 'cuda' }), /unknown device 'cuda'/, 'input');
    await rejects(pipeline('feature-extraction', minilmDir, { device: 'wasm', dtype: 'q3' }), /unknown dtype `q3`/, 'input');
    await rejects(
      pipeline('feature-extraction', minilmDir, { device: 'wasm', dtype: { vision_tower: 'q8' } }),
      /unknown module `vision_tower`/,
      'input',
    );
    await rejects(pipeline('feature-extraction', minilmDir, { device: 'webgpu' }), /WebGPU needs a browser window/, 'no_adapter');
    // 'auto' in Node is the native engine where its addon is built (native-node.test.mjs), else WASM.
    const native = await pipeline('feature-extraction', minilmDir, { device: 'auto' });
    assert.equal(native.device, 'cpu');
    await native.dispose();
    env.useNative = false;
    const p = await pipeline('feature-extraction', minilmDir, { device: 'auto' }).finally(() => (env.useNative = true));
    assert.equal(p.device, 'wasm');
    assert.match(p.device_note, /WebGPU/);
    await rejects(p('x', { pooling: 'max' }), /unknown pooling/, 'input');
    await rejects(p([1, 2]), /string or an array of strings/, 'input');
    await p.dispose();
  });

  test('a corrupt config or weights file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-corrupt-'));
    try {
      for (const f of ['config.json', 'tokenizer.json']) fs.copyFileSync(path.join(minilmDir, f), path.join(dir, f));
      fs.writeFileSync(path.join(dir, 'model.safetensors'), 'not safetensors');
      await rejects(pipeline('feature-extraction', dir, { device: 'wasm' }), /model\.safetensors/);
      fs.writeFileSync(path.join(dir, 'config.json'), '{ not json');
      await rejects(pipeline('feature-extraction', dir, { device: 'wasm' }), /config\.json: invalid JSON/, 'file');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a .gguf file that is not a GGUF model', async () => {
    const file = path.join(broken, 'broken.gguf');
    fs.writeFileSync(file, 'not a gguf file');
    await rejects(pipeline('text-generation', file, { device: 'wasm' }), /broken\.gguf/);
    await rejects(pipeline('feature-extraction', file, { device: 'wasm' }), /cannot load a \.gguf/, 'input');
  });

  test('errors are WebformersErrors', async () => {
    const e = await pipeline('feature-extraction', '/no/such/folder').catch((e) => e);
    assert.ok(e instanceof WebformersError);
  });
});

test('env.numThreads: 1 runs the single-threaded build, 2 the threaded one; both match the reference', () => {
  // One engine per process: each setting in its own process.
  const some = ref.inputs.slice(0, 6);
  for (const threads of [1, 2]) {
    const script = `
      const { pipeline, env } = await import(${JSON.stringify(path.join(distDir, 'index.js'))});
      env.numThreads = ${threads};
      const extractor = await pipeline('feature-extraction', process.argv[1], { device: 'wasm' });
      const out = await extractor(JSON.parse(process.argv[2]), { pooling: 'mean', normalize: true });
      console.log(JSON.stringify({ threads: extractor.threads, adapter: extractor.adapter, data: Array.from(out.data) }));`;
    const out = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script, minilmDir, JSON.stringify(some.map((i) => i.text))], { encoding: 'utf8' }),
    );
    assert.equal(out.threads, threads);
    assert.match(out.adapter, new RegExp(`, ${threads} threads`));
    const diff = maxAbsDiff(out.data, { ...ref, inputs: some });
    assert.ok(diff <= TOLERANCE, `${threads} thread(s): max abs diff ${diff}`);
  }
});

test('the TypeScript types compile against a typical program', () => {
  const tsc = path.join(npmDir, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(npmDir, 'test', 'types')], { stdio: 'inherit' });
});

test('the packed package and its platform package install into an empty folder and a five-line script embeds natively; without the platform package, on WASM', async () => {
  const { app, cleanup } = installPacked({ native: true });
  try {
    // The README's Node example (and where it ran).
    fs.writeFileSync(
      path.join(app, 'embed.mjs'),
      `import { pipeline } from 'webformers';
const extractor = await pipeline('feature-extraction', process.argv[2]);
const texts = JSON.parse(process.argv[3]);
const output = await extractor(texts, { pooling: 'mean', normalize: true });
console.log(JSON.stringify({ device: extractor.device, dims: output.dims, data: Array.from(output.data) }));
`,
    );
    const texts = ref.inputs.slice(0, 4).map((i) => i.text);
    const embed = () => JSON.parse(execFileSync(process.execPath, ['embed.mjs', minilmDir, JSON.stringify(texts)], { cwd: app, encoding: 'utf8' }));
    for (const device of ['cpu', 'wasm']) {
      // The platform package gone, as on a platform without a build: the WASM build runs.
      if (device === 'wasm') fs.rmSync(path.join(app, 'node_modules', `webformers-${path.basename(nativePackageDir())}`), { recursive: true });
      const out = embed();
      assert.equal(out.device, device);
      assert.deepEqual(out.dims, [4, 384]);
      const diff = maxAbsDiff(out.data, { ...ref, inputs: ref.inputs.slice(0, 4) });
      assert.ok(diff <= TOLERANCE, `${device}: max abs diff ${diff}`);
    }
  } finally {
    cleanup();
  }
});
