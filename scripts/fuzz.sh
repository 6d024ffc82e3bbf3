#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, Debian's clang, ASan+UBSan) into build-fuzz/,
# replays the committed crash regressions, then fuzzes each target for SECONDS on a copy
# of its committed seed corpus (the repository is never written). Exits non-zero when a
# regression or a new input crashes; the crashing input is kept under build-fuzz/crashes/.
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
case $seconds in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number" >&2; exit 2 ;; esac
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
targets=(fuzz_pool_parse fuzz_key_name fuzz_limits fuzz_pool_ops)

CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S tests/fuzz -B "$build_dir" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build_dir" -j2 --target "${targets[@]}"

# Corpus copies and the targets' scratch pools live on tmpfs when there is one.
work=$(mktemp -d /dev/shm/kvpfs-fuzz.XXXXXX 2>/dev/null || mktemp -d /tmp/kvpfs-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
export KVPFS_FUZZ_SCRATCH="$work"
crashes="$build_dir/crashes"
mkdir -p "$crashes"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
for t in "${targets[@]}"; do
    bin="$build_dir/$t"
    # 1. Every committed regression input must pass (run once each, no fuzzing).
    if compgen -G "tests/fuzz/regressions/$t/*" >/dev/null; then
        for input in tests/fuzz/regressions/"$t"/*; do
            if ! "$bin" -runs=1 "$input" >"$work/$t.regression.log" 2>&1; then
                echo "FAIL $t regression $input" >&2
                grep -A12 -m1 -E 'FUZZ CHECK FAILED|ERROR: (Address|Undefined|Leak)Sanitizer|runtime error|libFuzzer: deadly' \
                    "$work/$t.regression.log" >&2 || tail -20 "$work/$t.regression.log" >&2
                failed+=("$t:regression:$(basename "$input")")
            fi
        done
    fi
    # 2. Fuzz for a bounded time, starting from a copy of the seed corpus.
    mkdir -p "$work/corpus/$t"
    cp tests/fuzz/corpus/"$t"/* "$work/corpus/$t/" 2>/dev/null || true
    start=$(date +%s)
    if "$bin" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=12000 \
        -print_final_stats=1 -artifact_prefix="$crashes/$t-" "$work/corpus/$t" \
        >"$work/$t.log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$t.log" | grep -o '[0-9]*$' || echo '?')
        echo "ok   $t: $runs runs in $(($(date +%s) - start)) s, corpus $(ls "$work/corpus/$t" | wc -l) inputs"
    else
        echo "FAIL $t (input saved under $crashes/):" >&2
        grep -A12 -m1 -E 'FUZZ CHECK FAILED|ERROR: (Address|Undefined|Leak)Sanitizer|runtime error|libFuzzer: deadly' \
            "$work/$t.log" >&2 || tail -20 "$work/$t.log" >&2
        failed+=("$t")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets passed"
