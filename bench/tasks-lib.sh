# What the benchmarks share (bench/tasks.sh, bench/vision-tasks.sh, bench/speech.sh, bench/seq2seq.sh); sourced from the
# repository root, after `set -euo pipefail`.
models=.cache/bench-models
tjs=bench/transformersjs/tasks.mjs

# Exits unless every named model of .cache/bench-models is there; $1 is the script that makes them.
need_models() {
    local maker=$1 m
    shift
    for m in "$@"; do
        [[ -f $models/$m/onnx/model_quantized.onnx ]] || {
            echo "missing $models/$m: run .cache/pyref-venv/bin/python bench/$maker" >&2
            exit 1
        }
    done
}

# Sets $tmp (removed on exit) and $wf: a private copy of the CLI (a target directory shared with
# other work may be rebuilt mid-run), this checkout's release build unless WEBFORMERS names one.
prepare_cli() {
    [[ -n ${WEBFORMERS:-} ]] || cargo build --release -q -p webformers-cli
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    cp "${WEBFORMERS:-${CARGO_TARGET_DIR:-target}/release/webformers}" "$tmp/webformers"
    wf=$tmp/webformers
}

load() { uptime | sed 's/.*load/load/'; }

# check TASK MODEL [CLI flags...]: webformers (the flags choose its device; default the CPU) and
# Transformers.js fp32 and q8 (2 threads; CHECK_DTYPES="fp32" for fp32 only) on
# bench/task-checks.json's inputs for TASK, compared by bench/js/task-compare.mjs; prints one line
# per dtype.
check() {
    local task=$1 model=$2 input options dtype
    shift 2
    (($#)) || set -- --device cpu
    input=$(node -p "JSON.stringify(require('./bench/task-checks.json')['$task'].input)")
    options=$(node -p "JSON.stringify(require('./bench/task-checks.json')['$task'].options)")
    "$wf" run "$task" --model "$models/$model" "$@" --input "$input" --options "$options" --json \
        >"$tmp/$task.json" 2>"$tmp/$task.err" || {
        echo "check $task: webformers failed: $(tail -1 "$tmp/$task.err")"
        return
    }
    for dtype in ${CHECK_DTYPES:-fp32 q8}; do
        node "$tjs" --task "$task" --model "$model" --dtype "$dtype" --threads 2 --compare "$tmp/$task.json" 2>/dev/null |
            node -e "const r = JSON.parse(require('fs').readFileSync(0)); console.log('check $task ${*} vs $dtype: ' + JSON.stringify(r.check_vs_webformers))"
    done
}

# The runtimes this machine has, for scripts with $run_browser, $run_wf and $gpu switches: no
# npm/dist turns the Chromium runs off, no lavapipe the GPU ones; sets $lavapipe (its environment).
runtimes_available() {
    if ((run_browser && run_wf)) && [[ ! -f npm/dist/index.js ]]; then
        echo "# no npm/dist (cd npm && npm run build): Chromium runs skipped"
        run_browser=0
    fi
    lavapipe=(WGPU_BACKEND=vulkan VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json)
    if [[ $gpu == 1 && ! -f /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ]]; then
        echo "# no lavapipe (mesa-vulkan-drivers): GPU runs skipped"
        gpu=0
    fi
}

# record LABEL MODEL: prints each JSON line and keeps it, labelled, in $results (for the table).
record() {
    local label=$1 model=$2 line
    while IFS= read -r line; do
        echo "$label $model: $line"
        node -e "const [l, m, j] = process.argv.slice(1); console.log(JSON.stringify({ config: l, bench_model: m, ...JSON.parse(j) }))" \
            "$label" "$model" "$line" >>"$results"
    done
}
