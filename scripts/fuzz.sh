#!/usr/bin/env bash
# Fuzzes every parser of untrusted bytes (fuzz/fuzz_targets/, one target each) with cargo fuzz
# (libFuzzer, AddressSanitizer, debug assertions) on the nightly pinned in scripts/nightly-toolchain.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # SECONDS per target, default 60; all targets by default
#
# Every target builds in one cargo invocation (the core crate compiles once), then each runs for
# SECONDS from its committed seeds (fuzz/corpus/TARGET, never written to: new inputs go to a
# scratch corpus). A failure is any crash or panic, an input taking over 1 s (-timeout=1), one
# allocation over MALLOC_MB or a resident size over RSS_MB. On failure the input is saved under
# fuzz/artifacts/TARGET/ and the command reproducing it printed. Each target's executions and
# coverage are printed in a table at the end (FUZZING.md records them).
#
# Environment: FUZZ_WORK (scratch corpora and logs; a temporary folder by default),
# FUZZ_TARGET_DIR (the build, fuzz/target by default: sanitizer flags differ from the workspace's),
# FUZZ_RUNS (CI: at most this many inputs per target from seed FUZZ_SEED, default 1, within the
# SECONDS bound: nearly the same inputs on every run (libFuzzer's mutations follow the seed;
# coverage ties can still differ), so a CI verdict is one a developer can rerun, not an unlucky
# draw of a long exploration; exploring is for runs without it).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
nightly=$(cat scripts/nightly-toolchain)
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
command -v cargo-fuzz >/dev/null || { echo "fuzz: cargo-fuzz is missing: run scripts/setup-tools.sh" >&2; exit 1; }

RSS_MB=2560
MALLOC_MB=1024
target_dir="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
work="${FUZZ_WORK:-$(mktemp -d)}"
mkdir -p "$work"

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cd fuzz && cargo +"$nightly" fuzz list)
fi

echo "== fuzz: building ${#targets[@]} targets"
(cd fuzz && cargo +"$nightly" fuzz build --target-dir "$target_dir")

summary="$work/summary.tsv"
printf 'target\texecutions\texec/s\tcoverage (edges)\tfeatures\tcorpus\n' >"$summary"
failed=()
for t in "${targets[@]}"; do
    echo "== fuzz: $t for ${seconds}s"
    mkdir -p "$work/corpus/$t" "fuzz/artifacts/$t"
    log="$work/$t.log"
    # The scratch corpus comes first: libFuzzer adds the new inputs it finds to the first folder.
    bounded=()
    [[ -n "${FUZZ_RUNS:-}" ]] && bounded=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}")
    if (cd fuzz && cargo +"$nightly" fuzz run --target-dir "$target_dir" "$t" "$work/corpus/$t" "corpus/$t" -- \
        -max_total_time="$seconds" "${bounded[@]}" -timeout=1 -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$MALLOC_MB" \
        -print_final_stats=1 -close_fd_mask=1) >"$log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$t")
        grep -E 'ERROR|panicked|Test unit written|Reproduce|out-of-memory|timeout' "$log" | head -20 >&2 || true
        echo "fuzz: $t failed (log: $log); reproduce: (cd fuzz && cargo +$nightly fuzz run $t fuzz/artifacts/$t/<file>)" >&2
    fi
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    speed=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
    ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
    corp=$(grep -oE 'corp: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t$([[ $status == ok ]] || echo " (FAILED)")" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" >>"$summary"
done

echo "== fuzz: ${seconds}s per target, $(date -u +%Y-%m-%d)"
column -t -s $'\t' "$summary"
if ((${#failed[@]} > 0)); then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: no crash, hang or oversized allocation in ${#targets[@]} targets"
