#!/usr/bin/env bash
# Seq2seq benchmark: tokens per second of greedy and beam-4 decoding with random-weight models of
# Flan-T5-small's and opus-mt-en-de's shapes (bench/make-seq2seq-models.py), on one fixed English
# input of 31 tokens (bench/seq2seq-reference.json), exactly NEW_TOKENS new tokens a call
# (min_new_tokens = max_new_tokens, so every runtime does the same work whatever random tokens
# come out): webformers (`webformers bench text2text-generation|translation`) on the CPU (each
# thread count), its npm package's wasm in headless Chromium (each thread count;
# bench/js/seq2seq-browser.mjs) and on lavapipe (Mesa's software Vulkan), beside Transformers.js
# 4.3.1 on ONNX Runtime in Node (bench/transformersjs/seq2seq.mjs, the ONNX export of the same
# weights, fp32 and q8; greedy only: it has no beam search), one configuration after the other in
# one run.
#
# Decoding speed, the same way for every runtime: (NEW_TOKENS - 1) tokens over the median call
# with NEW_TOKENS new tokens minus the median call with 1 (tokenizer, encoder, first decoder
# step), so encoder time is apart everywhere; Transformers.js also reports its encoder run and
# its decoder's one-token step, timed on its ONNX Runtime sessions. Every run's generated token
# ids are compared with Python transformers' on the same weights (greedy and beam 4), and the
# table says whether webformers' fp32 greedy ids are Transformers.js fp32's, so that a broken
# model cannot pass for a fast one (a mismatch there fails the script). Prints one JSON line per
# configuration, the load average, then a table.
#
# Usage: bench/seq2seq.sh [threads...]   (default: 1 2)
# Env: MODELS (default "bench-flan-t5-small bench-opus-mt"); REPS (default 3) timed calls of each
#      length after one warm-up; NEW_TOKENS (default 64); BEAMS (default "1 4"); GPU=0: no
#      lavapipe runs; GPU_MODELS (default "bench-flan-t5-small"), GPU_BEAMS (default "1"),
#      GPU_REPS (default 1), GPU_NEW_TOKENS (default 8: lavapipe takes seconds per token);
#      TJS=0: no Transformers.js runs; WF=0: no webformers runs; BROWSER=0: no Chromium runs (they
#      need npm/dist: cd npm && npm run build); WEBFORMERS: a CLI binary to use instead of
#      building this checkout's.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=("$@")
((${#threads[@]})) || threads=(1 2)
read -r -a bench_models <<<"${MODELS:-bench-flan-t5-small bench-opus-mt}"
read -r -a beam_counts <<<"${BEAMS:-1 4}"
reps=${REPS:-3}
new_tokens=${NEW_TOKENS:-64}
gpu=${GPU:-1}
gpu_models=" ${GPU_MODELS:-bench-flan-t5-small} "
gpu_beams=" ${GPU_BEAMS:-1} "
gpu_reps=${GPU_REPS:-1}
gpu_new_tokens=${GPU_NEW_TOKENS:-8}
run_tjs=${TJS:-1}
run_wf=${WF:-1}
run_browser=${BROWSER:-1}
reference=bench/seq2seq-reference.json
source bench/tasks-lib.sh  # prepare_cli, load, runtimes_available, record
s2s_js=bench/transformersjs/seq2seq.mjs

[[ -f $reference ]] || { echo "missing $reference: run .cache/optimum-venv/bin/python bench/make-seq2seq-models.py" >&2; exit 1; }
for m in "${bench_models[@]}"; do
    [[ -f .cache/models/$m/model.safetensors ]] || { echo "missing .cache/models/$m: run .cache/optimum-venv/bin/python bench/make-seq2seq-models.py" >&2; exit 1; }
    ((run_tjs == 0)) || [[ -f .cache/models/$m-onnx/onnx/decoder_model_merged_quantized.onnx ]] || {
        echo "missing .cache/models/$m-onnx: run bench/optimum-env.sh, then .cache/optimum-venv/bin/python bench/make-seq2seq-models.py" >&2
        exit 1
    }
done
# Transformers.js's own dependencies, once (install scripts never run).
((run_tjs == 0)) || [[ -d bench/transformersjs/node_modules ]] || (cd bench/transformersjs && npm ci --ignore-scripts --no-audit --no-fund >&2)
if ((run_wf)); then
    prepare_cli
else
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
fi
results=$tmp/results.jsonl
input=$(node -p "JSON.stringify(require('./$reference').input)")

runtimes_available  # run_browser, gpu, lavapipe

task_of() { node -p "require('./$reference').models['$1'].task"; }

# webformers MODEL LABEL REPS BEAMS NEW [device flags...], in the environment `env "${envs[@]}"`:
# the call with NEW new tokens and the call with 1, each `webformers bench` (median of REPS calls
# after one warm-up), joined into one JSON line with Python's ids compared.
envs=()
webformers() {
    local model=$1 label=$2 n=$3 beams=$4 new_tokens=$5 task
    shift 5
    task=$(task_of "$model")
    local full="{\"max_new_tokens\":$new_tokens,\"min_new_tokens\":$new_tokens,\"num_beams\":$beams}"
    local first="{\"max_new_tokens\":1,\"min_new_tokens\":1,\"num_beams\":$beams}"
    if env "${envs[@]}" "$wf" bench "$task" --model ".cache/models/$model" "$@" --input "$input" --options "$full" \
        --reps "$n" --warmup 1 2>"$tmp/err" >"$tmp/full" &&
        env "${envs[@]}" "$wf" bench "$task" --model ".cache/models/$model" "$@" --input "$input" --options "$first" \
            --reps "$n" --warmup 1 2>"$tmp/err" >"$tmp/first"; then
        node - "$tmp/full" "$tmp/first" "$reference" "$model" "$beams" "$new_tokens" <<'JS' | record "$label" "$model"
const fs = require('fs');
const [fullFile, firstFile, refFile, model, beams, n] = process.argv.slice(2);
const full = JSON.parse(fs.readFileSync(fullFile, 'utf8'));
const first = JSON.parse(fs.readFileSync(firstFile, 'utf8'));
const ids = full.output_token_ids ?? [];
const r = {
  runtime: 'webformers', device: full.device, threads: full.threads, task: full.task, num_beams: +beams,
  load_s: full.load_s, reps: full.calls, new_tokens: ids.length, call_ms: full.latency_ms, call_ms_min: full.latency_ms_min,
  first_token_ms: first.latency_ms,
  decode_tokens_per_s: +(((n - 1) * 1000) / (full.latency_ms - first.latency_ms)).toFixed(1),
  output_token_ids: ids, output: full.output,
};
const ref = JSON.parse(fs.readFileSync(refFile, 'utf8'));
// Greedy's first tokens do not depend on how many follow (min_new_tokens only bans EOS); beams' do.
let want = ref.models[model]?.[+beams === 1 ? 'greedy_token_ids' : `beam${beams}_token_ids`];
if (want && +beams === 1) want = want.slice(0, +n);
if (want && +n === want.length) {
  let same = 0;
  while (same < want.length && ids[same] === want[same]) same++;
  Object.assign(r, { ids_match_python: same === want.length && ids.length === want.length, ids_agree_with_python: same });
}
console.log(JSON.stringify(r));
JS
        return
    fi
    echo "$label $model beams=$beams: failed: $(tail -1 "$tmp/err")"
}

echo "# $(date -u +%FT%TZ) $(load)"
for model in "${bench_models[@]}"; do
    task=$(task_of "$model")
    for t in "${threads[@]}"; do
        for b in "${beam_counts[@]}"; do
            envs=()
            ((run_wf == 0)) || webformers "$model" "webformers cpu threads=$t beams=$b" "$reps" "$b" "$new_tokens" --device cpu --threads "$t"
            if ((run_wf && run_browser)); then
                node bench/js/seq2seq-browser.mjs --model "$model" --task "$task" --threads "$t" --reps "$reps" \
                    --new-tokens "$new_tokens" --beams "$b" --reference "$reference" 2>"$tmp/err" |
                    record "webformers wasm chromium threads=$t beams=$b" "$model" ||
                    echo "webformers wasm chromium threads=$t beams=$b $model: failed: $(tail -1 "$tmp/err")"
            fi
        done
        if ((run_tjs)); then
            # greedy only: Transformers.js 4.3.1 has no beam search
            for dtype in fp32 q8; do
                node "$s2s_js" --model "$model-onnx" --task "$task" --dtype "$dtype" --threads "$t" --reps "$reps" \
                    --new-tokens "$new_tokens" --reference "$reference" 2>"$tmp/err" |
                    record "transformers.js $dtype threads=$t beams=1" "$model" ||
                    echo "transformers.js $dtype threads=$t $model: failed: $(tail -1 "$tmp/err")"
            done
        fi
    done
    if ((gpu && run_wf)) && [[ $gpu_models == *" $model "* ]]; then
        envs=("${lavapipe[@]}")
        for b in "${beam_counts[@]}"; do
            [[ $gpu_beams == *" $b "* ]] || continue
            webformers "$model" "webformers lavapipe beams=$b" "$gpu_reps" "$b" "$gpu_new_tokens" --device gpu
        done
    fi
    echo "# $(load)"
done

# The table: decoding tokens/s, the call's ms, the first-token call's ms, Transformers.js's
# encoder and decoder-step ms, the ids against Python's, and the ratio of decoding speeds to
# Transformers.js fp32 and q8 on as many threads in the same run (lavapipe: on the most).
# Then the check that must hold: webformers' fp32 greedy ids are Transformers.js fp32's.
node - "$results" "${threads[-1]}" "$new_tokens" <<'JS'
const fs = require('fs');
const [file, most, n] = process.argv.slice(2);
const rows = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
const threadsOf = (r) => (/threads=(\d+)/.exec(r.config) ?? [, most])[1];
const base = new Map();
for (const r of rows) if (r.runtime === 'transformers.js') base.set(`${r.bench_model} ${r.dtype} ${threadsOf(r)}`, r);
const f = (x, d) => (x === null || x === undefined ? '' : (+x).toFixed(d));
console.log('\n| model | runtime | threads | beams | new tokens | decode tokens/s | ms per call | ms first token | encoder ms | decoder ms / token | ids = Python\'s | vs Transformers.js fp32 | vs q8 |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const ratio = (dtype) => {
    const b = base.get(`${r.bench_model} ${dtype} ${threadsOf(r)}`);
    return b && r.num_beams === 1 && r !== b ? (r.decode_tokens_per_s / b.decode_tokens_per_s).toFixed(2) : '';
  };
  const ids = r.ids_agree_with_python === undefined ? '' : r.ids_match_python ? 'yes' : `first ${r.ids_agree_with_python} of ${r.new_tokens}`;
  console.log(`| ${r.bench_model} | ${r.config.replace(/ (threads|beams)=\d+/g, '')} | ${r.config.includes('lavapipe') ? '' : threadsOf(r)} | ${r.num_beams} | ${r.new_tokens} | ${f(r.decode_tokens_per_s, 1)} | ${f(r.call_ms, 0)} | ${f(r.first_token_ms, 0)} | ${f(r.encoder_ms, 1)} | ${f(r.decoder_token_ms, 2)} | ${ids} | ${ratio('fp32')} | ${ratio('q8')} |`);
}
console.log('\nBeam 4: Transformers.js 4.3.1 has no beam search (num_beams > 1 decodes greedily), so those rows have no ratio.');
// fp32 greedy must give the same ids in both runtimes (the weights are the same, and every greedy
// step's margin is above the rounding of either; see make-seq2seq-models.py).
for (const model of new Set(rows.map((r) => r.bench_model))) {
  const tjs = rows.filter((r) => r.bench_model === model && r.runtime === 'transformers.js' && r.dtype === 'fp32');
  const wf = rows.filter((r) => r.bench_model === model && r.runtime === 'webformers' && r.num_beams === 1);
  if (!tjs.length || !wf.length) continue;
  const want = tjs[0].output_token_ids;
  // lavapipe's rows decode fewer tokens: their ids are compared with as many of Transformers.js's
  const same = wf.filter((r) => r.output_token_ids.length > 0 && JSON.stringify(r.output_token_ids) === JSON.stringify(want.slice(0, r.output_token_ids.length))).length;
  const agree = tjs.every((r) => JSON.stringify(r.output_token_ids) === JSON.stringify(want));
  const ok = same === wf.length && agree;
  console.log(`check ${model}: fp32 greedy token ids, webformers = Transformers.js in ${same} of ${wf.length} webformers runs` +
    `${agree ? '' : ' (Transformers.js fp32 runs disagree among themselves)'}: ${ok ? 'OK' : 'MISMATCH'}`);
  if (!ok) process.exitCode = 1; // the figures are not comparable: say so in the exit status too
}
JS
