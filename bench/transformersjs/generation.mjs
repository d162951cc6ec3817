// ONNX Runtime baseline for decoders: Transformers.js 4.3.1 in Node (onnxruntime-node, CPU) on the
// text-generation workload of BENCHMARKS.md: a 128-token prompt, then 64 greedy tokens.
//
// node bench/transformersjs/generation.mjs [--model gemma-3-270m-onnx] [--dtype q8|q4|fp32]
//      [--threads N] [--reps N] [--prompt-tokens 128] [--decode-tokens 64]
// The model is a folder of .cache/models (bench/export-gemma3-onnx.py makes gemma-3-270m-onnx).
// Prefill: the median time of `generate` for one new token on the prompt; decode: the extra time
// of `generate` for 1 + N new tokens over that, per token (min_new_tokens keeps an early EOS from
// shortening it). Prints one JSON line.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AutoModelForCausalLM, AutoTokenizer, env } from '@huggingface/transformers';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

const opts = { model: 'gemma-3-270m-onnx', dtype: 'q8', threads: 1, reps: 3, promptTokens: 128, decodeTokens: 64 };
const names = {
  '--model': 'model', '--dtype': 'dtype', '--threads': 'threads', '--reps': 'reps',
  '--prompt-tokens': 'promptTokens', '--decode-tokens': 'decodeTokens',
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = names[argv[i]];
  if (!key || argv[i + 1] === undefined) {
    console.error(`usage: node generation.mjs [${Object.keys(names).join(' X] [')} X]`);
    process.exit(2);
  }
  opts[key] = typeof opts[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// Local files only: no hub is reachable, and a benchmark must not fetch.
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = path.join(root, '.cache', 'models');

const t0 = performance.now();
const tokenizer = await AutoTokenizer.from_pretrained(opts.model);
const model = await AutoModelForCausalLM.from_pretrained(opts.model, {
  device: 'cpu',
  dtype: opts.dtype,
  session_options: { intraOpNumThreads: opts.threads, interOpNumThreads: 1 },
});
const loadMs = performance.now() - t0;

// A prompt of exactly --prompt-tokens tokens: BOS and the corpus's text, cut.
const corpus = JSON.parse(fs.readFileSync(path.join(root, 'bench', 'corpus.json'), 'utf8'));
const ids = tokenizer(corpus.sentences.join(' ')).input_ids.tolist()[0].slice(0, opts.promptTokens);
if (ids.length < opts.promptTokens) throw new Error(`the corpus gives only ${ids.length} tokens`);
const inputs = tokenizer(tokenizer.decode(ids, { skip_special_tokens: true }));
const promptTokens = inputs.input_ids.dims[1];

let continuation = '';
async function timeGenerate(n) {
  const start = performance.now();
  const out = await model.generate({ ...inputs, max_new_tokens: n, min_new_tokens: n, do_sample: false });
  const ms = performance.now() - start;
  if (out.dims[1] !== promptTokens + n) throw new Error(`generated ${out.dims[1] - promptTokens} tokens, not ${n}`);
  // The greedy text, to see that the export answers sensibly (not a check against a reference).
  continuation = tokenizer.decode(out.tolist()[0].slice(promptTokens), { skip_special_tokens: true });
  return ms;
}

await timeGenerate(2); // warm-up
const prefillMs = [];
const fullMs = [];
for (let r = 0; r < opts.reps; r++) {
  prefillMs.push(await timeGenerate(1));
  fullMs.push(await timeGenerate(1 + opts.decodeTokens));
}
const prefill = median(prefillMs);
const decode = median(fullMs) - prefill;
console.log(JSON.stringify({
  runtime: 'transformers.js 4.3.1 (onnxruntime-node)',
  model: opts.model,
  dtype: opts.dtype,
  threads: opts.threads,
  load_ms: +loadMs.toFixed(0),
  prompt_tokens: promptTokens,
  prefill_tokens_per_s: +(promptTokens / (prefill / 1000)).toFixed(1),
  decode_tokens: opts.decodeTokens,
  decode_tokens_per_s: +(opts.decodeTokens / (decode / 1000)).toFixed(2),
  continuation: continuation.slice(0, 80),
}));
