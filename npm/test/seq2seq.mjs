// What the text encoder-decoder tests share (seq2seq-node.test.mjs, seq2seq-browser.test.mjs):
// the tiny random Marian, BART, M2M100, NLLB, T5 and Flan-T5 models of tests/fixtures/seq2seq and
// Python transformers 4.57.6's `pipeline()` answers for them (reference.json,
// tests/reference/make_tiny_seq2seq.py), greedy and beam search, which the package must give
// exactly.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fixturesDir } from './helpers.mjs';

export const seq2seqDir = path.join(fixturesDir, 'seq2seq');
/** Every architecture's tiny model (tiny-marian-separate differs from tiny-marian only in its weights' layout). */
export const MODELS = ['tiny-marian', 'tiny-marian-separate', 'tiny-bart', 'tiny-m2m100', 'tiny-nllb', 'tiny-t5', 'tiny-flan-t5'];
/** The fixtures' encoders (and tokenizers' model_max_length) hold 64 positions; the T5s' tokenizers 512 (T5 has no position table). */
export const MAX_POSITIONS = 64;

/** The tokens `model` reads of a text (its tokenizer's model_max_length), past which it cuts. */
export const maxPositionsOf = (model) =>
  JSON.parse(fs.readFileSync(path.join(seq2seqDir, model, 'tokenizer_config.json'), 'utf8')).model_max_length;

export const reference = () => JSON.parse(fs.readFileSync(path.join(seq2seqDir, 'reference.json'), 'utf8'));

/** Every pipeline case of `model`: `{task, input, options, output}`. */
export const casesOf = (model) => reference().cases.filter((c) => c.model === model);

/** The text of one output object (`translation_text`, `summary_text` or `generated_text`). */
export const textOf = (o) => Object.values(o)[0];

/**
 * What a call streams: the best result of each text (beam search streams its best sequence only,
 * at the end; num_return_sequences results per text come one after another in the output).
 */
export function expectedStream(c) {
  const perText = c.options.num_return_sequences ?? 1;
  return c.output.filter((_, i) => i % perText === 0).map(textOf).join('');
}

/** `got` (a call's outcome: `{value, streamed}`) against the case: identical output and streamed text. */
export function checkCase(got, c, label) {
  assert.ok(!got.error, `${label}: ${got.error}`);
  assert.deepEqual(got.value, c.output, `${label}: output`);
  assert.equal(got.streamed, expectedStream(c), `${label}: streamed text`);
}

/** The case's label in messages. */
export const labelOf = (c) => `${c.task} ${c.model} ${JSON.stringify(c.input).slice(0, 40)} ${JSON.stringify(c.options)}`;

/** Whether a text is longer than any fixture's encoder reads (the reference's long text, 400 words: 1230 T5 tokens). */
export const isLong = (text) => text.split(/\s+/).length > MAX_POSITIONS;
