#!/usr/bin/env bash
# The main job, from a fresh machine: fetch the real all-MiniLM-L6-v2, build the release CLI,
# embed a few sentences on the GPU when one exists (else the CPU), and print their similarities.
#
# Usage: scripts/demo.sh [--device auto|gpu|cpu] [more sentences...]
set -euo pipefail
cd "$(dirname "$0")/.."

device=auto
if [[ "${1:-}" == "--device" ]]; then
    device="$2"
    shift 2
fi

scripts/fetch-models.sh minilm
cargo build --release -q -p webformers-cli

sentences=("$@")
if ((${#sentences[@]} == 0)); then
    sentences=(
        "A man is eating food."
        "A man is eating a piece of bread."
        "The girl is carrying a baby."
        "A man is riding a horse."
        "A woman is playing violin."
        "Two men pushed carts through the woods."
    )
fi
exec target/release/webformers run feature-extraction --model .cache/models/all-MiniLM-L6-v2 \
    --device "$device" --pooling mean --normalize "${sentences[@]}"
