#!/usr/bin/env bash
# The soak (issue 17; not in CI): loads, runs and disposes a pipeline of every task in a loop for
# MINUTES (default 30), at the same time natively on the CPU, natively on the GPU (wgpu; lavapipe
# here) and in headless Chromium (WASM, then WebGPU), and checks that nothing grows once warm:
# resident memory, open files, threads and device buffers natively (tests/soak.rs); wasm memory,
# JS heap, live GPUBuffers and Chromium's resident memory in the browser
# (bench/js/soak-browser.mjs). Each part prints its figures as one JSON line (also written to
# target/soak/*.json) and exits 1 when a bound is exceeded or a result changes; this script exits 1
# when any part did. BENCHMARKS.md "Soak" records a run.
#
# Needs: the models (scripts/fetch-models.sh), npm/dist built (cd npm && npm run build), Chromium
# (scripts/setup-tools.sh), a Vulkan adapter for the GPU part (lavapipe: SETUP.md).
#
# Usage: bench/soak.sh [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-30}
cargo build --release -q -p webformers-tests --example soak
out=target/soak
mkdir -p "$out"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)} WGPU_BACKEND=${WGPU_BACKEND:-vulkan}
echo "# $(date -u +%FT%TZ) $(nproc) CPUs, $(uptime | sed 's/.*load/load/'), $minutes min each part, in parallel"
target/release/examples/soak --minutes "$minutes" --device cpu --json "$out/native-cpu.json" 2>"$out/native-cpu.log" &
cpu=$!
target/release/examples/soak --minutes "$minutes" --device gpu --json "$out/native-gpu.json" 2>"$out/native-gpu.log" &
gpu=$!
node bench/js/soak-browser.mjs --minutes "$minutes" --json "$out/browser.json" 2>"$out/browser.log" &
browser=$!
status=0
for part in cpu gpu browser; do
    wait "${!part}" || { status=1; echo "# the $part part failed: see $out/*.log"; }
done
cat "$out"/native-cpu.json "$out"/native-gpu.json "$out"/browser.json 2>/dev/null
echo "# $(date -u +%FT%TZ) $(uptime | sed 's/.*load/load/')"
exit $status
