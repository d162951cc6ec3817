#!/usr/bin/env bash
# The demo gallery as static files, deployable to any static host: writes OUT/ with
#   OUT/index.html and every demo page (demos/),
#   OUT/webformers/      the built package (npm/dist: the engine's two wasm builds, the worker and
#                        thread-worker modules the pages start),
#   OUT/fixtures/        the sample photos the vision pages start on, and the tiny models the pages
#                        fall back to when their real model cannot be loaded (so the gallery runs
#                        offline too),
#   OUT/site.js          where the pages' default models come from: Hub ids (chat
#                        HuggingFaceTB/SmolLM2-135M-Instruct, speech Xenova/whisper-tiny.en,
#                        translate Xenova/opus-mt-en-fr and Xenova/distilbart-cnn-6-6, semantic
#                        search Xenova/all-MiniLM-L6-v2), since a static host has no /models/
#                        folder; --local-models keeps the demo server's /models/ folders (for a host
#                        that serves them there), --remote-host URL fetches the Hub ids from a Hub
#                        mirror instead of huggingface.co. ?model=org/name picks any other,
#   OUT/_headers         the two headers threads need, in the format Netlify and Cloudflare Pages
#                        read; any other host must send them on every response:
#                          Cross-Origin-Opener-Policy: same-origin
#                          Cross-Origin-Embedder-Policy: require-corp
#                        Without them the pages still run, single-threaded (no SharedArrayBuffer).
# The pages import the package from /webformers/ and the samples from /fixtures/, so serve OUT at
# the root of its origin. Try it: node scripts/static-server.mjs --isolate --mount /=OUT
#
# Usage: scripts/build-demos.sh [--skip-package-build] [--local-models] [--remote-host URL] OUT
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: scripts/build-demos.sh [--skip-package-build] [--local-models] [--remote-host URL] OUT"
build_package=1
models_from=hub
remote_host=null
while [[ "${1:-}" == --* ]]; do
    case "$1" in
        --skip-package-build) build_package=0 ;;
        --local-models) models_from=local ;;
        --remote-host)
            [[ "${2:-}" =~ ^https?://[^\"\'[:space:]]+$ ]] || { echo "build-demos: --remote-host needs an http(s) URL" >&2; exit 2; }
            remote_host="'${2%/}/'"
            shift
            ;;
        *) echo "build-demos: unknown option $1; $usage" >&2; exit 2 ;;
    esac
    shift
done
out="${1:?$usage}"

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
# Replaces demos/site.js (the demo server's defaults: /models/).
cat >"$out/site.js" <<EOF
// Written by scripts/build-demos.sh: the default models of this static build (see demos/site.js).
export const MODELS_FROM = '$models_from';
export const REMOTE_HOST = $remote_host;
EOF
cat >"$out/_headers" <<'EOF'
/*
  Cross-Origin-Opener-Policy: same-origin
  Cross-Origin-Embedder-Policy: require-corp
EOF
echo "build-demos: wrote $out ($(du -sh "$out" | cut -f1))"
