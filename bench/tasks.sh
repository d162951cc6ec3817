#!/usr/bin/env bash
# Native CPU task benchmarks: text-classification throughput (bench/corpus.json's 64 sentences in
# batches of 32, sentences/s) and question-answering latency (bench/qa.json: one question, a
# 298-token context), webformers (`webformers bench TASK`) beside Transformers.js 4.3.1 on ONNX
# Runtime in Node (bench/transformersjs/tasks.mjs, fp32 and q8), on the BERT-base-sized random
# models of bench/make-task-models.py, one configuration after the other in one run. First it
# checks that both runtimes give the same results on bench/task-checks.json's inputs.
# Prints one JSON line per configuration and the load average before and after.
#
# Usage: bench/tasks.sh [threads...]   (default: 1 2)
# Env: ROUNDS (default 1): repeat the measurements, configurations alternating;
#      TC_REPS (default 5) corpus passes, QA_REPS (default 20) question-answering calls;
#      WEBFORMERS: a CLI binary to use instead of building this checkout's.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=("$@")
((${#threads[@]})) || threads=(1 2)
rounds=${ROUNDS:-1}
tc_reps=${TC_REPS:-5}
qa_reps=${QA_REPS:-20}
source bench/tasks-lib.sh
tc=bert-base-sequence-classification
qa=bert-base-question-answering
need_models make-task-models.py "$tc" "$qa"
prepare_cli

echo "# $(date -u +%FT%TZ) $(load)"
echo "# checks: webformers (2 threads) against Transformers.js on bench/task-checks.json"
check text-classification "$tc" --device cpu --threads 2
check question-answering "$qa" --device cpu --threads 2

for ((round = 1; round <= rounds; round++)); do
    for t in "${threads[@]}"; do
        # The CLI takes --threads once per process (rayon's global pool).
        "$wf" bench text-classification --model "$models/$tc" --device cpu --threads "$t" \
            --corpus bench/corpus.json --batch 32 --reps "$tc_reps" 2>/dev/null | sed "s/^/webformers threads=$t: /"
        for dtype in fp32 q8; do
            node "$tjs" --task text-classification --model "$tc" --dtype "$dtype" --threads "$t" \
                --corpus bench/corpus.json --batch 32 --reps "$tc_reps" 2>/dev/null |
                sed "s/^/transformers.js $dtype threads=$t: /"
        done
        "$wf" bench question-answering --model "$models/$qa" --device cpu --threads "$t" \
            --input "$(cat bench/qa.json)" --reps "$qa_reps" 2>/dev/null | sed "s/^/webformers threads=$t: /"
        for dtype in fp32 q8; do
            node "$tjs" --task question-answering --model "$qa" --dtype "$dtype" --threads "$t" \
                --input bench/qa.json --reps "$qa_reps" 2>/dev/null | sed "s/^/transformers.js $dtype threads=$t: /"
        done
        echo "# $(load)"
    done
done
