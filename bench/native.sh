#!/usr/bin/env bash
# Native CPU (and GPU) embedding throughput and latency of webformers beside Transformers.js 4.3.1
# on ONNX Runtime (Node), run one after the other in the same session, on the same corpus.
# Needs: the release CLI, the model (scripts/fetch-models.sh minilm), and the ONNX baseline set
# up as bench/README.md says. Prints one JSON line per configuration and the load average.
#
# Usage: bench/native.sh [threads...]   (default: 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
threads=("$@")
((${#threads[@]})) || threads=(1 2)
cargo build --release -q -p webformers-cli
model=.cache/models/all-MiniLM-L6-v2
echo "# $(date -u +%FT%TZ) $(uptime | sed 's/.*load/load/')"
for t in "${threads[@]}"; do
    # The CLI takes --threads once per process (rayon's global pool).
    target/release/webformers bench feature-extraction --model "$model" --device cpu --threads "$t" \
        --reps 7 --latency-runs 100 2>/dev/null | sed "s/^/webformers threads=$t: /"
    node bench/transformersjs/bench.mjs --dtype fp32 --threads "$t" 2>/dev/null | sed "s/^/onnxruntime fp32 threads=$t: /"
done
echo "# $(uptime | sed 's/.*load/load/')"
