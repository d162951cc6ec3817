#!/usr/bin/env bash
# llama.cpp as a baseline for the GGUF decoders: builds its `llama-bench` from the source that the
# llama-cpp-python source distribution vendors (scripts/fetch-models.sh chat-templates downloads
# it into .cache/sdists), once, into .cache/llama.cpp (Release, GGML_NATIVE: this CPU's
# instructions, as webformers' runtime dispatch uses them), then times a GGUF's prompt processing
# and generation with llama-bench's own timings.
#
# Usage: bench/llamacpp.sh [build]                    # build only
#        bench/llamacpp.sh GGUF [-p 128] [-n 64] [-t 1,2] [-r 3] [more llama-bench flags]
# Prints llama-bench's JSON lines (`-o jsonl`): one per test (pp128, tg64) and thread count, with
# avg_ts (tokens/s, the mean of -r repetitions) and samples_ts. The machine is shared: the build
# runs with `nice` and CMAKE_BUILD_PARALLEL_LEVEL (default 2); CMake and Ninja come from PyPI into
# .cache/llama.cpp/venv when the machine has none.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

version=0.3.36
sdist=$root/.cache/sdists/llama_cpp_python-$version.tar.gz
dir=$root/.cache/llama.cpp
bench=$dir/build/bin/llama-bench

build() {
    [[ -x $bench ]] && return
    [[ -f $sdist ]] || scripts/fetch-models.sh chat-templates >&2
    if ! command -v cmake >/dev/null || ! command -v ninja >/dev/null; then
        [[ -x $dir/venv/bin/cmake && -x $dir/venv/bin/ninja ]] || {
            python3 -m venv "$dir/venv"
            "$dir/venv/bin/pip" install --quiet --disable-pip-version-check cmake ninja >&2
        }
        export PATH=$dir/venv/bin:$PATH
    fi
    rm -rf "$dir/src"
    mkdir -p "$dir/src"
    tar -xzf "$sdist" -C "$dir/src" --strip-components=3 "llama_cpp_python-$version/vendor/llama.cpp"
    # Only the library and llama-bench: no tests, server, examples, HTTPS or web UI. No AMX: a
    # CPU may list it (Sapphire Rapids) while the kernel withholds the tile state from the
    # process (VMs do), and llama-bench then dies of SIGILL; webformers uses no AMX either.
    local no_amx=()
    [[ $(uname -m) == x86_64 ]] && no_amx=(-DCMAKE_C_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" -DCMAKE_CXX_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16")
    nice cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON "${no_amx[@]}" \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF >&2
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} nice cmake --build "$dir/build" --target llama-bench >&2
    [[ -x $bench ]]
}

build
if [[ $# -eq 0 || $1 == build ]]; then
    echo "llama.cpp $version's llama-bench: ${bench#"$root"/}" >&2
    exit 0
fi
gguf=$1
shift
[[ -f $gguf ]] || { echo "bench/llamacpp.sh: no such GGUF: $gguf" >&2; exit 2; }
# Defaults for the flags not given: a 128-token prompt and 64 generated tokens, 1 and 2 threads,
# 3 repetitions (llama-bench adds a repeated flag's values to the list rather than replacing them).
defaults=()
for d in "-p 128" "-n 64" "-t 1,2" "-r 3"; do
    [[ " $* " == *" ${d%% *} "* ]] || defaults+=($d)
done
exec nice "$bench" -m "$gguf" "${defaults[@]}" -o jsonl "$@"
