#!/usr/bin/env bash
# The browser demos, from one command: fetches the real all-MiniLM-L6-v2, SmolLM2-135M-Instruct
# (Q4_1 GGUF) and whisper-tiny.en, builds the npm package (the engine for wasm32 plus its JS), and serves demos/ on
# http://127.0.0.1:8080/ with the package under /webformers/, the models under /models/ and the
# test fixtures under /fixtures/ (the text-tasks demo defaults to the tiny task models there, so it
# runs offline; the vision demos start on the test photos of /fixtures/images/ and take
# ?model=/fixtures/vision/<tiny model> to run offline; the translate demo, translate.html, takes
# opus-mt-en-fr and distilbart-cnn-6-6 from .cache/models/ when a model folder is there (no
# package carries them, so nothing fetches them) and the tiny seq2seq test models otherwise). Open the printed URL in a browser with WebGPU (Chrome, Edge) or without (the demos
# then run on WASM SIMD).
#
# Usage: scripts/demo-web.sh [--port N]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

port=8080
if [[ "${1:-}" == "--port" ]]; then
    port="$2"
fi

scripts/fetch-models.sh minilm smollm2 whisper-tiny.en
if ! command -v wasm-bindgen >/dev/null || ! rustup target list --installed | grep -qx wasm32-unknown-unknown \
    || ! rustup component list --toolchain "$(cat scripts/nightly-toolchain)" --installed 2>/dev/null | grep -qx rust-src; then
    scripts/setup-tools.sh
fi
(cd npm && npm run build)

echo "demos: open http://127.0.0.1:$port/ (Ctrl-C stops)"
# --isolate: COOP/COEP headers, so the pages are crossOriginIsolated and 'wasm' runs threaded.
exec node scripts/static-server.mjs --port "$port" --quiet --isolate \
    --mount /=demos \
    --mount /webformers/=npm/dist \
    --mount /models/=.cache/models \
    --mount /fixtures/=tests/fixtures
