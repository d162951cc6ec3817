#!/usr/bin/env bash
# Native vision task benchmarks: images/s of image-classification (ViT-base/16 at 224x224, calls
# of 1 and 8 images) and zero-shot-image-classification (CLIP ViT-B/32, one image against 5
# labels), webformers (`webformers bench TASK`) on the CPU (each thread count) and on lavapipe
# (its GPU backend on Mesa's software Vulkan driver), beside Transformers.js 4.3.1 on ONNX Runtime
# in Node (bench/transformersjs/tasks.mjs, fp32 and q8, each thread count), on the random models
# of bench/make-vision-models.py and the workload of bench/vision.json, one configuration after
# the other in one run. Every call decodes and preprocesses its images; that preprocessing is
# also timed alone (`preprocess_ms`: decoding plus the image processor, for the call's images).
# First it checks that both runtimes give the same labels and scores on bench/task-checks.json's
# images. Prints one JSON line per configuration, the load average, then a table.
#
# Usage: bench/vision-tasks.sh [threads...]   (default: 1 2)
# Env: ROUNDS (default 1): repeat the measurements, configurations alternating;
#      REPS (default 5) timed calls of one image, BATCH_REPS (default 2) of more;
#      GPU=0: no lavapipe runs; GPU_BATCHES (default "1"): the images per call that lavapipe
#      runs (a call of 8 takes it minutes), GPU_REPS (default 1) its timed calls;
#      WEBFORMERS: a CLI binary to use instead of building this checkout's.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=("$@")
((${#threads[@]})) || threads=(1 2)
rounds=${ROUNDS:-1}
reps=${REPS:-5}
batch_reps=${BATCH_REPS:-2}
source bench/tasks-lib.sh
need_models make-vision-models.py vit-base-image-classification clip-vit-base-patch32
prepare_cli
results=$tmp/results.jsonl

image=$(node -p "require('./bench/vision.json').image")
labels=$(node -p "require('./bench/vision.json').labels.join(',')")
mapfile -t runs < <(node -p "require('./bench/vision.json').runs.map((r) => [r.task, r.model, r.batch].join(' ')).join('\n')")

# lavapipe, whatever else is installed: wgpu on Vulkan, Mesa's software driver only.
lavapipe=(WGPU_BACKEND=vulkan VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json)
gpu=${GPU:-1}
gpu_batches=" ${GPU_BATCHES:-1} "
gpu_reps=${GPU_REPS:-1}
if [[ $gpu == 1 && ! -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ]]; then
    echo "# no lavapipe (mesa-vulkan-drivers): GPU runs skipped"
    gpu=0
fi

# record LABEL JSON: prints the line and keeps it, labelled, for the table.
record() {
    local label=$1 line
    while IFS= read -r line; do
        echo "$label: $line"
        node -e "const [l, j] = process.argv.slice(1); console.log(JSON.stringify({ config: l, ...JSON.parse(j) }))" "$label" "$line" >>"$results"
    done
}

# webformers TASK MODEL BATCH LABEL [device flags...], in the environment `env "${envs[@]}"`,
# with $n_calls timed calls when it is set.
envs=()
n_calls=
webformers() {
    local task=$1 model=$2 batch=$3 label=$4 input options='{}' n=$reps
    shift 4
    input=$(node -p "JSON.stringify($batch === 1 ? '$image' : Array($batch).fill('$image'))")
    [[ $task != zero-shot-image-classification ]] || options=$(node -p "JSON.stringify({ candidate_labels: '$labels'.split(',') })")
    ((batch == 1)) || n=$batch_reps
    n=${n_calls:-$n}
    env "${envs[@]}" "$wf" bench "$task" --model "$models/$model" "$@" --input "$input" --options "$options" --reps "$n" --warmup 1 \
        2>"$tmp/err" | record "$label" || echo "$label: failed: $(tail -1 "$tmp/err")"
}

echo "# $(date -u +%FT%TZ) $(load)"
echo "# checks: webformers against Transformers.js on bench/task-checks.json's images"
check image-classification vit-base-image-classification --device cpu --threads 2
check zero-shot-image-classification clip-vit-base-patch32 --device cpu --threads 2
if ((gpu)); then
    # fp32 only: q8 was compared above, and lavapipe runs are slow.
    (export "${lavapipe[@]}" CHECK_DTYPES=fp32
        check image-classification vit-base-image-classification --device gpu
        check zero-shot-image-classification clip-vit-base-patch32 --device gpu)
fi

for ((round = 1; round <= rounds; round++)); do
    for run in "${runs[@]}"; do
        read -r task model batch <<<"$run"
        for t in "${threads[@]}"; do
            # The CLI takes --threads once per process (rayon's global pool).
            envs=()
            webformers "$task" "$model" "$batch" "webformers cpu threads=$t $task batch=$batch" --device cpu --threads "$t"
            for dtype in fp32 q8; do
                n=$reps
                ((batch == 1)) || n=$batch_reps
                node "$tjs" --task "$task" --model "$model" --dtype "$dtype" --threads "$t" --image "$image" \
                    --images "$batch" --labels "$labels" --reps "$n" --warmup 1 2>"$tmp/err" |
                    record "transformers.js $dtype threads=$t $task batch=$batch" ||
                    echo "transformers.js $dtype threads=$t: failed: $(tail -1 "$tmp/err")"
            done
        done
        if ((gpu)) && [[ $gpu_batches == *" $batch "* ]]; then
            envs=("${lavapipe[@]}") n_calls=$gpu_reps
            webformers "$task" "$model" "$batch" "webformers lavapipe $task batch=$batch" --device gpu
            n_calls=
        fi
        echo "# $(load)"
    done
done

# The table: images/s (median call), the call's preprocessing alone, and the ratio to
# Transformers.js fp32 on as many threads in the same run (lavapipe: to its fp32 on the most).
node - "$results" "${threads[-1]}" <<'JS'
const fs = require('fs');
const [file, most] = process.argv.slice(2);
const rows = fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const key = (r) => `${r.task} ${r.images}`;
const threadsOf = (r) => (/threads=(\d+)/.exec(r.config) ?? [, most])[1];
const base = new Map();
for (const r of rows) if (r.config.startsWith('transformers.js fp32')) base.set(`${key(r)} ${threadsOf(r)}`, r.images_per_s);
console.log('\n| task | images per call | runtime | threads | images/s | latency (ms) | preprocessing (ms) | vs Transformers.js fp32 |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const runtime = r.config.replace(/ threads=\d+/, '').replace(/ (image|zero-shot).*/, '');
  const b = base.get(`${key(r)} ${threadsOf(r)}`);
  const pre = r.preprocess_ms === undefined ? '' : r.decode_ms === undefined ? `${r.preprocess_ms}` : `${(r.decode_ms + r.preprocess_ms).toFixed(1)} (decode ${r.decode_ms})`;
  console.log(`| ${r.task} | ${r.images} | ${runtime} | ${r.config.includes('lavapipe') ? '' : threadsOf(r)} | ${r.images_per_s} | ${r.latency_ms} | ${pre} | ${b ? (r.images_per_s / b).toFixed(2) : ''} |`);
}
JS
