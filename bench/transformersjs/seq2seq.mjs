// Transformers.js 4.3.1 in Node (onnxruntime-node, CPU) on the seq2seq benchmark: one fixed
// English input through a text-to-text pipeline (text2text-generation, translation), exactly
// --new-tokens new tokens (min_new_tokens = max_new_tokens), greedy. See bench/README.md
// ("Seq2seq").
//
// node seq2seq.mjs --model NAME --task TASK [--dtype fp32|q8] [--threads N] [--reps N]
//                  [--new-tokens 64] [--beams 1] [--reference FILE]
// --model: a folder under .cache/models made by bench/make-seq2seq-models.py (NAME-onnx);
// --reference: bench/seq2seq-reference.json, whose input is used and whose Python greedy token
// ids this run's are compared with. Prints one JSON line.
//
// Decoding speed: the median call with --new-tokens tokens minus the median call with one (the
// tokenizer, the encoder and the first decoder step, which also computes the cross-attention keys
// and values), over the tokens between: decode_tokens_per_s. The encoder's and the decoder's
// ONNX Runtime run() are also timed by wrapping the sessions (encoder_ms; decoder_token_ms, the
// median one-token step with the cache).
//
// Transformers.js 4.3.1 has no beam search: with num_beams > 1 its generate() keeps one sequence
// and takes the best token of each step (greedy), so --beams above 1 is refused here rather than
// timed as if it were beam search.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, pipeline, TextStreamer } from '@huggingface/transformers';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

function parseArgs(argv) {
  const opts = { model: null, task: null, dtype: 'fp32', threads: 1, reps: 3, 'new-tokens': 64, beams: 1, reference: 'bench/seq2seq-reference.json' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--') || !(key in opts) || argv[i + 1] === undefined) {
      throw new Error(`usage: node seq2seq.mjs ${Object.keys(opts).map((k) => `[--${k} X]`).join(' ')}`);
    }
    opts[key] = typeof opts[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!opts.model || !opts.task) throw new Error('--model and --task are required');
  if (!['fp32', 'q8'].includes(opts.dtype)) throw new Error('--dtype must be fp32 or q8');
  if (opts.beams !== 1) throw new Error('Transformers.js 4.3.1 has no beam search (num_beams > 1 decodes greedily): only --beams 1');
  if (!(opts['new-tokens'] >= 2) || !(opts.reps >= 1)) throw new Error('--new-tokens must be at least 2 and --reps at least 1');
  return opts;
}

const median = (xs) => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const round = (x, d = 2) => (x === null ? null : +x.toFixed(d));

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(e.message);
  process.exit(2);
}
const reference = JSON.parse(fs.readFileSync(path.resolve(root, opts.reference), 'utf8'));
const refModel = reference.models[opts.model.replace(/-onnx$/, '')];

// Local files only: no hub is reachable, and a benchmark must not fetch.
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = path.join(root, '.cache', 'models');

const t0 = performance.now();
const pipe = await pipeline(opts.task, opts.model, {
  device: 'cpu',
  dtype: opts.dtype,
  session_options: { intraOpNumThreads: opts.threads, interOpNumThreads: 1 },
});
const loadS = (performance.now() - t0) / 1000;

// Times every run() of a session into `log` (ms, and whether the decoder had its cache).
function wrap(session, log) {
  const run = session.run.bind(session);
  session.run = async (feeds, ...rest) => {
    const t = performance.now();
    const out = await run(feeds, ...rest);
    const cached = feeds.use_cache_branch ? !!feeds.use_cache_branch.data[0] : null;
    log.push({ ms: performance.now() - t, cached });
    return out;
  };
}
const encLog = [];
const decLog = [];
wrap(pipe.model.sessions.model, encLog);
wrap(pipe.model.sessions.decoder_model_merged, decLog);

const n = opts['new-tokens'];
const full = { max_new_tokens: n, min_new_tokens: n, num_beams: 1, do_sample: false };
const first = { max_new_tokens: 1, min_new_tokens: 1, num_beams: 1, do_sample: false };

// Warm-up, with the generated ids (the streamer's token callback; the prompt skipped).
const ids = [];
const streamer = new TextStreamer(pipe.tokenizer, {
  skip_prompt: true,
  callback_function: () => {},
  token_callback_function: (tokens) => ids.push(...tokens.map(Number)),
});
let output = await pipe(reference.input, { ...full, streamer });
await pipe(reference.input, first);

const calls = [];
const firsts = [];
const enc = [];
const steps = [];
for (let r = 0; r < opts.reps; r++) {
  encLog.length = 0;
  decLog.length = 0;
  let t = performance.now();
  output = await pipe(reference.input, full);
  calls.push(performance.now() - t);
  enc.push(encLog.reduce((s, e) => s + e.ms, 0));
  steps.push(...decLog.filter((d) => d.cached).map((d) => d.ms));
  t = performance.now();
  await pipe(reference.input, first);
  firsts.push(performance.now() - t);
}
const callMs = median(calls);
const firstMs = median(firsts);
const result = {
  runtime: 'transformers.js',
  transformers_js: '4.3.1',
  node: process.version,
  cpu: os.cpus()[0]?.model,
  model: opts.model,
  task: opts.task,
  dtype: opts.dtype,
  threads: opts.threads,
  num_beams: 1,
  load_s: round(loadS),
  reps: opts.reps,
  new_tokens: ids.length,
  call_ms: round(callMs, 1),
  call_ms_min: round(Math.min(...calls), 1),
  first_token_ms: round(firstMs, 1),
  decode_tokens_per_s: round(((n - 1) * 1000) / (callMs - firstMs), 1),
  encoder_ms: round(median(enc), 2),
  decoder_token_ms: round(median(steps), 2),
  output_token_ids: ids,
  output: output,
};
if (refModel) {
  // greedy's first tokens do not depend on how many follow (min_new_tokens only bans EOS)
  const want = refModel.greedy_token_ids.slice(0, n);
  let same = 0;
  while (same < want.length && ids[same] === want[same]) same++;
  Object.assign(result, { ids_match_python: same === want.length && ids.length === want.length, ids_agree_with_python: same });
}
console.log(JSON.stringify(result));
