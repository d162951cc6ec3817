// AutoModel, the AutoModelFor... classes and AutoProcessor (src/model.js) in Node on WASM, with
// real values against the references the pipelines are checked against: all-MiniLM-L6-v2's
// last_hidden_state mean-pooled against PyTorch (minilm-reference.json), the tiny classifiers'
// softmaxed logits against Python's pipeline() answers (tiny-tasks-reference.json) and this
// package's own pipelines, the tiny Llama's logits and greedy ids against transformers
// (tiny-decoders-reference.json, a left-padded batch too), image processors against
// transformers (image-reference/reference.json); the encoder-decoders (tiny Marian, BART, T5,
// Whisper) against transformers' forward and generate (seq2seq/auto-model-reference.json);
// bad input; a pipeline's `pipe.model` (the
// loaded model over the pipeline's weights) against the same references; and in Chromium on
// WebGPU, a class and a pipeline's model against WASM, and a worker pipeline's model (the tiny
// BART's too, against transformers); CLIP's and
// SigLIP's classes and zero-shot-image-classification's model against transformers' forward
// (vision/dual-encoder-forward.json); in Chromium, that reading `pipe.model` creates no
// WebGPU buffer and leaves the engine's device memory as it was, and AutoProcessor on a page whose
// pipeline runs in a worker.
// Needs `npm run build` and scripts/fetch-models.sh minilm (scripts/test-npm.sh does both).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NODE_DEVICES, TOLERANCE, distDir, evaluateWithin, fakeBindingLimit, fixturesDir, launchBrowser, maxAbsDiff, minilmDir, openPage, problemsBut404, reference, rejectsWith, testServer } from './helpers.mjs';
import { tinyTasksDir, tinyTasksReference } from './tasks.mjs';

const webformers = await import(path.join(distDir, 'index.js'));
const {
  AutoModel,
  AutoModelForSequenceClassification,
  AutoModelForTokenClassification,
  AutoModelForQuestionAnswering,
  AutoModelForMaskedLM,
  AutoModelForCausalLM,
  AutoModelForImageClassification,
  AutoModelForSeq2SeqLM,
  AutoModelForSpeechSeq2Seq,
  CLIPModel,
  CLIPTextModelWithProjection,
  CLIPVisionModelWithProjection,
  SiglipModel,
  SiglipTextModel,
  SiglipVisionModel,
  AutoProcessor,
  AutoTokenizer,
  PreTrainedModel,
  Tensor,
  env,
  mean_pooling,
  pipeline,
} = webformers;

// One thread: these models are tiny, and the single-threaded build starts at once.
env.numThreads = 1;

const tasksRef = tinyTasksReference();
const tinyLlama = path.join(fixturesDir, 'tiny-llama');
const llamaRef = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'tiny-decoders-reference.json'), 'utf8')).models['tiny-llama'];

function softmax(row) {
  const max = Math.max(...row);
  const exps = Array.from(row, (x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

const seq2seqRef = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'seq2seq', 'auto-model-reference.json'), 'utf8'));
// The texts of tests/reference/make_seq2seq_auto_model_reference.py.
const seq2seqTexts = ['The quick brown fox jumps over the lazy dog.', 'Hello world'];

/** Rows of ids as an int64 Tensor [rows, width]. */
const intRows = (rows) => new Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), [rows.length, rows[0].length]);

/** A reference text model's right-padded batch as the model's inputs. */
const textInputs = (m) => ({ input_ids: intRows(m.input_ids), attention_mask: intRows(m.attention_mask) });

/** The reference's log-mel stand-in (its Python formula, in float64 then float32). */
function whisperFeatures([batch, mels, frames]) {
  const data = new Float32Array(batch * mels * frames);
  for (let b = 0; b < batch; b++)
    for (let m = 0; m < mels; m++)
      for (let f = 0; f < frames; f++) data[(b * mels + m) * frames + f] = 0.5 * Math.sin(0.013 * (f + 1) * (m + 1 + 3 * b));
  return new Tensor('float32', data, [batch, mels, frames]);
}

const argmax = (row) => Array.from(row).reduce((best, x, i, a) => (x > a[best] ? i : best), 0);

/** The largest |a - b| over two equally long lists. */
function maxDiff(a, b) {
  assert.equal(a.length, b.length);
  return Math.max(0, ...Array.from(a, (x, i) => Math.abs(x - b[i])));
}

const dualRef = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'vision', 'dual-encoder-forward.json'), 'utf8'));

/** A dual encoder's reference inputs as Tensors: `input_ids` (CLIP's `attention_mask`), `pixel_values`. */
function dualInputs(m) {
  const int64 = (rows) => new Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), [rows.length, rows[0].length]);
  const text = { input_ids: int64(m.input_ids), ...(m.attention_mask ? { attention_mask: int64(m.attention_mask) } : {}) };
  return { text, image: { pixel_values: new Tensor('float32', Float32Array.from(m.pixel_values.data), m.pixel_values.dims) } };
}

/** Every output of `want` ({name: {dims, data}}), and no other, within the tolerance. */
function assertOutputs(got, want, what) {
  assert.deepEqual(Object.keys(got), Object.keys(want), what);
  for (const [name, { dims, data }] of Object.entries(want)) {
    assert.deepEqual(got[name].dims, dims, `${what} ${name}`);
    const diff = maxDiff(got[name].data, data);
    assert.ok(diff <= TOLERANCE, `${what} ${name}: max |diff| ${diff}`);
  }
}

// Each model class runs on the WASM build and, where its addon is built, on the native engine
// (the same reference values on both).
for (const device of NODE_DEVICES) {
  describe(`AutoModel on all-MiniLM-L6-v2 [${device}]`, () => {
    let model;
    let tokenizer;
    before(async () => {
      tokenizer = await AutoTokenizer.from_pretrained(minilmDir);
      model = await AutoModel.from_pretrained(minilmDir, { device });
    });
    after(async () => {
      await model?.dispose();
      tokenizer?.dispose();
    });

    test('last_hidden_state, mean-pooled and normalized, is the PyTorch reference on 29 inputs', async () => {
      const ref = reference();
      assert.equal(model.device, device);
      assert.equal(model.config.model_type, 'bert');
      const inputs = tokenizer(
        ref.inputs.map((i) => i.text),
        { padding: true, truncation: true, max_length: ref.max_seq_length },
      );
      // The tokenizer feeds what sentence-transformers fed PyTorch.
      ref.inputs.forEach((input, i) => {
        const row = Array.from(inputs.input_ids[i].data, Number).slice(0, input.token_ids.length);
        assert.deepEqual(row, input.token_ids, input.text);
      });
      const { last_hidden_state } = await model(inputs);
      assert.ok(last_hidden_state instanceof Tensor);
      assert.deepEqual(last_hidden_state.dims, [...inputs.input_ids.dims, ref.hidden_size]);
      const embeddings = mean_pooling(last_hidden_state, inputs.attention_mask).normalize(2, -1);
      const diff = maxAbsDiff(embeddings.data, ref);
      assert.ok(diff <= TOLERANCE, `max abs diff ${diff} > ${TOLERANCE}`);
      // The few inputs the reference has every token of.
      for (const [i, input] of ref.inputs.entries()) {
        if (!input.last_hidden_state) continue;
        const got = last_hidden_state[i].data.subarray(0, input.last_hidden_state.length * ref.hidden_size);
        assert.ok(maxDiff(got, input.last_hidden_state.flat()) <= TOLERANCE, input.text);
      }
    });
  });

  describe(`AutoModelFor... text heads on the tiny task models [${device}]`, () => {
    const classifierModels = [...new Set(tasksRef.cases.filter((c) => c.task === 'text-classification' && c.model.endsWith('-sequence-classification')).map((c) => c.model))];

    test(`AutoModelForSequenceClassification: softmax(logits) is Python's and the pipeline's scores (${classifierModels.length} architectures, one padded batch)`, async () => {
      for (const name of classifierModels) {
        const dir = path.join(tinyTasksDir, name);
        // Every single-text case that lists all labels with softmax scores.
        const cases = tasksRef.cases.filter(
          (c) => c.task === 'text-classification' && c.model === name && typeof c.input === 'string' && c.options?.top_k === null && (c.options.function_to_apply ?? 'softmax') === 'softmax',
        );
        assert.ok(cases.length >= 2, `${name}: ${cases.length} cases`);
        const tokenizer = await AutoTokenizer.from_pretrained(dir);
        const model = await AutoModelForSequenceClassification.from_pretrained(dir, { device });
        const classifier = await pipeline('text-classification', dir, { device });
        try {
          const { logits } = await model(tokenizer(cases.map((c) => c.input), { padding: true, truncation: true }));
          const labels = model.config.id2label;
          assert.deepEqual(logits.dims, [cases.length, Object.keys(labels).length]);
          for (const [i, c] of cases.entries()) {
            const scores = softmax(logits[i].data);
            for (const { label, score } of c.output) {
              const id = Object.keys(labels).find((k) => labels[k] === label);
              assert.ok(Math.abs(scores[id] - score) <= tasksRef.tolerance, `${name} "${c.input}" ${label}: ${scores[id]} vs Python's ${score}`);
            }
            const [piped] = await classifier(c.input, { top_k: 1 });
            assert.equal(labels[argmax(scores)], piped.label, name);
            assert.ok(Math.abs(Math.max(...scores) - piped.score) <= tasksRef.tolerance, `${name}: pipeline score ${piped.score}`);
          }
        } finally {
          await model.dispose();
          await classifier.dispose();
          tokenizer.dispose();
        }
      }
    });

    test("AutoModelForTokenClassification: each token's softmax top label and score are Python's", async () => {
      const dir = path.join(tinyTasksDir, 'bert-token-classification');
      const c = tasksRef.cases.find((x) => x.task === 'token-classification' && x.model === 'bert-token-classification' && typeof x.input === 'string');
      const tokenizer = await AutoTokenizer.from_pretrained(dir);
      const model = await AutoModelForTokenClassification.from_pretrained(dir, { device });
      try {
        const inputs = tokenizer(c.input);
        const { logits } = await model(inputs);
        assert.deepEqual(logits.dims.slice(0, 2), inputs.input_ids.dims);
        assert.ok(c.output.length >= 3);
        for (const entity of c.output) {
          const scores = softmax(logits[0][entity.index].data);
          assert.equal(model.config.id2label[argmax(scores)], entity.entity, `token ${entity.index}`);
          assert.ok(Math.abs(Math.max(...scores) - entity.score) <= tasksRef.tolerance, `token ${entity.index}: ${Math.max(...scores)} vs ${entity.score}`);
        }
      } finally {
        await model.dispose();
        tokenizer.dispose();
      }
    });

    test("AutoModelForMaskedLM: the mask's top tokens and scores are Python's fill-mask answer", async () => {
      const dir = path.join(tinyTasksDir, 'bert-masked-lm');
      const c = tasksRef.cases.find((x) => x.task === 'fill-mask' && x.model === 'bert-masked-lm' && typeof x.input === 'string');
      const tokenizer = await AutoTokenizer.from_pretrained(dir);
      const model = await AutoModelForMaskedLM.from_pretrained(dir, { device });
      try {
        const inputs = tokenizer(c.input);
        const { logits } = await model(inputs);
        const at = Array.from(inputs.input_ids.data, Number).indexOf(tokenizer.mask_token_id);
        assert.deepEqual(logits.dims, [1, inputs.input_ids.dims[1], tokenizer.vocab_size]);
        const scores = softmax(logits[0][at].data);
        const ranked = scores.map((s, id) => [s, id]).sort((a, b) => b[0] - a[0]);
        c.output.forEach((expected, k) => {
          assert.equal(ranked[k][1], expected.token, `rank ${k}`);
          assert.ok(Math.abs(ranked[k][0] - expected.score) <= tasksRef.tolerance, `rank ${k}: ${ranked[k][0]} vs ${expected.score}`);
        });
      } finally {
        await model.dispose();
        tokenizer.dispose();
      }
    });

    test('AutoModelForQuestionAnswering: start_logits and end_logits per token; the best span is the answer', async () => {
      const dir = path.join(tinyTasksDir, 'bert-question-answering');
      const c = tasksRef.cases.find((x) => x.task === 'question-answering' && x.model === 'bert-question-answering' && !Array.isArray(x.input) && !x.options?.top_k);
      const tokenizer = await AutoTokenizer.from_pretrained(dir);
      const model = await AutoModelForQuestionAnswering.from_pretrained(dir, { device });
      try {
        const inputs = tokenizer(c.input.question, { text_pair: c.input.context });
        const { start_logits, end_logits } = await model(inputs);
        assert.deepEqual(start_logits.dims, inputs.input_ids.dims);
        assert.deepEqual(end_logits.dims, inputs.input_ids.dims);
        // Python's score: the best context span's start and end probabilities, each softmaxed
        // over the context tokens (and [CLS]) only.
        const types = Array.from(inputs.token_type_ids.data, Number);
        const context = types.map((t, i) => (t === 1 && i < types.length - 1) || i === 0);
        const probs = (logits) => {
          const masked = Array.from(logits[0].data, (x, i) => (context[i] ? x : -10000));
          return softmax(masked);
        };
        const [ps, pe] = [probs(start_logits), probs(end_logits)];
        let best = 0;
        for (let s = 1; s < types.length; s++) {
          for (let e = s; e < Math.min(types.length, s + 15); e++) if (context[s] && context[e]) best = Math.max(best, ps[s] * pe[e]);
        }
        // Python then sums the scores of spans that widen to the same words ("sch" + "##ool" and
        // "school"), so its answer scores at least the best span, by a little on this model.
        const gap = c.output.score - best;
        assert.ok(gap >= -tasksRef.tolerance && gap < 0.005, `best span ${best} vs Python's ${c.output.score}`);
      } finally {
        await model.dispose();
        tokenizer.dispose();
      }
    });
  });

  describe(`AutoModelForCausalLM on the tiny Llama [${device}]`, () => {
    let model;
    before(async () => {
      model = await AutoModelForCausalLM.from_pretrained(tinyLlama, { device });
    });
    after(() => model?.dispose());

    const ids = (list) => new Tensor('int64', BigInt64Array.from(list, BigInt), [1, list.length]);

    test("logits at every position are transformers'; generate() gives its greedy ids and the pipeline's", async () => {
      const prompt = llamaRef.prompts[0];
      const { logits } = await model({ input_ids: ids(prompt.token_ids) });
      assert.deepEqual(logits.dims, [1, prompt.token_ids.length, llamaRef.vocab_size ?? logits.dims[2]]);
      prompt.logits.forEach((row, p) => {
        const diff = maxDiff(logits[0][p].data, row);
        assert.ok(diff <= TOLERANCE, `position ${p}: ${diff}`);
      });
      const out = await model.generate({ input_ids: ids(prompt.token_ids), max_new_tokens: prompt.greedy_ids.length });
      assert.equal(out.type, 'int64');
      assert.deepEqual(Array.from(out.data, Number), [...prompt.token_ids, ...prompt.greedy_ids]);
      const generator = await pipeline('text-generation', tinyLlama, { device });
      try {
        const [piped] = await generator(prompt.text, { max_new_tokens: prompt.greedy_ids.length, return_full_text: false });
        assert.equal(generator.tokenizer.decode(prompt.greedy_ids), piped.generated_text);
      } finally {
        await generator.dispose();
      }
    });

    test("a left-padded batch: each row's last logits and greedy ids are transformers'", async () => {
      const rows = llamaRef.chat_batch.rows;
      const width = rows[0].padded_ids.length;
      const batch = (key) => new Tensor('int64', BigInt64Array.from(rows.flatMap((r) => r[key]), BigInt), [rows.length, width]);
      const inputs = { input_ids: batch('padded_ids'), attention_mask: batch('attention_mask') };
      const { logits } = await model(inputs);
      rows.forEach((row, r) => assert.ok(maxDiff(logits[r][width - 1].data, row.last_logits) <= TOLERANCE, `row ${r}`));
      const steps = Math.max(...rows.map((r) => r.greedy_ids.length));
      const out = await model.generate({ ...inputs, max_new_tokens: steps });
      assert.deepEqual(out.dims, [rows.length, width + steps]);
      rows.forEach((row, r) => {
        const got = Array.from(out[r].data, Number);
        assert.deepEqual(got.slice(0, width), row.padded_ids);
        assert.deepEqual(got.slice(width, width + row.greedy_ids.length), row.greedy_ids, `row ${r}`);
      });
    });

    test('bad input is a clear Error with a code', async () => {
      const floatIds = new Tensor('float32', new Float32Array([1, 2]), [1, 2]);
      await rejectsWith(Error, model({ input_ids: floatIds }), /input_ids must be an integer tensor/, 'input');
      await rejectsWith(Error, model({ input_ids: new Tensor('int64', new BigInt64Array([1n, 2n]), [2]) }), /\[batch, tokens\]/, 'input');
      await rejectsWith(Error, model({ input_ids: ids([1, 999999]) }), /outside the vocabulary/, 'input');
      await rejectsWith(Error, model({ input_ids: ids([1, 2]), attention_mask: ids([1, 1, 1]) }), /attention_mask has dims/, 'input');
      await rejectsWith(Error, model({ input_ids: ids([1, 2]), pixel_values: ids([1]) }), /no input `pixel_values`/, 'input');
      await rejectsWith(Error, model.generate({ input_ids: ids([1, 2]), num_beams: 2 }), /one sequence per row/, 'unsupported');
      await rejectsWith(Error, model.generate({ input_ids: ids([1, 2]), no_such_option: 1 }), /no_such_option/, 'input');
    });
  });

  describe(`a pipeline's model (pipe.model) [${device}]`, () => {
    test('feature-extraction: pipe.model is the loaded AutoModel; its mean-pooled last_hidden_state is the PyTorch reference', async () => {
      const ref = reference();
      const extractor = await pipeline('feature-extraction', minilmDir, { device });
      try {
        const { model } = extractor;
        assert.ok(model instanceof PreTrainedModel);
        assert.equal(extractor.model, model, 'made once');
        assert.equal(extractor.model_id, minilmDir);
        assert.equal(model.class_name, 'AutoModel');
        assert.equal(model.pipeline_task, 'feature-extraction');
        assert.deepEqual(model.config, JSON.parse(fs.readFileSync(path.join(minilmDir, 'config.json'), 'utf8')));
        const inputs = extractor.tokenizer(
          ref.inputs.map((i) => i.text),
          { padding: true, truncation: true, max_length: ref.max_seq_length },
        );
        const { last_hidden_state } = await model(inputs);
        const diff = maxAbsDiff(mean_pooling(last_hidden_state, inputs.attention_mask).normalize(2, -1).data, ref);
        assert.ok(diff <= TOLERANCE, `max abs diff ${diff} > ${TOLERANCE}`);
        // The model disposed on its own frees only its hold on the weights: the pipeline still
        // runs, and pipe.model is made again.
        await model.dispose();
        await rejectsWith(Error, model(inputs), /this AutoModel was disposed \(the feature-extraction pipeline's model\)/, 'input');
        const again = extractor.model;
        assert.notEqual(again, model);
        const [first] = await extractor(ref.inputs[0].text, { pooling: 'mean', normalize: true }).then((t) => t.tolist());
        assert.ok(maxDiff(first, ref.inputs[0].embedding) <= TOLERANCE, 'the pipeline after its model was disposed');
        const { last_hidden_state: h } = await again(inputs);
        assert.deepEqual(h.dims, last_hidden_state.dims);
        assert.ok(h.data.every((x, i) => x === last_hidden_state.data[i]), 'the same weights give the same values');
      } finally {
        await extractor.dispose();
      }
      // A disposed pipeline's model is disposed with it.
      await rejectsWith(Error, extractor.model({ input_ids: new Tensor('int64', new BigInt64Array([101n, 102n]), [1, 2]) }), /was disposed/, 'input');
    });

    test("text-generation: pipe.model's logits and generate() are transformers' on the tiny Llama", async () => {
      const generator = await pipeline('text-generation', tinyLlama, { device });
      const prompt = llamaRef.prompts[0];
      const ids = new Tensor('int64', BigInt64Array.from(prompt.token_ids, BigInt), [1, prompt.token_ids.length]);
      try {
        const model = generator.model;
        assert.equal(model.class_name, 'AutoModelForCausalLM');
        assert.equal(model.config.model_type, 'llama');
        const { logits } = await model({ input_ids: ids });
        prompt.logits.forEach((row, p) => assert.ok(maxDiff(logits[0][p].data, row) <= TOLERANCE, `position ${p}`));
        const out = await model.generate({ input_ids: ids, max_new_tokens: prompt.greedy_ids.length });
        assert.deepEqual(Array.from(out.data, Number), [...prompt.token_ids, ...prompt.greedy_ids]);
      } finally {
        await generator.dispose();
      }
      await rejectsWith(Error, generator.model({ input_ids: ids }), /this AutoModelForCausalLM was disposed/, 'input');
    });

    test("translation and speech recognition: pipe.model is the encoder-decoder class; its logits and generate() are transformers'", async () => {
      const m = seq2seqRef.text['tiny-marian'];
      const translator = await pipeline('translation', path.join(fixturesDir, 'seq2seq', 'tiny-marian'), { device });
      try {
        const model = translator.model;
        assert.equal(model.class_name, 'AutoModelForSeq2SeqLM');
        assert.equal(model.pipeline_task, 'translation');
        const { logits } = await model({ ...textInputs(m), decoder_input_ids: intRows(m.decoder_input_ids) });
        assert.ok(maxDiff(logits.data, m.logits) <= TOLERANCE, `logits: ${maxDiff(logits.data, m.logits)}`);
        const out = await model.generate({ ...textInputs(m), max_new_tokens: seq2seqRef.max_new_tokens });
        assert.deepEqual(out.tolist().map((r) => r.map(Number)), m.greedy);
      } finally {
        await translator.dispose();
      }
      const w = seq2seqRef.whisper['tiny-whisper-en'];
      const transcriber = await pipeline('automatic-speech-recognition', path.join(fixturesDir, 'whisper', 'tiny-whisper-en'), { device });
      try {
        const model = transcriber.model;
        assert.equal(model.class_name, 'AutoModelForSpeechSeq2Seq');
        const out = await model.generate({ inputs: whisperFeatures(w.input_features_dims), max_new_tokens: seq2seqRef.max_new_tokens });
        assert.deepEqual(out.tolist().map((r) => r.map(Number)), w.greedy.map((r) => [...w.prompt, ...r]));
      } finally {
        await transcriber.dispose();
      }
    });

    test("a task without a model class here (feature-extraction on a dual encoder's text tower) says so when pipe.model is read", async () => {
      const classifier = await pipeline('feature-extraction', path.join(fixturesDir, 'vision', 'tiny-clip'), { device });
      try {
        assert.throws(() => classifier.model, (e) => e.code === 'unsupported' && /feature-extraction: this task's model is not available as a model class/.test(e.message));
      } finally {
        await classifier.dispose();
      }
    });
  });

  describe(`the encoder-decoders: AutoModelForSeq2SeqLM, AutoModelForSpeechSeq2Seq [${device}]`, () => {
    for (const name of Object.keys(seq2seqRef.text)) {
      test(`AutoModelForSeq2SeqLM on ${name}: the tokenizer's padded batch gives transformers' logits, encoder states and greedy / 2-beam ids`, async () => {
        const m = seq2seqRef.text[name];
        const dir = path.join(fixturesDir, 'seq2seq', name);
        const tokenizer = await AutoTokenizer.from_pretrained(dir);
        const model = await AutoModelForSeq2SeqLM.from_pretrained(dir, { device });
        try {
          assert.equal(model.class_name, 'AutoModelForSeq2SeqLM');
          const inputs = tokenizer(seq2seqTexts, { padding: true });
          assert.deepEqual(inputs.input_ids.tolist().map((r) => r.map(Number)), m.input_ids, "the tokenizer's ids are transformers'");
          const { logits, encoder_last_hidden_state } = await model({ ...inputs, decoder_input_ids: intRows(m.decoder_input_ids) });
          assert.deepEqual(logits.dims, m.logits_dims);
          assert.ok(maxDiff(logits.data, m.logits) <= TOLERANCE, `logits: ${maxDiff(logits.data, m.logits)}`);
          assert.deepEqual(encoder_last_hidden_state.dims, m.encoder_last_hidden_state_dims);
          const [, s, h] = m.encoder_last_hidden_state_dims;
          m.attention_mask.forEach((mask, r) => {
            const n = mask.filter((x) => x === 1).length * h;
            const diff = maxDiff(encoder_last_hidden_state.data.slice(r * s * h, r * s * h + n), m.encoder_last_hidden_state.slice(r * s * h, r * s * h + n));
            assert.ok(diff <= TOLERANCE, `encoder row ${r}: ${diff}`);
          });
          const greedy = await model.generate({ ...inputs, max_new_tokens: seq2seqRef.max_new_tokens });
          assert.equal(greedy.type, 'int64');
          assert.deepEqual(greedy.tolist().map((r) => r.map(Number)), m.greedy);
          const beams = await model.generate({ ...inputs, max_new_tokens: seq2seqRef.max_new_tokens, num_beams: 2 });
          assert.deepEqual(beams.tolist().map((r) => r.map(Number)), m.beams2);
          // transformers.js's `generate({ inputs })` names the main input
          const again = await model.generate({ inputs: inputs.input_ids, attention_mask: inputs.attention_mask, max_new_tokens: seq2seqRef.max_new_tokens });
          assert.deepEqual(again.tolist().map((r) => r.map(Number)), m.greedy);
        } finally {
          await model.dispose();
          tokenizer.dispose();
        }
      });
    }

    test("AutoModelForSpeechSeq2Seq on the tiny Whisper: logits and greedy ids are transformers' (its prompt first, as transformers.js returns)", async () => {
      const w = seq2seqRef.whisper['tiny-whisper-en'];
      const model = await AutoModelForSpeechSeq2Seq.from_pretrained(path.join(fixturesDir, 'whisper', 'tiny-whisper-en'), { device });
      try {
        const input_features = whisperFeatures(w.input_features_dims);
        const { logits } = await model({ input_features, decoder_input_ids: intRows(w.decoder_input_ids) });
        assert.deepEqual(logits.dims, w.logits_dims);
        const vocab = w.logits_dims[2];
        const picked = [];
        for (let row = 0; row < logits.data.length / vocab; row++) picked.push(...w.logits_ids.map((i) => logits.data[row * vocab + i]));
        assert.ok(maxDiff(picked, w.logits) <= TOLERANCE, `logits: ${maxDiff(picked, w.logits)}`);
        const out = await model.generate({ inputs: input_features, max_new_tokens: seq2seqRef.max_new_tokens });
        assert.deepEqual(out.tolist().map((r) => r.map(Number)), w.greedy.map((r) => [...w.prompt, ...r]));
        await rejectsWith(Error, model({ input_features }), /decoder_input_ids/, 'input');
        await rejectsWith(Error, model({ input_features: new Tensor('float32', new Float32Array(80 * 10), [1, 80, 10]), decoder_input_ids: intRows([w.prompt]) }), /input_features must be \[batch, 80, 3000\]/, 'input');
        await rejectsWith(Error, model.generate({ inputs: input_features, language: 'fr' }), /English-only/, 'input');
      } finally {
        await model.dispose();
      }
    });
  });

  describe(`unknown architectures and classes [${device}]`, () => {
    test('a model without the class head, an unknown model_type or a decoder as AutoModel is a clear Error', async () => {
      await rejectsWith(
        Error,
        AutoModelForSequenceClassification.from_pretrained(path.join(tinyTasksDir, 'bert-masked-lm'), { device }),
        /BertForMaskedLM.*no SequenceClassification head/,
        'unsupported',
      );
      await rejectsWith(Error, AutoModel.from_pretrained(tinyLlama, { device }), /AutoModelForCausalLM/, 'unsupported');
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-unknown-'));
      try {
        fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'no-such-arch', architectures: ['NoSuchModel'] }));
        fs.writeFileSync(path.join(dir, 'model.safetensors'), Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, ...Buffer.from('{}      ')]));
        await rejectsWith(Error, AutoModel.from_pretrained(dir, { device }), /model_type `no-such-arch`.*supported: /, 'unsupported');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe(`vision models and AutoProcessor [${device}]`, () => {
    const imagePath = (name) => path.join(fixturesDir, 'images', name);

    test("AutoProcessor's pixel_values are transformers' (3 processors, sampled values and channel means)", async () => {
      const ref = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'image-reference', 'reference.json'), 'utf8'));
      for (const repo of ['google/vit-base-patch16-224', 'openai/clip-vit-base-patch32', 'facebook/detr-resnet-50']) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-processor-'));
        try {
          fs.writeFileSync(path.join(dir, 'preprocessor_config.json'), JSON.stringify(ref.processors[repo].config));
          const processor = await AutoProcessor.from_pretrained(dir);
          assert.equal(processor.kind, 'image');
          for (const name of ['cat.jpg', 'coffee.png']) {
            const expected = ref.processors[repo].cases[name];
            const out = await processor(imagePath(name));
            assert.deepEqual(out.pixel_values.dims, expected.dims, `${repo} ${name}`);
            const values = out.pixel_values.data;
            const step = 7919 * 104729;
            const sampled = Array.from({ length: ref.samples }, (_, i) => values[Number((BigInt(i) * BigInt(step)) % BigInt(values.length))]);
            assert.ok(maxDiff(sampled, expected.samples) <= 1e-3, `${repo} ${name}`);
            const plane = expected.dims[2] * expected.dims[3];
            for (let c = 0; c < 3; c++) {
              const mean = values.subarray(c * plane, (c + 1) * plane).reduce((a, b) => a + b, 0) / plane;
              assert.ok(Math.abs(mean - expected.channel_means[c]) < 1e-4, `${repo} ${name} channel ${c}: ${mean}`);
            }
            assert.equal(out.pixel_mask !== undefined, expected.mask_sum !== undefined, `${repo}: pixel_mask`);
            assert.deepEqual(Array.from(out.original_sizes.data, Number), [ref.decode[name].height, ref.decode[name].width]);
          }
          processor.dispose();
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }
    });

    test("AutoProcessor of a Whisper model: input_features are WhisperFeatureExtractor's", async () => {
      const ref = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'audio-reference', 'reference.json'), 'utf8'));
      const processor = await AutoProcessor.from_pretrained(path.join(fixturesDir, 'whisper', 'tiny-whisper-en'));
      assert.equal(processor.kind, 'audio');
      const bins = processor.config.feature_size;
      const c = ref.features.find((f) => f.case === 'speech_a_16k' && f.n_mels === bins);
      // A WAV file's path: decoded by the engine in Node, as the speech pipeline's input is.
      const { input_features } = await processor(path.join(fixturesDir, 'audio', 'speech_a_16k.wav'));
      assert.deepEqual(input_features.dims, [1, bins, 3000]);
      const buffer = fs.readFileSync(path.join(fixturesDir, 'audio-reference', c.file));
      const want = new Float32Array(buffer.buffer, buffer.byteOffset, buffer.length / 4);
      let worst = 0;
      for (let m = 0; m < bins; m++) {
        const row = input_features.data.subarray(m * 3000, (m + 1) * 3000);
        worst = Math.max(worst, maxDiff(row.subarray(0, c.frames_kept), want.subarray(m * c.frames_kept, (m + 1) * c.frames_kept)));
        // The zero padding's frames hold the floor value.
        worst = Math.max(worst, ...Array.from(row.subarray(c.frames_kept), (v) => Math.abs(v - c.tail_value)));
      }
      assert.ok(worst <= TOLERANCE, `max |diff| ${worst}`);
      processor.dispose();
    });

    test("AutoModelForImageClassification on the processor's pixel_values gives the image-classification pipeline's scores", async () => {
      const dir = path.join(fixturesDir, 'vision', 'tiny-vit-classifier');
      const processor = await AutoProcessor.from_pretrained(dir);
      const model = await AutoModelForImageClassification.from_pretrained(dir, { device });
      const classifier = await pipeline('image-classification', dir, { device });
      try {
        const images = [imagePath('cat.jpg'), imagePath('coffee.png')];
        const { logits } = await model(await processor(images));
        const labels = Object.keys(model.config.id2label).length;
        assert.deepEqual(logits.dims, [2, labels]);
        for (const [i, image] of images.entries()) {
          const scores = softmax(logits[i].data);
          for (const { label, score } of await classifier(image, { top_k: labels })) {
            const id = Object.keys(model.config.id2label).find((k) => model.config.id2label[k] === label);
            assert.ok(Math.abs(scores[id] - score) <= TOLERANCE, `${image} ${label}: ${scores[id]} vs ${score}`);
          }
        }
        await rejectsWith(Error, model({ pixel_values: new Tensor('float32', new Float32Array(12), [1, 1, 3, 4]) }), /\[N, 3, H, W\]/, 'input');
      } finally {
        await model.dispose();
        await classifier.dispose();
        processor.dispose();
      }
    });
  });

  describe(`CLIP and SigLIP classes [${device}]`, () => {
    test("CLIPModel, SiglipModel, AutoModel, the one-tower classes and zero-shot-image-classification's model give transformers' outputs", async () => {
      const families = [
        ['tiny-clip', CLIPModel, CLIPTextModelWithProjection, CLIPVisionModelWithProjection],
        ['tiny-siglip', SiglipModel, SiglipTextModel, SiglipVisionModel],
      ];
      for (const [name, Both, Text, Vision] of families) {
        const dir = path.join(fixturesDir, 'vision', name);
        const m = dualRef.models[name];
        const { text, image } = dualInputs(m);
        const pipe = await pipeline('zero-shot-image-classification', dir, { device });
        const models = [await Both.from_pretrained(dir, { device }), await AutoModel.from_pretrained(dir, { device }), pipe.model];
        for (const model of models) assertOutputs(await model({ ...text, ...image }), m.model, `${name} ${model.class_name}`);
        assert.equal(pipe.model.class_name, 'AutoModel');
        assert.equal(pipe.model.pipeline_task, 'zero-shot-image-classification');
        const textModel = await Text.from_pretrained(dir, { device });
        const visionModel = await Vision.from_pretrained(dir, { device });
        assertOutputs(await textModel(text), m.text, `${name} ${Text.class_name}`);
        assertOutputs(await visionModel(image), m.vision, `${name} ${Vision.class_name}`);
        for (const model of [...models.slice(0, 2), textModel, visionModel]) await model.dispose();
        await pipe.dispose();
      }
      // CLIP's tokenizer pads as the reference's inputs were made (transformers.js code feeds it).
      const tokenizer = await AutoTokenizer.from_pretrained(path.join(fixturesDir, 'vision', 'tiny-clip'));
      const { input_ids } = tokenizer(dualRef.texts, { padding: true });
      assert.deepEqual(Array.from(input_ids.data, Number), dualRef.models['tiny-clip'].input_ids.flat());
      tokenizer.dispose();
      await rejectsWith(Error, SiglipModel.from_pretrained(path.join(fixturesDir, 'vision', 'tiny-clip'), { device }), /CLIPModel/, 'unsupported');
    });
  });
}

describe('in Chromium on WebGPU', () => {
  let browser;
  let server;
  before(async () => {
    server = await testServer();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test("AutoModelForSequenceClassification and a text-classification pipeline's model give the same logits on WebGPU as on WASM", async () => {
    const name = 'bert-sequence-classification';
    const texts = tasksRef.cases.filter((c) => c.model === name && c.task === 'text-classification' && typeof c.input === 'string').map((c) => c.input);
    const tokenizer = await AutoTokenizer.from_pretrained(path.join(tinyTasksDir, name));
    const wasmModel = await AutoModelForSequenceClassification.from_pretrained(path.join(tinyTasksDir, name), { device: 'wasm' });
    const expected = (await wasmModel(tokenizer(texts, { padding: true }))).logits;
    await wasmModel.dispose();
    tokenizer.dispose();
    const page = await openPage(browser, server.url);
    const got = await evaluateWithin(
      page,
      240,
      async (model, texts) => {
        const { AutoModelForSequenceClassification, AutoTokenizer, pipeline, workerPipeline } = await import('/webformers/index.js');
        const tokenizer = await AutoTokenizer.from_pretrained(model);
        const classifier = await AutoModelForSequenceClassification.from_pretrained(model, { device: 'webgpu' });
        const inputs = tokenizer(texts, { padding: true });
        const { logits } = await classifier(inputs);
        const pipe = await pipeline('text-classification', model, { device: 'webgpu' });
        const piped = await pipe.model(inputs);
        await pipe.dispose();
        const afterDispose = await pipe.model(inputs).then(
          () => null,
          (e) => e.message,
        );
        // A worker pipeline's model: its calls go to the worker.
        const worker = new Worker('/webformers/worker.js', { type: 'module' });
        const remote = await workerPipeline(worker, 'text-classification', model, { device: 'wasm' });
        const remoteLogits = (await remote.model(inputs)).logits;
        const remoteInfo = { class_name: remote.model.class_name, labels: remote.model.config.id2label, device: remote.model.device };
        await remote.dispose();
        worker.terminate();
        return {
          device: classifier.device,
          dims: logits.dims,
          data: Array.from(logits.data),
          pipe: { device: pipe.model.device, class_name: pipe.model.class_name, dims: piped.logits.dims, data: Array.from(piped.logits.data), afterDispose },
          worker: { ...remoteInfo, dims: remoteLogits.dims, data: Array.from(remoteLogits.data) },
        };
      },
      `/fixtures/tiny-tasks/${name}`,
      texts,
    );
    assert.equal(got.device, 'webgpu');
    // 404s: the optional files the model folder does not have (generation_config.json).
    assert.deepEqual(problemsBut404(page), []);
    assert.deepEqual(got.dims, expected.dims);
    const diff = maxDiff(got.data, expected.data);
    assert.ok(diff <= TOLERANCE, `WebGPU vs WASM: ${diff}`);
    assert.equal(got.pipe.device, 'webgpu');
    assert.equal(got.pipe.class_name, 'AutoModelForSequenceClassification');
    assert.deepEqual(got.pipe.dims, expected.dims);
    const pipeDiff = maxDiff(got.pipe.data, expected.data);
    assert.ok(pipeDiff <= TOLERANCE, `the pipeline's model on WebGPU vs WASM: ${pipeDiff}`);
    assert.match(got.pipe.afterDispose ?? 'no error', /this AutoModelForSequenceClassification was disposed \(the text-classification pipeline's model\)/);
    assert.equal(got.worker.class_name, 'AutoModelForSequenceClassification');
    assert.equal(got.worker.device, 'wasm');
    assert.deepEqual(got.worker.labels, JSON.parse(fs.readFileSync(path.join(tinyTasksDir, name, 'config.json'), 'utf8')).id2label);
    assert.deepEqual(got.worker.dims, expected.dims);
    const workerDiff = maxDiff(got.worker.data, expected.data);
    assert.ok(workerDiff <= TOLERANCE, `a worker pipeline's model vs WASM here: ${workerDiff}`);
  });

  test("AutoModelForSeq2SeqLM on WebGPU, and a worker summarization pipeline's model: transformers' logits and greedy / 2-beam ids", async () => {
    const m = seq2seqRef.text['tiny-bart'];
    const page = await openPage(browser, server.url);
    const got = await evaluateWithin(
      page,
      240,
      async (model, m, maxNew) => {
        const { AutoModelForSeq2SeqLM, Tensor, workerPipeline } = await import('/webformers/index.js');
        const rows = (r) => new Tensor('int64', BigInt64Array.from(r.flat(), BigInt), [r.length, r[0].length]);
        const inputs = { input_ids: rows(m.input_ids), attention_mask: rows(m.attention_mask) };
        const ids = (t) => t.tolist().map((r) => r.map(Number));
        const bart = await AutoModelForSeq2SeqLM.from_pretrained(model, { device: 'webgpu' });
        const { logits } = await bart({ ...inputs, decoder_input_ids: rows(m.decoder_input_ids) });
        const greedy = ids(await bart.generate({ ...inputs, max_new_tokens: maxNew }));
        const beams = ids(await bart.generate({ ...inputs, max_new_tokens: maxNew, num_beams: 2 }));
        await bart.dispose();
        // A worker pipeline's model: its calls go to the worker.
        const worker = new Worker('/webformers/worker.js', { type: 'module' });
        const remote = await workerPipeline(worker, 'summarization', model, { device: 'wasm' });
        const remoteGreedy = ids(await remote.model.generate({ ...inputs, max_new_tokens: maxNew }));
        const remoteClass = remote.model.class_name;
        await remote.dispose();
        worker.terminate();
        return { device: bart.device, dims: logits.dims, data: Array.from(logits.data), greedy, beams, remoteGreedy, remoteClass };
      },
      '/fixtures/seq2seq/tiny-bart',
      m,
      seq2seqRef.max_new_tokens,
    );
    assert.equal(got.device, 'webgpu');
    assert.deepEqual(got.dims, m.logits_dims);
    assert.ok(maxDiff(got.data, m.logits) <= TOLERANCE, `WebGPU logits: ${maxDiff(got.data, m.logits)}`);
    assert.deepEqual(got.greedy, m.greedy);
    assert.deepEqual(got.beams, m.beams2);
    assert.equal(got.remoteClass, 'AutoModelForSeq2SeqLM');
    assert.deepEqual(got.remoteGreedy, m.greedy);
  });

  test("reading a pipeline's model creates no WebGPU buffer and no engine device memory; the class loaded alone does", async (t) => {
    const m = dualRef.models['tiny-clip'];
    const page = await openPage(browser, server.url);
    const got = await evaluateWithin(
      page,
      240,
      async (dir, m) => {
        // Every GPUBuffer the page makes, whoever makes it (the engine's own counter is checked too).
        let created = 0;
        const createBuffer = GPUDevice.prototype.createBuffer;
        GPUDevice.prototype.createBuffer = function (...args) {
          created++;
          return createBuffer.apply(this, args);
        };
        const { AutoModel, Tensor, pipeline } = await import('/webformers/index.js');
        const wasm = await (await import('/webformers/engine.js')).engine();
        const memory = () => ({ created, live: Array.from(wasm.liveBuffers()) });
        const int64 = (rows) => new Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), [rows.length, rows[0].length]);
        const inputs = {
          input_ids: int64(m.input_ids),
          attention_mask: int64(m.attention_mask),
          pixel_values: new Tensor('float32', Float32Array.from(m.pixel_values.data), m.pixel_values.dims),
        };
        const pipe = await pipeline('zero-shot-image-classification', dir, { device: 'webgpu' });
        const loaded = memory();
        const model = pipe.model;
        const read = memory();
        const alone = await AutoModel.from_pretrained(dir, { device: 'webgpu' });
        const aloneLoaded = memory();
        const out = await model(inputs);
        const outAlone = await alone(inputs);
        await alone.dispose();
        await pipe.dispose();
        const plain = (o) => Object.fromEntries(Object.entries(o).map(([k, t]) => [k, { dims: t.dims, data: Array.from(t.data) }]));
        return { device: model.device, loaded, read, aloneLoaded, out: plain(out), outAlone: plain(outAlone) };
      },
      '/fixtures/vision/tiny-clip',
      m,
    );
    assert.equal(got.device, 'webgpu');
    assert.ok(got.loaded.created > 0 && got.loaded.live[1] > 0, JSON.stringify(got.loaded));
    t.diagnostic(`pipeline loaded ${JSON.stringify(got.loaded)}, pipe.model read ${JSON.stringify(got.read)}, AutoModel alone ${JSON.stringify(got.aloneLoaded)}`);
    assert.deepEqual(got.read, got.loaded, "reading pipe.model changed the page's device memory");
    // The same class loaded on its own does hold a second copy: at least the checkpoint's bytes.
    const weights = fs.statSync(path.join(fixturesDir, 'vision', 'tiny-clip', 'model.safetensors')).size;
    assert.ok(got.aloneLoaded.created > got.read.created, JSON.stringify(got.aloneLoaded));
    assert.ok(got.aloneLoaded.live[1] - got.read.live[1] >= 0.9 * weights, `${got.aloneLoaded.live[1] - got.read.live[1]} bytes for ${weights}`);
    assertOutputs(got.out, m.model, "the pipeline's model on WebGPU");
    assertOutputs(got.outAlone, m.model, 'AutoModel on WebGPU');
    assert.deepEqual(problemsBut404(page), []);
    await page.close();
  });

  test("AutoProcessor on a page whose pipeline runs in a worker: its pixel_values give the worker pipeline's model the pipeline's scores", async () => {
    const dir = path.join(fixturesDir, 'vision', 'tiny-vit-classifier');
    const classifier = await pipeline('image-classification', dir, { device: 'wasm' });
    const labels = Object.keys(classifier.model.config.id2label).length;
    const expected = await classifier(path.join(fixturesDir, 'images', 'coffee.png'), { top_k: labels });
    const id2label = classifier.model.config.id2label;
    await classifier.dispose();
    const page = await openPage(browser, server.url);
    const got = await evaluateWithin(
      page,
      240,
      async (dir) => {
        const { AutoProcessor, workerPipeline } = await import('/webformers/index.js');
        const worker = new Worker('/webformers/worker.js', { type: 'module' });
        const remote = await workerPipeline(worker, 'image-classification', dir, { device: 'wasm' });
        const processor = await AutoProcessor.from_pretrained(dir);
        const { logits } = await remote.model(await processor('/fixtures/images/coffee.png'));
        processor.dispose();
        await remote.dispose();
        worker.terminate();
        return { dims: logits.dims, data: Array.from(logits.data) };
      },
      '/fixtures/vision/tiny-vit-classifier',
    );
    assert.deepEqual(got.dims, [1, labels]);
    const scores = softmax(got.data);
    for (const { label, score } of expected) {
      const id = Object.keys(id2label).find((k) => id2label[k] === label);
      assert.ok(Math.abs(scores[id] - score) <= TOLERANCE, `${label}: ${scores[id]} vs ${score}`);
    }
    assert.deepEqual(problemsBut404(page), []);
    await page.close();
  });

  test("a model too large for the adapter: AutoModel's 'webgpu' rejects, 'auto' falls back to WASM with the reference's values", async () => {
    // Under a 1 KiB storage-binding limit not even one row of MiniLM's 384 floats fits.
    const ref = reference();
    const page = await openPage(browser, server.url);
    await fakeBindingLimit(page, 1024);
    const out = await evaluateWithin(
      page,
      240,
      async (model, texts) => {
        const { AutoModel, AutoTokenizer, mean_pooling } = await import('/webformers/index.js');
        let rejected = null;
        try {
          await AutoModel.from_pretrained(model, { device: 'webgpu' });
        } catch (e) {
          rejected = { code: e.code, message: e.message };
        }
        const tokenizer = await AutoTokenizer.from_pretrained(model);
        const encoder = await AutoModel.from_pretrained(model, { device: 'auto' });
        const inputs = tokenizer(texts, { padding: true });
        const { last_hidden_state } = await encoder(inputs);
        const embeddings = mean_pooling(last_hidden_state, inputs.attention_mask).normalize();
        await encoder.dispose();
        return { rejected, device: encoder.device, note: encoder.device_note, data: Array.from(embeddings.data) };
      },
      '/models/all-MiniLM-L6-v2',
      ref.inputs.slice(0, 4).map((i) => i.text),
    );
    assert.equal(out.rejected?.code, 'over_limit', JSON.stringify(out.rejected));
    assert.equal(out.device, 'wasm');
    assert.match(out.note, /does not fit this WebGPU adapter/);
    const diff = maxAbsDiff(out.data, { ...ref, inputs: ref.inputs.slice(0, 4) });
    assert.ok(diff <= TOLERANCE, `max |diff| ${diff}`);
    assert.deepEqual(problemsBut404(page), []);
    await page.close();
  });
});
