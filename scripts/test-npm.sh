#!/usr/bin/env bash
# The npm package's tests (npm/test/): builds the package (npm/dist: the engine for wasm32 with
# simd128, its JS glue, the package's modules), then runs it
#   - the Tensor, its functions, LogLevel and env.backends (tensor.test.mjs), and AutoTokenizer
#     (tokenizer.test.mjs) against transformers.js 4.3.1's, run side by side (installed under
#     bench/transformersjs);
#   - AutoModel, the AutoModelFor... classes and AutoProcessor (automodel.test.mjs): MiniLM's
#     last_hidden_state against PyTorch, the tiny classifiers', decoder's and image processors'
#     outputs against transformers and the pipelines, bad input; a pipeline's `model` against the
#     same references; in Chromium, a class and a pipeline's model on WebGPU, a worker pipeline's;
#   - in Node on WASM (node.test.mjs): the real all-MiniLM-L6-v2 against the PyTorch reference,
#     text generation (tiny Llama; SmolLM2 from GGUF against transformers' greedy replies), bad
#     input, the TypeScript types, the packed package in an empty folder;
#   - in headless Chromium through puppeteer-core (browser.test.mjs): WebGPU (SwiftShader) and
#     WASM against the reference, pipelines in a Web Worker, the tiny Qwen3, Gemma 3, SmolLM3 and
#     Phi-3 decoders' greedy ids, the semantic-search and chat demos, bad input;
#   - the image tasks (vision-node.test.mjs, vision-browser.test.mjs): every case of
#     tests/fixtures/vision/*-reference.json through pipeline() in Node (files decoded by the
#     engine) and in Chromium on WASM and WebGPU (decoded by the browser), each accepted input
#     type, worker pipelines, the browser's decoding measured against PIL's, bad input, and the
#     image-classification, object-detection and photo-search demos;
#   - speech recognition (asr-node.test.mjs, asr-browser.test.mjs): the tiny random Whisper
#     models and whisper-tiny.en through pipeline() against Python's pipeline() answers (text,
#     segment and word timestamps, language/task, chunk_length_s), every audio input, AbortSignal
#     and InterruptableStoppingCriteria, bad input; in Chromium on WASM and WebGPU, in a worker,
#     and the speech demo;
#   - translation, summarization, text2text-generation (seq2seq-node.test.mjs,
#     seq2seq-browser.test.mjs): the tiny random Marian, BART, M2M100, NLLB, T5 and Flan-T5 models through pipeline()
#     against Python's pipeline() answers (tests/fixtures/seq2seq/reference.json: greedy and beam
#     search), streamed text, the cut-text warning, AbortSignal and InterruptableStoppingCriteria,
#     bad input; in Chromium on WASM and WebGPU, in a worker, and the translate demo;
#   - Hub models (hub.test.mjs) against the Hub stand-in (tests/hub/server.py, started on free
#     ports of 127.0.0.1): cold and warm loads through IndexedDB, the wasm heap on WebGPU, faults
#     on the wire, the storage quota, tokens, GGUF streaming, Node; and transformers.js's cache
#     settings (custom-cache.test.mjs, about 25 s): env.customCache for Hub and folder models,
#     cold loads putting every file and warm ones asking no server, in Node and over two pages;
#     env.useWasmCache: the second page fetches no .wasm, single-threaded and threaded.
#   - the Manifest V3 browser extension (extension.test.mjs): demos/extension/build.mjs packs it,
#     Chromium loads it unpacked; its side panel classifies text from its URL and from the service
#     worker against Python's answers, threaded, with no CSP violation (about 5 s); in a service
#     worker the package rejects with a clear Error.
#   - the demo gallery (gallery.test.mjs): demos/index.html links every demo page; the folder
#     scripts/build-demos.sh writes serves alone and runs a demo, threaded, and its pages default
#     to Hub ids (the chat page's, from the Hub stand-in; about 6 s in all). Every demo test saves
#     a screenshot of its checked result into target/screenshots/ (CI keeps it as an artifact);
#   - the port test (port.test.mjs): transformers.js's documented snippets (pipelines, the
#     model classes and processors, the Tensor helpers) with only the import changed, their model ids served by the Hub stand-in (README.md: "Porting from transformers.js");
#   - the native engine in Node (native-node.test.mjs): scripts/build-node-addon.sh's Node-API
#     addon under device 'cpu': MiniLM at fp32 and q8 against PyTorch and beside the WASM build,
#     every tiny task model against Python's pipeline(), streamed text, a Hub model fetched
#     natively into the huggingface_hub cache (cold, warm, offline), bad input;
#   - device faults (device-faults.test.mjs): weights over WebAssembly's 4 GiB memory are a clear
#     Error in Node, and the instance works on (a destroyed WebGPU device: browser.test.mjs).
#   - bundlers (bundlers.test.mjs): the packed .tgz in the Vite, webpack, esbuild and Next.js apps
#     of demos/bundlers/ (their tools from the registry, pinned by their lock files: npm ci), each
#     built and its page run cross-origin isolated in Chromium: the threaded build and a worker
#     pipeline against the MiniLM reference (about 70 s with a warm ~/.npm, Next.js the most of it).
# Needs scripts/setup-tools.sh (Chromium, wasm-bindgen); fetches the models (all-MiniLM-L6-v2,
# SmolLM2-135M-Instruct Q4_1, whisper-tiny.en) when missing.
#
# Usage: scripts/test-npm.sh [node|native|browser|hub|faults|vision|audio|asr|seq2seq|tensor|extension|automodel|bundlers|gallery|port]   (default: all; automodel: automodel.test.mjs alone; tensor: the Tensor and AutoTokenizer against transformers.js; vision: the
# image tasks' two files alone; audio: read_audio/RawAudio in Node and Chromium; seq2seq: the text
# encoder-decoder tasks' two files)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# Node >= 20 (the image has it; Debian's own nodejs is older).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "test-npm: installing nodejs and npm"
    SUDO=()
    [[ "$(id -u)" != 0 ]] && SUDO=(sudo)
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if ((node_major < 20)); then
    echo "test-npm: Node $(node --version) is too old; the package needs Node >= 20" >&2
    exit 1
fi
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[[ -x "$CHROMIUM" ]] || { echo "test-npm: $CHROMIUM is missing; run scripts/setup-tools.sh" >&2; exit 1; }
scripts/fetch-models.sh minilm smollm2 whisper-tiny.en   # a no-op when present

cd npm
# The test tools (puppeteer-core, typescript) from the committed lock file; no install scripts
# run, so nothing downloads a browser.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
npm run build
# The native engine for Node (npm/native/<triple>/), which device 'cpu' takes in Node.
../scripts/build-node-addon.sh

# transformers.js 4.3.1 for tensor.test.mjs, which runs its Tensor beside the package's (the
# benchmark's pinned copy; no install scripts run).
case "${1:-all}" in node | tensor | all)
    [[ -d ../bench/transformersjs/node_modules/@huggingface/transformers ]] ||
        (cd ../bench/transformersjs && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) ;;
esac

case "${1:-all}" in
    tensor) node --test test/tensor.test.mjs test/tokenizer.test.mjs ;;
    native) node --test --test-concurrency=1 --test-timeout=600000 test/native-node.test.mjs ;;
    node) node --test --test-concurrency=1 --test-timeout=600000 test/stopping.test.mjs test/tensor.test.mjs test/tokenizer.test.mjs test/automodel.test.mjs test/node.test.mjs test/native-node.test.mjs test/vision-node.test.mjs test/audio-node.test.mjs test/asr-node.test.mjs test/asr-events.test.mjs test/seq2seq-node.test.mjs ;;
    browser) node --test --test-concurrency=1 --test-timeout=900000 test/browser.test.mjs test/vision-browser.test.mjs test/audio-browser.test.mjs test/asr-browser.test.mjs test/seq2seq-browser.test.mjs test/extension.test.mjs ;;
    audio) node --test --test-concurrency=1 --test-timeout=900000 test/audio-node.test.mjs test/audio-browser.test.mjs ;;
    asr) node --test --test-concurrency=1 --test-timeout=900000 test/asr-node.test.mjs test/asr-events.test.mjs test/asr-browser.test.mjs ;;
    seq2seq) node --test --test-concurrency=1 --test-timeout=900000 test/seq2seq-node.test.mjs test/seq2seq-browser.test.mjs ;;
    hub) node --test --test-concurrency=1 --test-timeout=900000 test/hub.test.mjs test/custom-cache.test.mjs ;;
    extension) node --test --test-timeout=900000 test/extension.test.mjs ;;
    automodel) node --test --test-timeout=900000 test/automodel.test.mjs ;;
    faults) node --test --test-timeout=900000 test/device-faults.test.mjs ;;
    bundlers) node --test --test-timeout=900000 test/bundlers.test.mjs ;;
    vision) node --test --test-concurrency=1 --test-timeout=900000 test/vision-node.test.mjs test/vision-browser.test.mjs ;;
    gallery) node --test --test-timeout=900000 test/gallery.test.mjs ;;
    port) node --test --test-timeout=900000 test/port.test.mjs ;;
    all)
        node --test --test-concurrency=1 --test-timeout=900000 test/stopping.test.mjs test/tensor.test.mjs test/tokenizer.test.mjs test/automodel.test.mjs test/node.test.mjs test/native-node.test.mjs test/vision-node.test.mjs test/audio-node.test.mjs test/asr-node.test.mjs test/asr-events.test.mjs \
            test/seq2seq-node.test.mjs test/browser.test.mjs test/vision-browser.test.mjs test/audio-browser.test.mjs test/asr-browser.test.mjs \
            test/seq2seq-browser.test.mjs test/extension.test.mjs test/hub.test.mjs test/custom-cache.test.mjs test/device-faults.test.mjs test/bundlers.test.mjs test/gallery.test.mjs test/port.test.mjs
        ;;
    *) echo "usage: scripts/test-npm.sh [node|native|browser|hub|faults|vision|audio|asr|seq2seq|tensor|extension|automodel|bundlers|gallery|port]" >&2; exit 2 ;;
esac
