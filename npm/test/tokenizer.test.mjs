// AutoTokenizer against transformers.js 4.3.1's, loaded from the same folders side by side in
// this test (WordPiece: all-MiniLM-L6-v2; byte-level BPE: tiny-bart; Unigram: tiny-marian,
// tiny-deberta-v2; a chat template: tiny-llama): encode (texts, pairs, without special tokens),
// the call (one text, batches padded right and left, return_tensor false, token_type_ids where
// transformers.js returns them), decode and batch_decode (skipping special tokens or not, from
// arrays, BigInts and Tensors), special tokens, apply_chat_template (text and ids): identical.
// Truncation is Python's (special tokens kept; transformers.js cuts them off), checked against
// the untruncated encoding. And bad input. transformers.js comes from bench/transformersjs
// (scripts/test-npm.sh installs it); the package from npm/dist.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..', '..');
const ours = await import(pathToFileURL(path.join(here, '..', 'dist', 'index.js')).href);
const theirs = await import(
  pathToFileURL(path.join(root, 'bench', 'transformersjs', 'node_modules', '@huggingface', 'transformers', 'dist', 'transformers.node.mjs')).href
);
theirs.env.allowRemoteModels = false;
theirs.env.allowLocalModels = true;
theirs.env.useFSCache = false;

const FOLDERS = {
  'all-MiniLM-L6-v2': path.join(root, '.cache', 'models', 'all-MiniLM-L6-v2'),
  'tiny-bart': path.join(root, 'tests', 'fixtures', 'seq2seq', 'tiny-bart'),
  'tiny-marian': path.join(root, 'tests', 'fixtures', 'seq2seq', 'tiny-marian'),
  'tiny-deberta-v2': path.join(root, 'tests', 'fixtures', 'tiny-tasks', 'deberta-v2-masked-lm'),
  'tiny-llama': path.join(root, 'tests', 'fixtures', 'tiny-llama'),
};

const TEXTS = [
  'Hello world!',
  'The quick brown fox jumps over the lazy dog, doesn\'t it?',
  'Café déjà vu — naïve résumé (über) 東京 🙂',
  '  spaces   and\ttabs\n',
];

/** transformers.js's tokenizer of a folder (its localModelPath set to the folder's parent). */
function loadTheirs(folder) {
  theirs.env.localModelPath = path.dirname(folder) + path.sep;
  return theirs.AutoTokenizer.from_pretrained(path.basename(folder));
}

/** A call's result (Tensors or arrays) as plain data. */
const plain = (out) =>
  Object.fromEntries(
    Object.entries(out)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, v?.dims ? { dims: v.dims, type: v.type, data: Array.from(v.data, String) } : v]),
  );

for (const [name, folder] of Object.entries(FOLDERS)) {
  describe(`${name}: AutoTokenizer as transformers.js's`, async () => {
    const mine = await ours.AutoTokenizer.from_pretrained(folder);
    const reference = await loadTheirs(folder);
    after(() => mine.dispose());

    test('encode, tokenize, decode', () => {
      for (const text of TEXTS) {
        const ids = mine.encode(text);
        assert.deepEqual(ids, reference.encode(text), `encode ${JSON.stringify(text)}`);
        assert.deepEqual(mine.encode(text, { add_special_tokens: false }), reference.encode(text, { add_special_tokens: false }));
        assert.deepEqual(mine.encode(text, { text_pair: 'a second text' }), reference.encode(text, { text_pair: 'a second text' }));
        assert.deepEqual(mine.tokenize(text), reference.tokenize(text), `tokenize ${JSON.stringify(text)}`);
        for (const skip_special_tokens of [false, true]) {
          assert.equal(mine.decode(ids, { skip_special_tokens }), reference.decode(ids, { skip_special_tokens }), `decode ${JSON.stringify(text)} skip ${skip_special_tokens}`);
        }
        assert.equal(mine.decode(ids.map(BigInt)), reference.decode(ids.map(BigInt)), 'BigInt ids');
      }
    });

    test('the call: one text, padded batches, pairs, return_tensor false', () => {
      const cases = [
        [TEXTS[0], {}],
        [TEXTS.slice(0, 3), { padding: true }],
        [TEXTS.slice(0, 2), { text_pair: ['x', 'a longer second text'], padding: true }],
        [TEXTS.slice(0, 3), { padding: true, return_tensor: false }],
        [TEXTS[1], { return_tensor: false }],
        // padded to a length past the longest (truncation cuts differently: see below)
        [TEXTS.slice(0, 2), { padding: 'max_length', max_length: Math.max(...TEXTS.slice(0, 2).map((t) => reference.encode(t).length)) + 3, truncation: true }],
      ];
      for (const [input, options] of cases) {
        assert.deepEqual(plain(mine(input, options)), plain(reference(input, options)), `${JSON.stringify(input).slice(0, 40)} ${JSON.stringify(options)}`);
      }
      const { input_ids } = mine(TEXTS.slice(0, 3), { padding: true });
      assert.deepEqual(mine.batch_decode(input_ids, { skip_special_tokens: true }), reference.batch_decode(reference(TEXTS.slice(0, 3), { padding: true }).input_ids, { skip_special_tokens: true }));
      assert.equal(mine.decode(input_ids[1]), reference.decode(reference(TEXTS.slice(0, 3), { padding: true }).input_ids[1]), 'a Tensor row');
    });

    test('special tokens and settings', () => {
      for (const key of ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'mask_token']) {
        assert.equal(mine[key] ?? null, reference[key] ?? null, key);
        assert.equal(mine[`${key}_id`], reference[`${key}_id`], `${key}_id`);
      }
      assert.deepEqual([...mine.all_special_ids].sort(), [...reference.all_special_ids].sort());
      assert.equal(mine.model_max_length, reference.model_max_length);
      assert.equal(mine.padding_side, reference.padding_side);
    });

    test("truncation is Python's: cut to max_length with the special tokens kept", () => {
      const whole = mine.encode(TEXTS[1]);
      const content = mine.encode(TEXTS[1], { add_special_tokens: false });
      // whole = [leading specials, content, trailing specials]
      const lead = whole.findIndex((_, i) => content.every((id, j) => whole[i + j] === id));
      const trail = whole.length - lead - content.length;
      const want = [...whole.slice(0, lead), ...content.slice(0, 6 - lead - trail), ...whole.slice(whole.length - trail)];
      assert.ok(lead >= 0 && whole.length > 6);
      assert.deepEqual(mine(TEXTS[1], { truncation: true, max_length: 6, return_tensor: false }).input_ids, want);
    });
  });
}

describe('chat templates', async () => {
  const folder = FOLDERS['tiny-llama'];
  const mine = await ours.AutoTokenizer.from_pretrained(folder);
  const reference = await loadTheirs(folder);
  after(() => mine.dispose());
  const messages = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Hi!' },
    { role: 'assistant', content: 'Hello.' },
    { role: 'user', content: 'What is 2 + 2?' },
  ];

  test('apply_chat_template: text and ids as transformers.js renders them', () => {
    for (const add_generation_prompt of [false, true]) {
      const text = mine.apply_chat_template(messages, { tokenize: false, add_generation_prompt });
      assert.equal(text, reference.apply_chat_template(messages, { tokenize: false, add_generation_prompt }));
      assert.deepEqual(
        plain({ ids: mine.apply_chat_template(messages, { add_generation_prompt, return_dict: false }) }),
        plain({ ids: reference.apply_chat_template(messages, { add_generation_prompt, return_dict: false }) }),
      );
    }
    const template = '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}';
    assert.equal(mine.apply_chat_template(messages, { tokenize: false, chat_template: template }), reference.apply_chat_template(messages, { tokenize: false, chat_template: template }));
  });

  test("tools, documents and template variables as Python transformers renders them (chat/reference.json)", () => {
    const cases = JSON.parse(fs.readFileSync(path.join(root, 'tests', 'fixtures', 'chat', 'reference.json'), 'utf8')).cases;
    const ours = cases.filter((c) => c.name.startsWith('tiny-llama override'));
    assert.equal(ours.length, 2);
    for (const c of ours) {
      const { tools, documents, add_generation_prompt } = c;
      const text = mine.apply_chat_template(c.messages, { tokenize: false, chat_template: c.source, tools, documents, add_generation_prompt, ...c.extra });
      assert.equal(text, c.rendered, c.name);
    }
  });

  test('bad input is a clear error', async () => {
    assert.throws(() => mine.apply_chat_template(messages, { tools: { name: 'x' } }), /tools must be an array of objects/);
    assert.throws(() => mine.apply_chat_template([], { tokenize: false }), /at least one message/);
    assert.throws(() => mine.decode([]), /non-empty array/);
    assert.throws(() => mine.decode([10 ** 9]), /outside the vocabulary/);
    assert.throws(() => mine(42), /string or an array of strings/);
    assert.throws(() => mine(['a', 'a much longer text than the first']), /padding: true/);
    const minilm = await ours.AutoTokenizer.from_pretrained(FOLDERS['all-MiniLM-L6-v2']);
    assert.throws(() => minilm.apply_chat_template(messages, { tokenize: false }), /no chat template/);
    minilm.dispose();
    await assert.rejects(ours.AutoTokenizer.from_pretrained(path.join(root, 'tests', 'fixtures', 'no-such-model')), /no-such-model does not exist/);
    await assert.rejects(ours.AutoTokenizer.from_pretrained(path.join(root, 'tests', 'fixtures', 'images')), /tokenizer\.json was not found/);
  });
});

describe("a pipeline's tokenizer", () => {
  test('is the model\'s (AutoTokenizer\'s), and streamers still take it', async () => {
    const extractor = await ours.pipeline('feature-extraction', FOLDERS['all-MiniLM-L6-v2'], { device: 'wasm' });
    const reference = await loadTheirs(FOLDERS['all-MiniLM-L6-v2']);
    assert.ok(extractor.tokenizer instanceof ours.PreTrainedTokenizer);
    assert.deepEqual(extractor.tokenizer.encode(TEXTS[1]), reference.encode(TEXTS[1]));
    await extractor.dispose();
    const generator = await ours.pipeline('text-generation', FOLDERS['tiny-llama'], { device: 'wasm' });
    const messages = [{ role: 'user', content: 'Hi!' }];
    const llama = await loadTheirs(FOLDERS['tiny-llama']);
    assert.equal(generator.tokenizer.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true }), llama.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true }));
    let streamed = '';
    const streamer = new ours.TextStreamer(generator.tokenizer, { skip_prompt: true, callback_function: (t) => (streamed += t) });
    const [out] = await generator('Hello', { max_new_tokens: 4, streamer });
    assert.equal('Hello' + streamed, out.generated_text);
    await generator.dispose();
  });
});
