#!/usr/bin/env bash
# The host's side of a GPU decode step: the same `webformers bench text-generation` on wgpu's noop
# backend (WGPU_BACKEND=noop WGPU_NOOP_BACKEND=1: buffers and mapping work, no command runs), so
# its tokens/s is the most this CPU lets any GPU decode: graph building, recording, bind groups,
# wgpu's encoding and validation, submission and the readback's mapping. A real GPU's driver adds
# its own share on top. Figures: BENCHMARKS.md, "Text generation".
#
#   bench/host-overhead.sh [CLI] [MODEL...]
#       CLI: the release binary (default target/release/webformers, built when missing);
#       MODEL: GGUF files or synthetic:llama-3.2-1b:q4_0 (the default: SmolLM2-135M Q4_1 when
#       fetched, and the synthetic Llama-3.2-1B q4_0).
set -euo pipefail
cd "$(dirname "$0")/.."
cli=${1:-target/release/webformers}
shift || true
[[ -x $cli ]] || cargo build --release -p webformers-cli
models=("$@")
if ((${#models[@]} == 0)); then
    [[ ! -f .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf ]] || models+=(.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf)
    models+=(synthetic:llama-3.2-1b:q4_0)
fi
for model in "${models[@]}"; do
    json=$(WGPU_BACKEND=noop WGPU_NOOP_BACKEND=1 "$cli" bench text-generation --model "$model" --device gpu \
        --prompt-tokens 8 --decode-tokens 256 --reps 3 2>/dev/null | tail -1)
    python3 -c '
import json, sys
j = json.loads(sys.argv[2])
rate = j["decode_tokens_per_s"]
per = j.get("gpu_dispatches_per_token", 0)
made = j.get("gpu_bind_groups_per_token", "?")
print(f"{sys.argv[1]}: host side {rate} tokens/s = {1000 / rate:.3f} ms per token, {per:.0f} dispatches "
      f"({1e6 / rate / max(per, 1):.1f} us each), {made} bind groups made per token")
' "$model" "$json"
done
