#!/usr/bin/env bash
# The demo gallery as static files, deployable to any static host: writes OUT/ with
#   OUT/index.html and every demo page (demos/),
#   OUT/webformers/      the built package (npm/dist: the engine's two wasm builds, the worker and
#                        thread-worker modules the pages start),
#   OUT/fixtures/        the sample photos the vision pages start on, and the tiny models the pages
#                        fall back to when their real model is absent (so the gallery runs as
#                        deployed, with no model server); real models come from the Hub by id
#                        (?model=org/name, or the text-tasks page's model fields),
#   OUT/_headers         the two headers threads need, in the format Netlify and Cloudflare Pages
#                        read; any other host must send them on every response:
#                          Cross-Origin-Opener-Policy: same-origin
#                          Cross-Origin-Embedder-Policy: require-corp
#                        Without them the pages still run, single-threaded (no SharedArrayBuffer).
# The pages import the package from /webformers/ and the samples from /fixtures/, so serve OUT at
# the root of its origin. Try it: node scripts/static-server.mjs --isolate --mount /=OUT
#
# Usage: scripts/build-demos.sh [--skip-package-build] OUT
set -euo pipefail
cd "$(dirname "$0")/.."

build_package=1
if [[ "${1:-}" == "--skip-package-build" ]]; then
    build_package=0
    shift
fi
out="${1:?usage: scripts/build-demos.sh [--skip-package-build] OUT}"

if ((build_package)); then
    (cd npm && npm run build)
fi
[[ -f npm/dist/index.js ]] || { echo "build-demos: npm/dist is missing; run without --skip-package-build" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out/webformers" "$out/fixtures"
cp -r demos/. "$out/"
cp -r npm/dist/. "$out/webformers/"
cp -r tests/fixtures/images "$out/fixtures/images"
# The fallback models the pages name (demos/*/main.js, demos/translate.js).
mkdir -p "$out/fixtures/tiny-tasks" "$out/fixtures/whisper" "$out/fixtures/seq2seq"
for m in distilbert-sequence-classification bert-sequence-classification bert-token-classification bert-question-answering bert-masked-lm; do
    cp -r "tests/fixtures/tiny-tasks/$m" "$out/fixtures/tiny-tasks/"
done
cp -r tests/fixtures/tiny-llama "$out/fixtures/tiny-llama"
cp -r tests/fixtures/whisper/tiny-whisper-multi "$out/fixtures/whisper/"
cp -r tests/fixtures/seq2seq/tiny-marian tests/fixtures/seq2seq/tiny-bart "$out/fixtures/seq2seq/"
cat >"$out/_headers" <<'EOF'
/*
  Cross-Origin-Opener-Policy: same-origin
  Cross-Origin-Embedder-Policy: require-corp
EOF
echo "build-demos: wrote $out ($(du -sh "$out" | cut -f1))"
