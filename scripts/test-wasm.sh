#!/usr/bin/env bash
# Runs the op tests (core/tests/ops.rs, core/tests/decoder_ops.rs, core/tests/int8.rs) and the tiny
# decoders' logits against transformers (core/tests/tiny_decoders.rs) in headless Chromium through
# wasm-bindgen-test-runner (the cargo runner for wasm32 in .cargo/config.toml): on the CPU
# backend built with simd128 and on the WebGPU backend over the browser's adapter (SwiftShader on
# a machine without a GPU); then the op tests again with the relaxed-simd CPU kernels. Needs
# scripts/setup-tools.sh first.
#
# WEBFORMERS_REQUIRE_GPU (default 1 here) is compiled into the tests: with 1, a browser without
# a WebGPU adapter fails them instead of skipping the GPU runs.
# Arguments go to `cargo test` (default: `-- --nocapture`, which shows the devices in use).
#   scripts/test-wasm.sh                       # all op tests, with the adapter printed
#   scripts/test-wasm.sh -- softmax            # only tests whose names contain "softmax"
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

export WEBFORMERS_REQUIRE_GPU="${WEBFORMERS_REQUIRE_GPU:-1}"
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
chromium="${CHROMIUM:-/usr/bin/chromium}"
# The runner's limit for a whole test binary's page (its default, 20 s, leaves little margin on
# a loaded 2-core machine; a run takes about 7 s here).
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-600}"

for tool in wasm-bindgen-test-runner "$CHROMEDRIVER" "$chromium"; do
    command -v "$tool" >/dev/null || { echo "test-wasm: $tool is missing; run scripts/setup-tools.sh" >&2; exit 1; }
done

# A fresh profile per run. --enable-unsafe-webgpu gives headless Chromium its WebGPU adapter;
# --enable-webgpu-developer-features fills in the adapter's description (otherwise empty), which
# wgpu reports as the adapter name the tests print; the rest keep Chromium off the network.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/webdriver.json" <<JSON
{
  "goog:chromeOptions": {
    "binary": "$chromium",
    "args": [
      "--headless",
      "--no-sandbox",
      "--enable-unsafe-webgpu",
      "--enable-webgpu-developer-features",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--user-data-dir=$tmp/profile"
    ]
  }
}
JSON
export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$tmp/webdriver.json"

if (($# == 0)); then
    set -- -- --nocapture
fi
# --release: the dependencies then build as the npm package's build (scripts/test-npm.sh) builds
# them, so the two share most of their artifacts (on a 2-CPU machine the debug build alone took
# 7m46s; in release after the package's build, 2 min).
cargo test --release -p webformers-core --target wasm32-unknown-unknown --test ops --test decoder_ops --test int8 --test tiny_decoders "$@"
# Again with the relaxed-simd kernels (the npm package's relaxed builds: fused multiply-adds,
# relaxed integer dot products): the CPU ops, attention and the int8 matmuls against their
# references. Only the core crate recompiles for the feature.
echo "== test-wasm: the relaxed-simd kernels"
cargo test --release -p webformers-core --features relaxed-simd --target wasm32-unknown-unknown --test ops --test decoder_ops --test int8 "$@"
