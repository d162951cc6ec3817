#!/usr/bin/env bash
# Speech benchmark: the real-time factor (audio seconds per second of compute) of
# automatic-speech-recognition with whisper-tiny.en and whisper-base on a 60 s clip (the first 60 s
# of tests/fixtures/speech/long-news.flac, cut by sox), chunk_length_s 30 (three 30 s windows,
# stride 5 s), greedy, English: webformers (`webformers bench automatic-speech-recognition`) on
# the CPU (each thread count), its npm package's wasm in headless Chromium (each thread count;
# bench/js/speech-browser.mjs) and on lavapipe (Mesa's software Vulkan; whisper-tiny.en only by
# default), beside Transformers.js 4.3.1 on ONNX Runtime in Node (bench/transformersjs/asr.mjs,
# the ONNX export of the same checkpoints by bench/export-whisper-onnx.py, fp32 and q8), one
# configuration after the other in one run. Encoder time (per 30 s window) and decoder time per
# token are reported apart where the runtime gives them. Every transcript is compared with Python
# transformers' pipeline on the same clip (bench/speech-reference.json): word errors, so that a
# broken model cannot pass for a fast one. Prints one JSON line per configuration, the load
# average, then a table.
#
# Usage: bench/speech.sh [threads...]   (default: 1 2)
# Env: MODELS (default "whisper-tiny.en whisper-base"); REPS (default 3) timed calls after one
#      warm-up; GPU=0: no lavapipe runs; GPU_MODELS (default "whisper-tiny.en"), GPU_REPS
#      (default 1); TJS=0: no Transformers.js runs; WF=0: no webformers runs; BROWSER=0: no
#      Chromium runs (they need npm/dist: cd npm && npm run build);
#      WEBFORMERS: a CLI binary to use instead of building this checkout's.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=("$@")
((${#threads[@]})) || threads=(1 2)
read -r -a speech_models <<<"${MODELS:-whisper-tiny.en whisper-base}"
reps=${REPS:-3}
gpu=${GPU:-1}
gpu_models=" ${GPU_MODELS:-whisper-tiny.en} "
gpu_reps=${GPU_REPS:-1}
run_tjs=${TJS:-1}
run_wf=${WF:-1}
run_browser=${BROWSER:-1}
reference=bench/speech-reference.json
source bench/tasks-lib.sh  # prepare_cli, load, runtimes_available, record
asr_js=bench/transformersjs/asr.mjs

for m in "${speech_models[@]}"; do
    [[ -f .cache/models/$m/model.safetensors ]] || { echo "missing .cache/models/$m: run scripts/fetch-models.sh $m" >&2; exit 1; }
    ((run_tjs == 0)) || [[ -f .cache/models/$m-onnx/onnx/decoder_model_merged_quantized.onnx ]] || {
        echo "missing .cache/models/$m-onnx: run bench/optimum-env.sh, then .cache/optimum-venv/bin/python bench/export-whisper-onnx.py" >&2
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

# The clip: 16 kHz mono 16-bit WAV, which both runtimes read without resampling.
clip=.cache/bench-speech/clip60.wav
if [[ ! -f $clip ]]; then
    mkdir -p "$(dirname "$clip")"
    sox tests/fixtures/speech/long-news.flac -b 16 "$clip.tmp.wav" trim 0 60
    mv "$clip.tmp.wav" "$clip"
fi

runtimes_available  # run_browser, gpu, lavapipe

# webformers MODEL LABEL N [device flags...], in the environment `env "${envs[@]}"`.
envs=()
webformers() {
    local model=$1 label=$2 n=$3 options
    shift 3
    options='{"chunk_length_s":30}'
    [[ $model == *.en ]] || options='{"chunk_length_s":30,"language":"english","task":"transcribe"}'
    env "${envs[@]}" "$wf" bench automatic-speech-recognition --model ".cache/models/$model" "$@" \
        --input "\"$clip\"" --options "$options" --reps "$n" --warmup 1 2>"$tmp/err" >"$tmp/out" &&
        record "$label" "$model" <"$tmp/out" && return
    echo "$label $model: the task failed: $(tail -1 "$tmp/err"); timing the model alone (bench speech-model)"
    # Encoder and decoder step times without the task (no real-time factor, no text).
    env "${envs[@]}" "$wf" bench speech-model --model ".cache/models/$model" "$@" --input "\"$clip\"" --reps "$n" \
        2>"$tmp/err" | record "$label (model only)" "$model" || echo "$label $model: failed: $(tail -1 "$tmp/err")"
}

echo "# $(date -u +%FT%TZ) $(load)"
for model in "${speech_models[@]}"; do
    language=()
    [[ $model == *.en ]] || language=(--language english)
    for t in "${threads[@]}"; do
        envs=()
        ((run_wf == 0)) || webformers "$model" "webformers cpu threads=$t" "$reps" --device cpu --threads "$t"
        if ((run_wf && run_browser)); then
            node bench/js/speech-browser.mjs --model "$model" --audio "$clip" --threads "$t" --reps "$reps" \
                "${language[@]}" --reference "$reference" 2>"$tmp/err" |
                record "webformers wasm chromium threads=$t" "$model" ||
                echo "webformers wasm chromium threads=$t $model: failed: $(tail -1 "$tmp/err")"
        fi
        if ((run_tjs)); then
            for dtype in fp32 q8; do
                node "$asr_js" --model "$model-onnx" --audio "$clip" --dtype "$dtype" --threads "$t" --reps "$reps" \
                    "${language[@]}" --reference "$reference" 2>"$tmp/err" |
                    record "transformers.js $dtype threads=$t" "$model" ||
                    echo "transformers.js $dtype threads=$t $model: failed: $(tail -1 "$tmp/err")"
            done
        fi
    done
    if ((gpu && run_wf)) && [[ $gpu_models == *" $model "* ]]; then
        envs=("${lavapipe[@]}")
        webformers "$model" "webformers lavapipe" "$gpu_reps" --device gpu
    fi
    echo "# $(load)"
done

# The table: real-time factor (median call), encoder ms per 30 s window, decoder ms per token,
# word errors against Python's transcript, and the ratio of real-time factors to Transformers.js
# fp32 on as many threads in the same run (lavapipe: to its fp32 on the most).
node - "$results" "${threads[-1]}" "$reference" <<'JS'
const fs = require('fs');
const [file, most, refFile] = process.argv.slice(2);
const rows = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [];
const ref = JSON.parse(fs.readFileSync(refFile, 'utf8')).models;
const words = (s) => s.toLowerCase().replace(/[^a-z0-9' ]+/g, ' ').split(/\s+/).filter(Boolean);
function wordErrors(a, b) {
  const [x, y] = [words(a), words(b)];
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return `${prev[y.length]}/${y.length}`;
}
const threadsOf = (r) => (/threads=(\d+)/.exec(r.config) ?? [, most])[1];
const textOf = (r) => r.text ?? r.output?.text ?? '';
const rtfOf = (r) => r.rtf ?? (r.audio_s && r.latency_ms ? r.audio_s / (r.latency_ms / 1000) : null);
const base = new Map();
for (const r of rows) if (r.config.startsWith('transformers.js fp32')) base.set(`${r.bench_model} ${threadsOf(r)}`, rtfOf(r));
console.log('\n| model | runtime | threads | real-time factor | s per call | encoder ms / 30 s window | decoder ms / token | word errors vs Python | vs Transformers.js fp32 |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const rtf = rtfOf(r);
  const b = base.get(`${r.bench_model} ${threadsOf(r)}`);
  const s = r.total_s ?? (r.latency_ms ? r.latency_ms / 1000 : null);
  const f = (x, d) => (x === null || x === undefined ? '' : (+x).toFixed(d));
  console.log(`| ${r.bench_model} | ${r.config.replace(/ threads=\d+/, '')} | ${r.config.includes('lavapipe') ? '' : threadsOf(r)} | ${f(rtf, 2)} | ${f(s, 2)} | ${f(r.encoder_ms_per_call, 0)} | ${f(r.decoder_token_ms, 1)} | ${textOf(r) ? wordErrors(textOf(r), ref[r.bench_model]?.text ?? '') : ''} | ${b && rtf ? (rtf / b).toFixed(2) : ''} |`);
}
JS
