// The port test: transformers.js's documented usage (its README's quick tour, the per-task
// examples of its pipeline docs, its models page's AutoModel / AutoModelFor... / AutoProcessor
// usage and the sentence-embedding helpers), written again here with the same calls, option
// names and model ids, in Node on WASM. Only the import differs: 'webformers' where the docs import
// '@huggingface/transformers'. The documented ids are served by the Hub stand-in
// (tests/hub/server.py) laid out as transformers.js's conversions are: config and tokenizer
// files, ONNX weights only, and a model card whose `base_model` names the repository that holds
// the safetensors, which webformers loads instead. Where the real checkpoint is too large for the
// tests, the base repository holds a tiny random model of the same architecture, and the answer is
// checked against that model's Python reference (tiny-tasks-reference.json, seq2seq/reference.json,
// vision/*-reference.json, tiny-decoders-reference.json); all-MiniLM-L6-v2 and whisper-tiny.en are
// the real ones. The inputs are the references' inputs (the docs' own sentences have no
// reference). README.md's "Porting from transformers.js" table lists every snippet and whether it
// runs unchanged.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer } from '../../scripts/static-server.mjs';
import { distDir, evaluateWithin, fixturesDir, here, launchBrowser, maxAbsDiff, minilmDir, modelsDir, openPage, problemsBut404, reference as minilmReference, TOLERANCE } from './helpers.mjs';
import { startHub } from './hub-server.mjs';
import { assertClose, tinyTasksDir, tinyTasksReference } from './tasks.mjs';
import { casesOf, seq2seqDir } from './seq2seq.mjs';
import { checkTranscription, pipelineCases } from './asr.mjs';
import { visionDir, visionReferences } from './vision.mjs';

// The one line that differs from the docs.
import {
  AutoModel,
  AutoModelForCausalLM,
  AutoModelForImageClassification,
  AutoModelForMaskedLM,
  AutoModelForSequenceClassification,
  AutoModelForSeq2SeqLM,
  AutoProcessor,
  AutoTokenizer,
  RawImage,
  Tensor,
  TextStreamer,
  cat,
  cos_sim,
  env,
  mean_pooling,
  pipeline,
  quantize_embeddings,
} from 'webformers';

/** Documented model id → the folder its stand-in's base repository serves. */
const SERVED = {
  'Xenova/all-MiniLM-L6-v2': minilmDir,
  'Xenova/distilbert-base-uncased-finetuned-sst-2-english': path.join(tinyTasksDir, 'distilbert-sequence-classification'),
  'Xenova/toxic-bert': path.join(tinyTasksDir, 'bert-multi-label'),
  'Xenova/bert-base-NER': path.join(tinyTasksDir, 'bert-token-classification'),
  'Xenova/distilbert-base-uncased-distilled-squad': path.join(tinyTasksDir, 'distilbert-question-answering'),
  'Xenova/bert-base-cased': path.join(tinyTasksDir, 'bert-masked-lm'),
  'Xenova/nli-deberta-v3-xsmall': path.join(tinyTasksDir, 'deberta-v2-sequence-classification'),
  'Xenova/distilgpt2': path.join(fixturesDir, 'tiny-gpt2'),
  'onnx-community/Llama-3.2-1B-Instruct': path.join(fixturesDir, 'tiny-llama'),
  'Xenova/nllb-200-distilled-600M': path.join(seq2seqDir, 'tiny-nllb'),
  'Xenova/m2m100_418M': path.join(seq2seqDir, 'tiny-m2m100'),
  'Xenova/distilbart-cnn-6-6': path.join(seq2seqDir, 'tiny-bart'),
  'Xenova/LaMini-Flan-T5-783M': path.join(seq2seqDir, 'tiny-flan-t5'),
  'Xenova/t5-small': path.join(seq2seqDir, 'tiny-t5'),
  'Xenova/vit-base-patch16-224': path.join(visionDir, 'tiny-vit-classifier'),
  'Xenova/vit-base-patch16-224-in21k': path.join(visionDir, 'tiny-vit'),
  'Xenova/clip-vit-base-patch32': path.join(visionDir, 'tiny-clip'),
  'Xenova/detr-resnet-50': path.join(visionDir, 'tiny-detr'),
  'Xenova/whisper-tiny.en': path.join(modelsDir, 'whisper-tiny.en'),
  // The real whisper-base stands in for whisper-small: the same architecture, a third of the size.
  'Xenova/whisper-small': path.join(modelsDir, 'whisper-base'),
};
/** A conversion of an architecture webformers does not run (MobileBERT). */
const UNSUPPORTED = 'Xenova/mobilebert-uncased-mnli';

const WEIGHT_FILE = /\.(safetensors|gguf)$|\.safetensors\.index\.json$/;

/** A repository laid out as transformers.js's conversions are, whose card names `base`. */
function conversionOf(folder, base, work) {
  const dir = fs.mkdtempSync(path.join(work, 'conversion-'));
  for (const f of fs.readdirSync(folder)) {
    const from = path.join(folder, f);
    if (fs.statSync(from).isFile() && !WEIGHT_FILE.test(f)) fs.copyFileSync(from, path.join(dir, f));
  }
  fs.writeFileSync(path.join(dir, 'README.md'), `---\nlibrary_name: transformers.js\nbase_model: ${base}\n---\n`);
  fs.mkdirSync(path.join(dir, 'onnx'));
  fs.writeFileSync(path.join(dir, 'onnx', 'model.onnx'), 'an ONNX graph would be here');
  return dir;
}

let hub;
let media;
let work;
const savedEnv = { ...env };

before(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'webformers-port-'));
  const repos = {};
  for (const [id, folder] of Object.entries(SERVED)) {
    const base = `base-models/${id.split('/')[1]}`;
    repos[base] = folder;
    repos[id] = conversionOf(folder, base, work);
  }
  // MobileBERT: its config and tokenizer, and a weights file with no tensors (the load stops at the config).
  const mobilebert = fs.mkdtempSync(path.join(work, 'mobilebert-'));
  fs.writeFileSync(path.join(mobilebert, 'config.json'), JSON.stringify({ model_type: 'mobilebert', architectures: ['MobileBertForSequenceClassification'] }));
  fs.copyFileSync(path.join(minilmDir, 'tokenizer.json'), path.join(mobilebert, 'tokenizer.json'));
  const header = Buffer.from('{}      ');
  const headerLength = Buffer.alloc(8);
  headerLength.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(path.join(mobilebert, 'model.safetensors'), Buffer.concat([headerLength, header]));
  repos['base-models/mobilebert-uncased-mnli'] = mobilebert;
  repos[UNSUPPORTED] = conversionOf(mobilebert, 'base-models/mobilebert-uncased-mnli', work);
  // AutoTokenizer's example loads bert-base-uncased's tokenizer; all-MiniLM-L6-v2 has the same vocabulary.
  repos['Xenova/bert-base-uncased'] = conversionOf(minilmDir, 'base-models/all-MiniLM-L6-v2', work);
  hub = await startHub(repos);
  // The docs' images and audio come from URLs; here from a local server (no network in CI).
  media = await startServer({ mounts: { '/': fixturesDir } });
  // Test set-up, not part of any snippet: the stand-in instead of huggingface.co, a cache of our own.
  Object.assign(env, { remoteHost: `${hub.endpoint}/`, allowLocalModels: false, cacheDir: path.join(work, 'cache') });
});

after(async () => {
  Object.assign(env, savedEnv);
  await hub?.close();
  await media?.close();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

const tinyTasks = tinyTasksReference();
/** The tiny-tasks case of `task` on `model` with `options` (and `input`, when given). */
function tinyCase(task, model, options, input) {
  const c = tinyTasks.cases.find(
    (c) => c.task === task && c.model === model && JSON.stringify(c.options) === JSON.stringify(options) && (input === undefined || JSON.stringify(c.input) === JSON.stringify(input)),
  );
  assert.ok(c, `no reference case for ${task} on ${model} with ${JSON.stringify(options)}`);
  return c;
}

function visionCase(task, model, input, options) {
  for (const ref of visionReferences()) {
    const c = ref.cases.find((c) => c.task === task && c.model === model && JSON.stringify(c.input) === JSON.stringify(input) && JSON.stringify(c.options) === JSON.stringify(options));
    if (c) return { ...c, tolerance: ref.tolerance };
  }
  assert.fail(`no reference case for ${task} on ${model} (${input}, ${JSON.stringify(options)})`);
}

function seq2seqCase(task, model, options) {
  const c = casesOf(model).find((c) => c.task === task && typeof c.input === 'string' && JSON.stringify(c.options) === JSON.stringify(options));
  assert.ok(c, `no reference case for ${task} on ${model} with ${JSON.stringify(options)}`);
  return c;
}

const image = (name) => `${media.url}images/${name}`;

describe("the README's quick tour", () => {
  test("pipeline('sentiment-analysis') with its default model", async () => {
    const c = tinyCase('text-classification', 'distilbert-sequence-classification', {});
    const pipe = await pipeline('sentiment-analysis');
    const out = await pipe(c.input);
    assertClose(out, c.output, tinyTasks.tolerance);
    await pipe.dispose();
  });
});

describe('feature-extraction', () => {
  test("Xenova/all-MiniLM-L6-v2 with { pooling: 'mean', normalize: true }, then .tolist()", async () => {
    const ref = minilmReference();
    const sentences = ref.inputs.slice(0, 2).map((i) => i.text);
    const extractor = await pipeline('feature-extraction', 'Xenova/all-MiniLM-L6-v2');
    const output = await extractor(sentences, { pooling: 'mean', normalize: true });
    assert.deepEqual(output.dims, [2, 384]);
    assert.equal(output.type, 'float32');
    const worst = maxAbsDiff(output.data, { ...ref, inputs: ref.inputs.slice(0, 2) });
    assert.ok(worst <= TOLERANCE, `max |diff| ${worst}`);
    const list = output.tolist();
    assert.equal(list.length, 2);
    assert.equal(list[1][5], output.data[384 + 5]);
    await extractor.dispose();
  });
});

describe('text-classification', () => {
  test("Xenova/toxic-bert (multi-label, sigmoid) with { top_k: null }", async () => {
    const c = tinyCase('text-classification', 'bert-multi-label', { top_k: null });
    const classifier = await pipeline('text-classification', 'Xenova/toxic-bert');
    assertClose(await classifier(c.input, { top_k: null }), c.output, tinyTasks.tolerance);
    await classifier.dispose();
  });
});

describe('token-classification', () => {
  test('Xenova/bert-base-NER, plain and with { ignore_labels: [] }', async () => {
    const classifier = await pipeline('token-classification', 'Xenova/bert-base-NER');
    for (const options of [{}, { ignore_labels: [] }]) {
      const c = tinyCase('token-classification', 'bert-token-classification', options, 'The baker sells warm bread to the farmers at the market by the old bridge.');
      assertClose(await classifier(c.input, options), c.output, tinyTasks.tolerance, JSON.stringify(options));
    }
    await classifier.dispose();
  });
});

describe('question-answering', () => {
  test('Xenova/distilbert-base-uncased-distilled-squad: answerer(question, context)', async () => {
    const c = tinyCase('question-answering', 'distilbert-question-answering', {});
    const answerer = await pipeline('question-answering', 'Xenova/distilbert-base-uncased-distilled-squad');
    assertClose(await answerer(c.input.question, c.input.context), c.output, tinyTasks.tolerance);
    await answerer.dispose();
  });
});

describe('fill-mask', () => {
  test('Xenova/bert-base-cased with { top_k: 1 }', async () => {
    const c = tinyCase('fill-mask', 'bert-masked-lm', { top_k: 1 });
    const unmasker = await pipeline('fill-mask', 'Xenova/bert-base-cased');
    assertClose(await unmasker(c.input, { top_k: 1 }), c.output, tinyTasks.tolerance);
    await unmasker.dispose();
  });
});

describe('zero-shot-classification', () => {
  test('Xenova/nli-deberta-v3-xsmall: classifier(text, labels, { multi_label: true })', async () => {
    const c = tinyCase('zero-shot-classification', 'deberta-v2-sequence-classification', { candidate_labels: ['bread', 'river', 'music'], multi_label: true });
    const classifier = await pipeline('zero-shot-classification', 'Xenova/nli-deberta-v3-xsmall');
    assertClose(await classifier(c.input, c.options.candidate_labels, { multi_label: true }), c.output, tinyTasks.tolerance);
    await classifier.dispose();
  });

  test('Xenova/mobilebert-uncased-mnli does not run: MobileBERT is not an architecture of webformers (a clear error)', async () => {
    await assert.rejects(pipeline('zero-shot-classification', UNSUPPORTED), (e) => {
      assert.equal(e.code, 'unsupported');
      assert.match(e.message, /model_type `mobilebert` .* has no text encoder here; supported: bert,/);
      return true;
    });
  });
});

describe('text-generation', () => {
  const decoders = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'tiny-decoders-reference.json'), 'utf8')).models;

  test('Xenova/distilgpt2: generator(text, { max_new_tokens })', async () => {
    const prompt = decoders['tiny-gpt2'].prompts[0];
    const generator = await pipeline('text-generation', 'Xenova/distilgpt2');
    const output = await generator(prompt.text, { max_new_tokens: prompt.greedy_ids.length });
    assert.equal(output.length, 1);
    assert.equal(output[0].generated_text, prompt.text + prompt.greedy_text);
    await generator.dispose();
  });

  test("a chat: generator(messages, { max_new_tokens, do_sample: false, streamer: new TextStreamer(...) }), the reply in output[0].generated_text.at(-1).content", async () => {
    const row = decoders['tiny-llama'].chat_batch.rows[0];
    const generator = await pipeline('text-generation', 'onnx-community/Llama-3.2-1B-Instruct');
    // The docs' streamer prints to stdout; the test reads what it printed.
    const printed = [];
    const write = process.stdout.write;
    process.stdout.write = (chunk, ...rest) => (printed.push(String(chunk)), true);
    let output;
    try {
      output = await generator(row.messages, {
        max_new_tokens: row.greedy_ids.length,
        do_sample: false,
        streamer: new TextStreamer(generator.tokenizer, { skip_prompt: true, skip_special_tokens: true }),
      });
    } finally {
      process.stdout.write = write;
    }
    assert.deepEqual(output[0].generated_text.slice(0, -1), row.messages);
    const reply = output[0].generated_text.at(-1);
    assert.equal(reply.role, 'assistant');
    assert.equal(reply.content, row.greedy_text);
    assert.equal(printed.join(''), `${row.greedy_text}\n`);
    await generator.dispose();
  });

  for (const dtype of ['q4', 'q4f16']) {
    test(`the chat with the docs' { dtype: '${dtype}' }: runs (weights quantized at load, so no Python reference)`, async () => {
      const row = decoders['tiny-llama'].chat_batch.rows[0];
      const generator = await pipeline('text-generation', 'onnx-community/Llama-3.2-1B-Instruct', { dtype });
      const output = await generator(row.messages, { max_new_tokens: 8, do_sample: false });
      assert.deepEqual(output[0].generated_text.slice(0, -1), row.messages);
      const reply = output[0].generated_text.at(-1);
      assert.equal(reply.role, 'assistant');
      assert.equal(typeof reply.content, 'string');
      assert.equal(output[0].stats.new_tokens, 8);
      await generator.dispose();
    });
  }

  test("the docs' { device: 'webgpu' } in Node: not here (Node has no WebGPU), a clear error with code no_adapter", async () => {
    await assert.rejects(pipeline('text-generation', 'onnx-community/Llama-3.2-1B-Instruct', { device: 'webgpu' }), (e) => {
      assert.equal(e.code, 'no_adapter');
      assert.match(e.message, /use device 'wasm'/);
      return true;
    });
  });
});

describe('translation, summarization, text2text-generation', () => {
  test('Xenova/nllb-200-distilled-600M with { src_lang, tgt_lang } (FLORES-200 codes)', async () => {
    const c = seq2seqCase('translation', 'tiny-nllb', { src_lang: 'eng_Latn', tgt_lang: 'fra_Latn' });
    const translator = await pipeline('translation', 'Xenova/nllb-200-distilled-600M');
    assert.deepEqual(await translator(c.input, { src_lang: 'eng_Latn', tgt_lang: 'fra_Latn' }), c.output);
    await translator.dispose();
  });

  test("Xenova/m2m100_418M with { src_lang: 'en', tgt_lang: 'fr' }", async () => {
    const c = seq2seqCase('translation', 'tiny-m2m100', { src_lang: 'en', tgt_lang: 'fr' });
    const translator = await pipeline('translation', 'Xenova/m2m100_418M');
    assert.deepEqual(await translator(c.input, { src_lang: 'en', tgt_lang: 'fr' }), c.output);
    await translator.dispose();
  });

  test('Xenova/distilbart-cnn-6-6: generator(text, { max_new_tokens })', async () => {
    const c = seq2seqCase('summarization', 'tiny-bart', { max_new_tokens: 5 });
    const generator = await pipeline('summarization', 'Xenova/distilbart-cnn-6-6');
    assert.deepEqual(await generator(c.input, { max_new_tokens: 5 }), c.output);
    await generator.dispose();
  });

  test('Xenova/LaMini-Flan-T5-783M: text2text-generation', async () => {
    const c = seq2seqCase('text2text-generation', 'tiny-flan-t5', {});
    const generator = await pipeline('text2text-generation', 'Xenova/LaMini-Flan-T5-783M');
    assert.deepEqual(await generator(c.input), c.output);
    await generator.dispose();
  });
});

describe('image tasks (images by URL)', () => {
  test('Xenova/vit-base-patch16-224: classifier(url, { top_k: 1 })', async () => {
    const c = visionCase('image-classification', 'tiny-vit-classifier', 'cat.jpg', { top_k: 1 });
    const classifier = await pipeline('image-classification', 'Xenova/vit-base-patch16-224');
    assertClose(await classifier(image('cat.jpg'), { top_k: 1 }), c.output, c.tolerance);
    await classifier.dispose();
  });

  test("Xenova/clip-vit-base-patch32: classifier(url, labels)", async () => {
    const c = visionCase('zero-shot-image-classification', 'tiny-clip', 'astronaut.webp', { candidate_labels: ['cat', 'dog', 'bridge'] });
    const classifier = await pipeline('zero-shot-image-classification', 'Xenova/clip-vit-base-patch32');
    assertClose(await classifier(image('astronaut.webp'), c.options.candidate_labels), c.output, c.tolerance);
    await classifier.dispose();
  });

  test('Xenova/detr-resnet-50: detector(url, { threshold, percentage: true })', async () => {
    const c = visionCase('object-detection', 'tiny-detr', 'coffee.png', { threshold: 0.3, percentage: true });
    const detector = await pipeline('object-detection', 'Xenova/detr-resnet-50');
    assertClose(await detector(image('coffee.png'), { threshold: 0.3, percentage: true }), c.output, c.tolerance);
    await detector.dispose();
  });

  test('Xenova/vit-base-patch16-224-in21k: image_feature_extractor(url), a Tensor', async () => {
    const c = visionCase('image-feature-extraction', 'tiny-vit', 'cat.jpg', { pool: true });
    const image_feature_extractor = await pipeline('image-feature-extraction', 'Xenova/vit-base-patch16-224-in21k');
    const features = await image_feature_extractor(image('cat.jpg'), { pool: true });
    assert.ok(features instanceof Tensor);
    assert.deepEqual(features.dims, c.output.dims);
    assertClose(features.tolist(), c.output.data, c.tolerance);
    await image_feature_extractor.dispose();
  });
});

describe('automatic-speech-recognition (audio by URL)', () => {
  test("Xenova/whisper-tiny.en: transcriber(url), with { return_timestamps: true } and 'word'", async () => {
    const transcriber = await pipeline('automatic-speech-recognition', 'Xenova/whisper-tiny.en');
    const url = `${media.url}speech/us-short.flac`;
    const cases = pipelineCases('whisper-tiny.en', 'us-short.flac');
    for (const options of [{}, { return_timestamps: true }, { return_timestamps: 'word' }]) {
      const c = cases.find((c) => JSON.stringify(c.options) === JSON.stringify(options));
      assert.ok(c, `no reference for ${JSON.stringify(options)}`);
      checkTranscription(await transcriber(url, options), c.expected, JSON.stringify(options));
    }
    await transcriber.dispose();
  });

  test("Xenova/whisper-small (multilingual): transcriber(url, { language, task: 'transcribe' })", async () => {
    const c = pipelineCases('whisper-base', 'us-short.flac').find((c) => c.options.task === 'transcribe');
    assert.ok(c, 'no reference for language and task');
    const transcriber = await pipeline('automatic-speech-recognition', 'Xenova/whisper-small');
    checkTranscription(await transcriber(`${media.url}speech/us-short.flac`, { language: c.options.language, task: 'transcribe' }), c.expected, 'language');
    await transcriber.dispose();
  });
});

/** The best id of a row of logits and its softmax probability, as the docs read a class off them. */
function top(row) {
  const max = Math.max(...row);
  const exps = Array.from(row, (x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  const id = exps.indexOf(Math.max(...exps));
  return { id, score: exps[id] / sum };
}

/** The top label of a row of logits, as the pipelines answer it. */
function topLabel(row, id2label) {
  const { id, score } = top(row);
  return { label: id2label[id], score };
}

describe('models and processors: AutoModel, AutoModelFor..., AutoProcessor, the Tensor helpers', () => {
  test("AutoModel's documented { logits } on Xenova/bert-base-uncased: the base model here, so last_hidden_state (logits: AutoModelForMaskedLM)", async () => {
    const ref = minilmReference();
    const tokenizer = await AutoTokenizer.from_pretrained('Xenova/bert-base-uncased');
    const model = await AutoModel.from_pretrained('Xenova/bert-base-uncased');
    const inputs = await tokenizer(ref.inputs[0].text);
    const { logits, last_hidden_state } = await model(inputs);
    // transformers.js's conversion of bert-base-uncased carries the masked-LM head, so its
    // AutoModel answers logits; here AutoModel is the base model, as in Python's transformers.
    assert.equal(logits, undefined);
    assert.deepEqual(last_hidden_state.dims, [1, ref.inputs[0].num_tokens, ref.hidden_size]);
    const rows = ref.inputs[0].last_hidden_state;
    assert.ok(rows, 'the reference has every token of its first input');
    const worst = Math.max(...rows.flat().map((x, i) => Math.abs(x - last_hidden_state.data[i])));
    assert.ok(worst <= TOLERANCE, `max |diff| ${worst}`);
    await model.dispose();
  });

  test('the one-line change for logits: AutoModelForMaskedLM on Xenova/bert-base-cased, the mask\'s top token is fill-mask\'s', async () => {
    const c = tinyCase('fill-mask', 'bert-masked-lm', { top_k: 1 });
    const tokenizer = await AutoTokenizer.from_pretrained('Xenova/bert-base-cased');
    const model = await AutoModelForMaskedLM.from_pretrained('Xenova/bert-base-cased');
    const inputs = await tokenizer(c.input);
    const { logits } = await model(inputs);
    const at = [...inputs.input_ids.data].indexOf(BigInt(tokenizer.mask_token_id));
    const best = top(logits[0][at].data);
    assert.equal(best.id, c.output[0].token);
    assert.ok(Math.abs(best.score - c.output[0].score) <= tinyTasks.tolerance, `${best.score} vs Python's ${c.output[0].score}`);
    await model.dispose();
  });

  test("sentence embeddings: tokenizer(texts, { padding: true, truncation: true }), { last_hidden_state }, mean_pooling(...).normalize(), cos_sim, quantize_embeddings", async () => {
    const ref = minilmReference();
    const texts = ref.inputs.slice(4, 8).map((i) => i.text);
    const tokenizer = await AutoTokenizer.from_pretrained('Xenova/all-MiniLM-L6-v2');
    const model = await AutoModel.from_pretrained('Xenova/all-MiniLM-L6-v2');
    const inputs = await tokenizer(texts, { padding: true, truncation: true });
    const { last_hidden_state } = await model(inputs);
    const embeddings = mean_pooling(last_hidden_state, inputs.attention_mask).normalize();
    assert.deepEqual(embeddings.dims, [texts.length, ref.hidden_size]);
    const expected = ref.inputs.slice(4, 8).map((i) => i.embedding);
    const worst = Math.max(...expected.flatMap((row, i) => row.map((x, j) => Math.abs(x - embeddings[i].data[j]))));
    assert.ok(worst <= TOLERANCE, `embeddings: max |diff| ${worst}`);
    // The docs compare sentences with cos_sim of two rows (plain arrays, as .tolist() gives).
    const [first, second] = embeddings.tolist();
    const similarity = cos_sim(first, second);
    const dot = expected[0].reduce((sum, x, j) => sum + x * expected[1][j], 0);
    assert.ok(Math.abs(similarity - dot) <= 2 * TOLERANCE, `cos_sim ${similarity} vs PyTorch's ${dot}`);
    // Binary embeddings: one bit per value, set where the value is above 0 (checked where
    // PyTorch's value is farther from 0 than the tolerance, so a rounding cannot flip it).
    const bits = quantize_embeddings(embeddings, 'ubinary');
    assert.deepEqual(bits.dims, [texts.length, ref.hidden_size / 8]);
    expected.forEach((row, i) =>
      row.forEach((x, j) => {
        if (Math.abs(x) <= TOLERANCE) return;
        const bit = (bits.data[i * (ref.hidden_size / 8) + (j >> 3)] >> (7 - (j & 7))) & 1;
        assert.equal(bit, x > 0 ? 1 : 0, `row ${i} value ${j}`);
      }),
    );
    await model.dispose();
  });

  test('AutoModelForSequenceClassification on Xenova/distilbert-base-uncased-finetuned-sst-2-english: { logits }, the label by id2label', async () => {
    const c = tinyCase('text-classification', 'distilbert-sequence-classification', {});
    const tokenizer = await AutoTokenizer.from_pretrained('Xenova/distilbert-base-uncased-finetuned-sst-2-english');
    const model = await AutoModelForSequenceClassification.from_pretrained('Xenova/distilbert-base-uncased-finetuned-sst-2-english');
    const inputs = await tokenizer(c.input);
    const { logits } = await model(inputs);
    assertClose([topLabel(logits[0].data, model.config.id2label)], c.output, tinyTasks.tolerance);
    await model.dispose();
  });

  test('AutoModelForCausalLM on Xenova/distilgpt2: model.generate({ ...inputs, max_new_tokens }), tokenizer.batch_decode(outputs, { skip_special_tokens: true })', async () => {
    const prompt = JSON.parse(fs.readFileSync(path.join(fixturesDir, 'tiny-decoders-reference.json'), 'utf8')).models['tiny-gpt2'].prompts[0];
    const tokenizer = await AutoTokenizer.from_pretrained('Xenova/distilgpt2');
    const model = await AutoModelForCausalLM.from_pretrained('Xenova/distilgpt2');
    const inputs = await tokenizer(prompt.text);
    const outputs = await model.generate({ ...inputs, max_new_tokens: prompt.greedy_ids.length });
    assert.deepEqual(tokenizer.batch_decode(outputs, { skip_special_tokens: true }), [prompt.text + prompt.greedy_text]);
    await model.dispose();
  });

  test("AutoModelForSeq2SeqLM on Xenova/t5-small: model.generate({ input_ids }), tokenizer.decode(outputs[0], { skip_special_tokens: true })", async () => {
    const reference = JSON.parse(fs.readFileSync(path.join(seq2seqDir, 'auto-model-reference.json'), 'utf8'));
    const m = reference.text['tiny-t5'];
    const tokenizer = await AutoTokenizer.from_pretrained('Xenova/t5-small');
    const model = await AutoModelForSeq2SeqLM.from_pretrained('Xenova/t5-small');
    // The reference's first text (the docs' own sentence has no reference), unpadded in its batch.
    const { input_ids } = await tokenizer('The quick brown fox jumps over the lazy dog.');
    assert.deepEqual(Array.from(input_ids.data, Number), m.input_ids[0]);
    const outputs = await model.generate({ input_ids, max_new_tokens: reference.max_new_tokens });
    assert.deepEqual(Array.from(outputs[0].data, Number), m.greedy[0], "transformers' greedy ids, the start token first");
    assert.equal(tokenizer.decode(outputs[0], { skip_special_tokens: true }), tokenizer.decode(m.greedy[0], { skip_special_tokens: true }));
    await model.dispose();
  });

  test('AutoProcessor and AutoModelForImageClassification on Xenova/vit-base-patch16-224: processor(await RawImage.read(url)), { logits }', async () => {
    const c = visionCase('image-classification', 'tiny-vit-classifier', 'cat.jpg', { top_k: 1 });
    const processor = await AutoProcessor.from_pretrained('Xenova/vit-base-patch16-224');
    const model = await AutoModelForImageClassification.from_pretrained('Xenova/vit-base-patch16-224');
    const picture = await RawImage.read(image('cat.jpg'));
    const inputs = await processor(picture);
    const { logits } = await model(inputs);
    assertClose([topLabel(logits[0].data, model.config.id2label)], c.output, c.tolerance);
    await model.dispose();
  });
});

describe('AutoTokenizer, Tensor, env', () => {
  test("AutoTokenizer.from_pretrained('Xenova/bert-base-uncased'); const { input_ids } = await tokenizer(text)", async () => {
    const tokenizer = await AutoTokenizer.from_pretrained('Xenova/bert-base-uncased');
    const { input_ids } = await tokenizer('I love transformers!');
    assert.deepEqual(input_ids.dims, [1, 6]);
    assert.equal(input_ids.type, 'int64');
    // bert-base-uncased's ids for these words, as the docs print them.
    assert.deepEqual([...input_ids.data], [101n, 1045n, 2293n, 19081n, 999n, 102n]);
    assert.equal(tokenizer.decode([...input_ids.data].map(Number), { skip_special_tokens: true }), 'i love transformers!');
  });

  test('new Tensor(type, data, dims), .tolist(), cat, mean_pooling', () => {
    const a = new Tensor('float32', [1, 2, 3, 4, 5, 6], [1, 3, 2]);
    assert.deepEqual(a.tolist(), [[[1, 2], [3, 4], [5, 6]]]);
    assert.deepEqual(cat([a, a], 0).dims, [2, 3, 2]);
    const mask = new Tensor('int64', [1n, 1n, 0n], [1, 3]);
    assert.deepEqual(mean_pooling(a, mask).tolist(), [[2, 3]]);
  });

  test('env.allowRemoteModels = false and env.localModelPath: models from a local folder only', async () => {
    const saved = { ...env };
    try {
      env.allowLocalModels = true;
      env.allowRemoteModels = false;
      env.localModelPath = tinyTasksDir;
      const c = tinyCase('text-classification', 'distilbert-sequence-classification', {});
      const pipe = await pipeline('text-classification', 'distilbert-sequence-classification');
      assertClose(await pipe(c.input), c.output, tinyTasks.tolerance);
      await pipe.dispose();
      await assert.rejects(pipeline('text-classification', 'Xenova/toxic-bert'));
    } finally {
      Object.assign(env, saved);
    }
  });
});

describe('in a page (Chromium, WASM): the same snippets, imported by name through an import map', () => {
  let server;
  let browser;
  before(async () => {
    server = await startServer({ mounts: { '/': path.join(here, 'pages'), '/webformers/': distDir, '/fixtures/': fixturesDir } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test("the quick tour's sentiment-analysis, and image-classification's classifier(url)", { timeout: 120_000 }, async () => {
    const sentiment = tinyCase('text-classification', 'distilbert-sequence-classification', {});
    const image = visionCase('image-classification', 'tiny-vit-classifier', 'coffee.png', {});
    const p = await openPage(browser, `${server.url}port.html`);
    const out = await evaluateWithin(
      p,
      100,
      async (endpoint, text, url) => {
        const { pipeline, env } = await import('webformers');
        env.remoteHost = `${endpoint}/`; // test set-up: the Hub stand-in
        env.allowLocalModels = false;
        const pipe = await pipeline('sentiment-analysis');
        const sentiment = await pipe(text);
        const classifier = await pipeline('image-classification', 'Xenova/vit-base-patch16-224');
        const labels = await classifier(url);
        return { sentiment, labels, device: pipe.device };
      },
      hub.endpoint,
      sentiment.input,
      `${server.url}fixtures/images/coffee.png`,
    );
    assert.equal(out.device, 'wasm');
    assertClose(out.sentiment, sentiment.output, tinyTasks.tolerance);
    assertClose(out.labels, image.output, image.tolerance);
    // The optional files the repositories lack (special_tokens_map.json, ...) are 404s, as on the Hub.
    assert.deepEqual(problemsBut404(p), []);
    await p.close();
  });
});
