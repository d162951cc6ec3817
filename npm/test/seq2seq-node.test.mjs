// translation, summarization and text2text-generation through the built package's `pipeline()`
// in Node, on WASM: the tiny random Marian, BART, M2M100, NLLB, T5 and Flan-T5 models
// (tests/fixtures/seq2seq) against Python transformers 4.57.6's `pipeline()` answers in
// reference.json (seq2seq.mjs), exactly: every case of every model (greedy and beam search,
// num_return_sequences, arrays of texts, language pairs), the streamed text (TextStreamer,
// callback_function) equal to the result's; transformers.js's call
// shapes (`translation_en_to_fr`, `translator(text, {src_lang, tgt_lang})`); the long text cut
// to the encoder's 64 positions (T5's tokenizer: 512) and said so (warning_callback, else console.warn); an
// AbortSignal or an InterruptableStoppingCriteria stopping a generation; bad input.
// Needs `npm run build` first (scripts/test-npm.sh does it).

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NODE_DEVICES, deviceLabel, distDir, rejectsWith } from './helpers.mjs';
import { MODELS, casesOf, maxPositionsOf, checkCase, expectedStream, isLong, labelOf, seq2seqDir, textOf } from './seq2seq.mjs';

const { pipeline, env, TextStreamer, InterruptableStoppingCriteria, WebformersError } = await import(path.join(distDir, 'index.js'));

const rejects = (promise, pattern, code) => rejectsWith(WebformersError, promise, pattern, code);
const modelDir = (model) => path.join(seq2seqDir, model);

/** One call, its output and what it streamed through `callback_function` and the warnings it reported. */
async function call(pipe, input, options) {
  let streamed = '';
  const warnings = [];
  const value = await pipe(input, { ...options, callback_function: (t) => (streamed += t), warning_callback: (w) => warnings.push(w) });
  return { value, streamed, warnings };
}

for (const device of NODE_DEVICES) {
  for (const model of MODELS) {
    describe(`${model} on ${deviceLabel(device)} in Node`, () => {
      const tasks = [...new Set(casesOf(model).map((c) => c.task))];
      const pipes = {};
      before(async () => {
        for (const task of tasks) pipes[task] = await pipeline(task, modelDir(model), { device });
      });
      after(async () => {
        for (const p of Object.values(pipes)) await p.dispose();
      });

      test(`every case of reference.json (${tasks.join(', ')}): outputs and streamed text identical, the long text said to be cut`, async () => {
        const cases = casesOf(model);
        assert.ok(cases.length >= 13, `reference.json has ${cases.length} cases of ${model}`);
        const max = maxPositionsOf(model);
        let cut = 0;
        for (const c of cases) {
          const pipe = pipes[c.task];
          assert.equal(pipe.task, c.task);
          assert.equal(pipe.device, device);
          // T5 reads any length (65536 is its bound); its tokenizer cuts at 512
          assert.equal(pipe.max_source_positions, model.includes('t5') ? 65536 : max);
          const got = await call(pipe, c.input, c.options);
          checkCase(got, c, labelOf(c));
          const long = (Array.isArray(c.input) ? c.input : [c.input]).filter(isLong).length;
          assert.equal(got.warnings.length, long, `${labelOf(c)}: warnings ${JSON.stringify(got.warnings)}`);
          for (const w of got.warnings) {
            assert.equal(w.type, 'warning');
            const m = w.message.match(/^([a-z0-9-]+): the text is (\d+) tokens long; only its first (\d+) \(the model's maximum\) were read/);
            assert.ok(m, w.message);
            assert.equal(m[1], c.task);
            assert.ok(Number(m[2]) > max, w.message);
            assert.equal(Number(m[3]), max, w.message);
          }
          cut += long;
        }
        assert.equal(cut, tasks.length, 'the long text once per task');
      });

      test('a TextStreamer gets the text as it comes, and the tokens', async () => {
        // greedy, with the multilingual models' languages
        const c = casesOf(model).find((x) => typeof x.input === 'string' && !x.options.num_beams && !x.options.max_new_tokens && !x.options.min_length);
        const pipe = pipes[c.task];
        let streamed = '';
        let ended = 0;
        let steps = 0;
        const streamer = new TextStreamer(pipe.tokenizer, {
          skip_prompt: true,
          callback_function: (t) => (streamed += t),
          token_callback_function: (ids) => {
            assert.ok(ids.every((id) => typeof id === 'bigint'));
            steps++;
          },
        });
        const end = streamer.end.bind(streamer);
        streamer.end = () => {
          ended++;
          end();
        };
        assert.deepEqual(await pipe(c.input, { ...c.options, streamer }), c.output);
        assert.equal(streamed, expectedStream(c));
        assert.equal(ended, 1);
        assert.ok(steps >= 2, `${steps} token steps`);
      });
    });
  }
}

describe('transformers.js call shapes and stopping (tiny-marian)', () => {
  const model = 'tiny-marian';
  const greedy = casesOf(model).filter((c) => c.task === 'translation' && Object.keys(c.options).length === 0 && typeof c.input === 'string');
  let translator;
  before(async () => {
    // transformers.js's `translation_xx_to_yy` names are `translation`.
    translator = await pipeline('translation_en_to_fr', modelDir(model), { device: 'wasm' });
  });
  after(() => translator?.dispose());

  test("translation_en_to_fr, src_lang / tgt_lang (ignored by a one-pair model, as transformers.js does), arrays of texts", async () => {
    assert.equal(translator.task, 'translation');
    const [a, b] = greedy;
    assert.deepEqual(await translator(a.input, { src_lang: 'en', tgt_lang: 'fr' }), a.output);
    assert.deepEqual(await translator([a.input, b.input]), [...a.output, ...b.output]);
    assert.deepEqual(await translator([a.input]), a.output);
    // undefined options are absent; null generation options keep the model's defaults (transformers.js passes them)
    assert.deepEqual(await translator(a.input, { max_new_tokens: undefined, num_beams: null }), a.output);
  });

  test('a cut text warns on console.warn without a warning_callback, muted by env.logLevel', async () => {
    const long = greedy.find((c) => isLong(c.input));
    const warned = [];
    const warn = console.warn;
    console.warn = (...args) => warned.push(args.join(' '));
    try {
      assert.deepEqual(await translator(long.input), long.output);
      assert.equal(warned.length, 1, JSON.stringify(warned));
      assert.match(warned[0], /^webformers: translation: the text is \d+ tokens long; only its first 64/);
      const level = env.logLevel;
      env.logLevel = 'error';
      try {
        assert.deepEqual(await translator(long.input), long.output);
      } finally {
        env.logLevel = level;
      }
      assert.equal(warned.length, 1, 'muted at logLevel error');
      await translator(greedy[0].input);
      assert.equal(warned.length, 1, 'a short text does not warn');
    } finally {
      console.warn = warn;
    }
    await rejects(translator(long.input, { warning_callback: 'loud' }), /warning_callback must be a function/, 'input');
  });

  test('an AbortSignal or an InterruptableStoppingCriteria stops a generation mid-way', async () => {
    // The text with the longest output.
    const c = greedy.reduce((a, b) => (textOf(b.output[0]).length > textOf(a.output[0]).length ? b : a));
    const full = textOf(c.output[0]);
    const controller = new AbortController();
    let pieces = 0;
    const [a] = await translator(c.input, {
      signal: controller.signal,
      callback_function: () => {
        if (++pieces === 3) controller.abort();
      },
    });
    const stopped = textOf(a);
    assert.ok(stopped.length > 0 && stopped.length < full.length && full.startsWith(stopped), `stopped at ${JSON.stringify(stopped)} of ${JSON.stringify(full)}`);
    // Already aborted: nothing is generated; the next call without it runs to the end.
    assert.deepEqual(await translator(c.input, { signal: AbortSignal.abort() }), [{ translation_text: '' }]);
    assert.deepEqual(await translator(c.input), c.output);
    // Beam search stops too (it streams at its end only: here already aborted, no beam has a token).
    assert.deepEqual(await translator(c.input, { num_beams: 2, signal: AbortSignal.abort() }), [{ translation_text: '' }]);
    // The criteria, interrupted from the streamed text; it stays interrupted until reset.
    const criteria = new InterruptableStoppingCriteria();
    pieces = 0;
    const [d] = await translator(c.input, {
      stopping_criteria: criteria,
      callback_function: () => {
        if (++pieces === 2) criteria.interrupt();
      },
    });
    assert.ok(textOf(d).length < full.length && full.startsWith(textOf(d)), `stopped at ${JSON.stringify(d)}`);
    assert.deepEqual(await translator(c.input, { stopping_criteria: criteria }), [{ translation_text: '' }]);
    criteria.reset();
    assert.deepEqual(await translator(c.input, { stopping_criteria: criteria }), c.output);
  });

  test('bad input rejects with the engine\'s message, and the pipeline goes on', async () => {
    await rejects(translator(''), /the text is empty: there is nothing to translate/, 'input');
    await rejects(translator('   '), /the text is empty/, 'input');
    await rejects(translator(['Hello.', '']), /the text is empty/, 'input');
    await rejects(translator('Hello.', { num_beams: 0 }), /num_beams must be at least 1/, 'input');
    await rejects(translator('Hello.', { num_beams: 2, num_return_sequences: 3 }), /num_return_sequences \(3\) must be at most num_beams \(2\)/, 'input');
    await rejects(translator(42), /a string or an array of strings/, 'input');
    await rejects(translator('Hello.', { max_new_tokens: 0 }), /max_new_tokens/, 'input');
    await rejects(translator('Hello.', { beams: 2 }), /unknown field `beams`/, 'input');
    await rejects(translator('Hello.', 'fr'), /options must be an object/, 'input');
    assert.deepEqual(await translator(greedy[0].input), greedy[0].output);
  });
});
