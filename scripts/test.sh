#!/usr/bin/env bash
# Every test, from a fresh machine: installs the tools (lavapipe, Chromium, wasm tooling),
# fetches the real models and huggingface_hub, then runs the native tests with the GPU backend
# on lavapipe (a GPU test that finds no adapter fails here), the browser tests in headless
# Chromium, and the npm package's tests in Node and headless Chromium; every fuzz target runs
# FUZZ_RUNS inputs from a fixed seed (default 4000), at most FUZZ_SECONDS (default 60) each: the
# sanitizer build and the runs added about 12 minutes to a 2-CPU CI run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase's minutes are printed as it ends (CI allows 90 in all): what to trim when it grows.
phase_started=$SECONDS
phase_done() {
    echo "== $1 took $(((SECONDS - phase_started) / 60)) min $(((SECONDS - phase_started) % 60)) s (total $((SECONDS / 60)) min)"
    phase_started=$SECONDS
}

scripts/setup-tools.sh
scripts/fetch-models.sh
# huggingface_hub, for the cache interoperability tests (tests/hub runs its own Hub stand-in).
scripts/hub-python.sh
phase_done "set-up"

export WEBFORMERS_REQUIRE_GPU=1
# Mesa's software Vulkan prints an error line per device when this is unset.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
# lavapipe: a real Vulkan driver on the CPU, with shader-f16 and subgroups.
export WGPU_BACKEND=vulkan

echo "== native tests (CPU and GPU backends)"
cargo test --release --workspace
phase_done "native tests (build included)"

echo "== fuzzing: every parser of untrusted bytes, ${FUZZ_RUNS:=4000} inputs each from a fixed seed, at most ${FUZZ_SECONDS:=60} s (a crash, a hang or an oversized allocation fails)"
FUZZ_RUNS="$FUZZ_RUNS" scripts/fuzz.sh "$FUZZ_SECONDS"
phase_done "fuzzing (build included)"

echo "== browser tests (WebGPU on SwiftShader, wasm simd128)"
scripts/test-wasm.sh
phase_done "browser tests (build included)"

echo "== the npm package: Node (WASM) and headless Chromium (WebGPU, WASM, workers, the demo)"
scripts/test-npm.sh
phase_done "npm package tests (build included)"

# The demo tests' screenshots, each taken after its page's result was checked: the CI artifact.
echo "demo screenshots (the CI artifact): target/screenshots/ ($(ls target/screenshots | wc -l) files)"
echo "all tests passed"
