#!/usr/bin/env bash
# Gemma 3 270M Q4_K_M (the real GGUF of scripts/fetch-models.sh gemma3), a 128-token prompt and 64
# greedy tokens, prefill and decode tokens/s, everyone in one run on this machine:
#   webformers native CPU (the CLI's `bench text-generation`, 1 and 2 threads),
#   llama.cpp on the same GGUF (bench/llamacpp.sh: llama-bench's own timings, 1 and 2 threads),
#   Transformers.js 4.3.1 in Node on an ONNX export of the same weights at q8 and q4
#     (bench/export-gemma3-onnx.py; bench/transformersjs/generation.mjs, 1 and 2 threads),
#   webformers wasm in headless Chromium (bench/js/browser.mjs, 1 and 2 threads; the prompt is 4
#     corpus sentences, not 128 tokens), and webformers on lavapipe (software Vulkan).
# The machine is shared, so the CPU configurations run in ROUNDS rounds (default 2), each side in
# turn (A B A B), and the summary gives each configuration's median over the rounds (each run
# is itself a median of REPS repetitions, default 2), with the load average at every step.
#
# Usage: bench/gemma3.sh [native] [llamacpp] [tjs] [wasm] [gpu]    (no argument: all)
# Needs: cargo (or WEBFORMERS=path to a CLI), the optimum export for tjs, npm/dist for wasm,
# mesa-vulkan-drivers for gpu. Writes every raw line to $LOG (default .cache/gemma3-bench.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/tasks-lib.sh

gguf=.cache/models/gemma-3-270m-q4_k_m.gguf
onnx=.cache/models/gemma-3-270m-onnx
rounds=${ROUNDS:-2}
reps=${REPS:-2}
log=${LOG:-.cache/gemma3-bench.jsonl}
parts=${*:-native llamacpp tjs wasm gpu}
has() { [[ " $parts " == *" $1 "* ]]; }

[[ -f $gguf ]] || scripts/fetch-models.sh gemma3
if has llamacpp; then bench/llamacpp.sh build; fi
if has tjs && [[ ! -f $onnx/onnx/model_q4.onnx ]]; then
    echo "# no $onnx (.cache/optimum-venv/bin/python bench/export-gemma3-onnx.py): Transformers.js skipped"
    parts=${parts//tjs/}
fi
if has tjs && [[ ! -d bench/transformersjs/node_modules ]]; then (cd bench/transformersjs && npm ci --ignore-scripts); fi
if has wasm && [[ ! -f npm/dist/index.js ]]; then
    echo "# no npm/dist (cd npm && npm run build): Chromium runs skipped"
    parts=${parts//wasm/}
fi
prepare_cli
: >"$log"

# emit SIDE THREADS: reads the JSON a tool printed, appends one normalized line to $log.
emit() {
    node -e '
        const [side, threads, loadavg] = process.argv.slice(1);
        for (const line of require("fs").readFileSync(0, "utf8").split("\n")) {
            if (!line.startsWith("{")) continue;
            const r = JSON.parse(line);
            let prefill = r.prefill_tokens_per_s ?? r.prefill_tok_per_s, decode = r.decode_tokens_per_s ?? r.decode_tok_per_s;
            let t = r.threads ?? threads;
            if (r.avg_ts !== undefined) {  // llama-bench: one line per test
                t = r.n_threads;
                if (r.n_gen === 0) prefill = r.avg_ts; else decode = r.avg_ts;
            }
            if (r.error) console.error(`${side}: ${r.error}`);
            console.log(JSON.stringify({ side, threads: Number(t) || "-", prefill, decode, prompt_tokens: r.prompt_tokens ?? r.n_prompt, load: loadavg }));
        }' "$1" "$2" "$(load)" | tee -a "$log"
}

for round in $(seq "$rounds"); do
    for t in 1 2; do
        echo "# round $round, $t thread(s), $(load)"
        if has native; then
            "$wf" bench text-generation --model "$gguf" --device cpu --threads "$t" --reps "$reps" 2>/dev/null | emit "webformers native CPU" "$t"
        fi
        if has llamacpp; then
            bench/llamacpp.sh "$gguf" -t "$t" -r "$reps" 2>/dev/null | node -e '
                // llama-bench prints pp and tg as two lines: merge them into one.
                const rs = require("fs").readFileSync(0, "utf8").split("\n").filter((l) => l.startsWith("{")).map(JSON.parse);
                const t = Number(process.argv[1]);
                const pp = rs.find((r) => r.n_gen === 0 && r.n_threads === t), tg = rs.find((r) => r.n_prompt === 0 && r.n_threads === t);
                console.log(JSON.stringify({ threads: pp.n_threads, prompt_tokens: pp.n_prompt, prefill_tokens_per_s: +pp.avg_ts.toFixed(1), decode_tokens_per_s: +tg.avg_ts.toFixed(2) }));' "$t" |
                emit "llama.cpp (llama-bench)" "$t"
        fi
        if has tjs; then
            for dtype in q8 q4; do
                node bench/transformersjs/generation.mjs --dtype "$dtype" --threads "$t" --reps "$reps" 2>/dev/null |
                    emit "Transformers.js 4.3.1, ONNX $dtype" "$t"
            done
        fi
    done
    if has wasm; then
        echo "# round $round, Chromium, $(load)"
        node bench/js/browser.mjs --only none --generation wasm --generation-threads 1,2 \
            --generation-model "$(basename "$gguf")" 2>/dev/null | emit "webformers wasm in Chromium" "-"
    fi
done
if has gpu; then
    echo "# lavapipe, $(load)"
    env WGPU_BACKEND=vulkan VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/lvp_icd.x86_64.json XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$tmp}" "$wf" bench text-generation --model "$gguf" --device gpu --reps 1 2>/dev/null | emit "webformers native GPU: lavapipe" "-"
fi

echo
echo "| side | threads | prefill tokens/s | decode tokens/s | runs |"
echo "|---|---|---|---|---|"
node -e '
    const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
    const median = (xs) => { const s = xs.filter((x) => x != null).sort((a, b) => a - b); const m = s.length >> 1; return +(s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2).toFixed(2); };
    const groups = new Map();
    for (const r of rows) { const k = `${r.side}|${r.threads}`; groups.set(k, [...(groups.get(k) ?? []), r]); }
    for (const [k, rs] of groups) {
        const [side, threads] = k.split("|");
        console.log(`| ${side} | ${threads} | ${median(rs.map((r) => r.prefill))} | ${median(rs.map((r) => r.decode))} | ${rs.length} |`);
    }' "$log"
