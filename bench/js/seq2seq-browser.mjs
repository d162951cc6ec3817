// Browser seq2seq benchmark (not a test), one configuration per run: webformers' npm package on
// 'wasm' in headless Chromium, a text-to-text pipeline on bench/seq2seq-reference.json's input
// with exactly --new-tokens new tokens (min_new_tokens = max_new_tokens), greedy or beam search,
// the call bench/seq2seq.sh times natively and with Transformers.js (see bench/README.md,
// "Seq2seq"). The page is crossOriginIsolated (COOP/COEP), so that the threaded wasm build can
// use more than one thread.
//
//   node bench/js/seq2seq-browser.mjs --model NAME --task TASK [--threads 1] [--reps 3]
//        [--new-tokens 64] [--beams 1] [--reference bench/seq2seq-reference.json]
//
// --model: a folder under .cache/models (bench/make-seq2seq-models.py). Prints one JSON line:
// the median call with --new-tokens tokens and with one (tokenizer, encoder, first step), after
// one warm-up call of each; decode_tokens_per_s is the tokens between over the time between (the
// npm package does not time the encoder apart). The warm-up call's token ids (a TextStreamer's
// token_callback_function; with beams, the best sequence's) are compared with Python's.
//
// Needs npm/dist (cd npm && npm run build) and Chromium (scripts/setup-tools.sh).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../scripts/static-server.mjs';
import { launchBrowser } from '../../npm/test/helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

const opts = { model: null, task: null, threads: 1, reps: 3, 'new-tokens': 64, beams: 1, reference: 'bench/seq2seq-reference.json' };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '');
  if (!process.argv[i].startsWith('--') || !(key in opts) || process.argv[i + 1] === undefined) {
    console.error(`usage: node bench/js/seq2seq-browser.mjs ${Object.keys(opts).map((k) => `[--${k} X]`).join(' ')}`);
    process.exit(2);
  }
  opts[key] = typeof opts[key] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
if (!opts.model || !opts.task || !(opts['new-tokens'] >= 2) || !(opts.reps >= 1) || !(opts.beams >= 1)) {
  console.error('--model and --task are required; --new-tokens at least 2, --reps and --beams at least 1');
  process.exit(2);
}
const referenceFile = path.resolve(root, opts.reference);
for (const need of [path.join(root, 'npm', 'dist', 'index.js'), path.join(root, '.cache', 'models', opts.model, 'config.json'), referenceFile]) {
  if (!fs.existsSync(need)) {
    console.error(`bench: missing ${need} (see the header of this script)`);
    process.exit(1);
  }
}
const reference = JSON.parse(fs.readFileSync(referenceFile, 'utf8'));

const server = await startServer({
  isolate: true,
  mounts: {
    '/': here,
    '/webformers/': path.join(root, 'npm', 'dist'),
    '/models/': path.join(root, '.cache', 'models'),
  },
});
const browser = await launchBrowser({ protocolTimeout: 3_600_000 });

/** Runs in the page: loads the pipeline, one warm-up call of each length, then reps of both. */
async function measure(run) {
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const { pipeline, env, TextStreamer } = await import('/webformers/index.js');
  env.allowLocalModels = true;
  env.allowRemoteModels = false;
  env.localModelPath = '/models/';
  env.numThreads = run.threads;
  const t0 = performance.now();
  const pipe = await pipeline(run.task, run.model, { device: 'wasm' });
  const loadMs = performance.now() - t0;
  if (pipe.threads !== run.threads) throw new Error(`webformers runs ${pipe.threads} thread(s), not ${run.threads}`);
  const full = { max_new_tokens: run.newTokens, min_new_tokens: run.newTokens, num_beams: run.beams, do_sample: false };
  const first = { ...full, max_new_tokens: 1, min_new_tokens: 1 };
  const ids = [];
  const streamer = new TextStreamer(null, { callback_function: () => {}, token_callback_function: (t) => ids.push(...t.map(Number)) });
  let output = await pipe(run.input, { ...full, streamer });
  await pipe(run.input, first);
  const calls = [];
  const firsts = [];
  for (let r = 0; r < run.reps; r++) {
    let t = performance.now();
    output = await pipe(run.input, full);
    calls.push(performance.now() - t);
    t = performance.now();
    await pipe(run.input, first);
    firsts.push(performance.now() - t);
  }
  const [callMs, firstMs] = [median(calls), median(firsts)];
  return {
    adapter: pipe.adapter ?? null,
    threads: pipe.threads,
    crossOriginIsolated: self.crossOriginIsolated,
    load_ms: +loadMs.toFixed(0),
    new_tokens: ids.length,
    call_ms: +callMs.toFixed(1),
    call_ms_min: +Math.min(...calls).toFixed(1),
    first_token_ms: +firstMs.toFixed(1),
    decode_tokens_per_s: +(((run.newTokens - 1) * 1000) / (callMs - firstMs)).toFixed(1),
    output_token_ids: ids,
    output,
  };
}

let result;
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && console.error(`page: ${m.text()}`));
  await page.goto(server.url);
  const run = { model: opts.model, task: opts.task, input: reference.input, threads: opts.threads, reps: opts.reps, newTokens: opts['new-tokens'], beams: opts.beams };
  result = {
    runtime: 'webformers', device: 'wasm', browser: await browser.version(), model: opts.model, task: opts.task,
    num_beams: opts.beams, reps: opts.reps,
    ...(await page.evaluate(measure, run)),
  };
  await page.close();
} finally {
  await browser.close();
  await server.close();
}
result.load_average = os.loadavg().map((x) => +x.toFixed(2));
// Greedy's first tokens do not depend on how many follow (min_new_tokens only bans EOS); beams' do.
let want = reference.models[opts.model]?.[opts.beams === 1 ? 'greedy_token_ids' : `beam${opts.beams}_token_ids`];
if (want && opts.beams === 1) want = want.slice(0, opts['new-tokens']);
if (want && want.length === opts['new-tokens']) {
  let same = 0;
  while (same < want.length && result.output_token_ids[same] === want[same]) same++;
  Object.assign(result, { ids_match_python: same === want.length && result.output_token_ids.length === want.length, ids_agree_with_python: same });
}
console.log(JSON.stringify(result));
