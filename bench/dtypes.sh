#!/usr/bin/env bash
# all-MiniLM-L6-v2 embeddings at every dtype, natively on the CPU, beside Transformers.js 4.3.1 on
# ONNX Runtime (Node) at fp32 and q8, in one session, on two workloads: the short-sentence corpus
# (bench/corpus.json: 64 sentences, 2504 real tokens, batches of 32) and 16 passages of 255-256
# tokens (bench/passages.json, batches of 8: neither side pads more than a token, so this is per
# token). Both sides check their embeddings against PyTorch. Needs the release CLI, the model
# (scripts/fetch-models.sh minilm) and the ONNX export (bench/README.md).
#
# Usage: bench/dtypes.sh [threads...]   (default: 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=("$@")
((${#threads[@]})) || threads=(1 2)
cargo build --release -q -p webformers-cli
model=.cache/models/all-MiniLM-L6-v2
echo "# $(date -u +%FT%TZ) $(uptime | sed 's/.*load/load/')"
for t in "${threads[@]}"; do
    for workload in corpus:32 passages:8; do
        corpus="bench/${workload%%:*}.json" batch="${workload##*:}"
        for dtype in fp32 fp16 q8 q4; do
            # The CLI takes --threads once per process (rayon's global pool).
            target/release/webformers bench feature-extraction --model "$model" --device cpu --threads "$t" \
                --dtype "$dtype" --corpus "$corpus" --batch "$batch" --reps 5 --latency-runs 30 2>/dev/null |
                sed "s|^|webformers $dtype threads=$t $corpus: |"
        done
        for dtype in fp32 q8; do
            node bench/transformersjs/bench.mjs --dtype "$dtype" --threads "$t" --corpus "$corpus" --batch "$batch" \
                --reps 5 --latency-runs 30 2>/dev/null | sed "s|^|onnxruntime $dtype threads=$t $corpus: |"
        done
    done
done
echo "# $(uptime | sed 's/.*load/load/')"
