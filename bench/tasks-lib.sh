# What the native task benchmarks share (bench/tasks.sh, bench/vision-tasks.sh); sourced from the
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
