#!/usr/bin/env bash
# The kvpfs benchmarks (docs/performance.md). Not part of the tests.
#
#   scripts/bench.sh [--quick] [--no-pin | --cpu N] [--engine-only | --fs-only]
#                    [--out DIR] [-- EXTRA kvp_fs_bench ARGS...]
#
# Builds what it needs in its own build directory ($KVPFS_BENCH_BUILD, default build-bench:
# Release, -DKVPFS_BUILD_BENCH=ON), compiles libfuse's passthrough_ll example there from
# /usr/share/doc/libfuse3-dev/examples (never committed), prints the machine, then runs
#   1. kvp_engine_bench  (Google Benchmark: get/set/delete/list/change detection), and
#   2. kvp_fs_bench      (tmpfs vs passthrough_ll -o cache=never,default_permissions vs kvpfs
#                         vs kvpfs -o cache vs a locked linear scan of the pool file;
#                         median/p99, ratios, RSS), and
#   3. kvp_staleness_bench (-o cache: another process's change until the mount shows it,
#                         10,000 changes under load; 1,000 with --quick).
# Needs FUSE (/dev/fuse, fusermount3). A full run takes a few minutes; --quick well under one.
# Everything it mounts lives in a scratch directory on /dev/shm and is unmounted on exit.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${KVPFS_BENCH_BUILD:-$top/build-bench}
examples=${LIBFUSE_EXAMPLES:-/usr/share/doc/libfuse3-dev/examples}
quick=0
run_engine=1
run_fs=1
out=""
fs_args=()

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --no-pin) fs_args+=(--no-pin) ;;
        --cpu) fs_args+=(--cpu "$2"); shift ;;
        --engine-only) run_fs=0 ;;
        --fs-only) run_engine=0 ;;
        --out) out=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        --) shift; fs_args+=("$@"); break ;;
        *) echo "bench.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

jobs=${KVPFS_BENCH_JOBS:-2}

echo "== building in $build"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKVPFS_BUILD_BENCH=ON \
    -DKVPFS_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target kvpfs kvp_engine_bench kvp_fs_bench kvp_staleness_bench \
    >/dev/null

# passthrough_ll, built from the installed libfuse examples (the sources may be gzipped).
if [ "$run_fs" = 1 ]; then
    pt_src="$build/passthrough_ll-src"
    mkdir -p "$pt_src"
    for f in passthrough_ll.c passthrough_helpers.h; do
        if [ -f "$examples/$f" ]; then
            cp "$examples/$f" "$pt_src/$f"
        elif [ -f "$examples/$f.gz" ]; then
            gzip -dc "$examples/$f.gz" >"$pt_src/$f"
        else
            echo "bench.sh: $examples/$f not found (install libfuse3-dev)" >&2
            exit 1
        fi
    done
    if [ ! -x "$build/passthrough_ll" ] || [ "$pt_src/passthrough_ll.c" -nt "$build/passthrough_ll" ]; then
        # shellcheck disable=SC2046
        ${CC:-cc} -O2 -Wall -o "$build/passthrough_ll" "$pt_src/passthrough_ll.c" \
            $(pkg-config --cflags --libs fuse3)
    fi
fi

echo "== machine"
echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:  $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$top" diff --quiet -- src 2>/dev/null || echo ' (src/ has uncommitted changes)')"
echo "cpu:     $(nproc) x $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
echo "kernel:  $(uname -r)"
echo "libfuse: $(pkg-config --modversion fuse3)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg)"

[ -z "$out" ] || mkdir -p "$out"

if [ "$run_engine" = 1 ]; then
    echo
    echo "== engine (kvp_engine_bench)"
    engine_args=()
    if [ "$quick" = 1 ]; then
        engine_args+=(--benchmark_min_time=0.05)
    else
        engine_args+=(--benchmark_min_time=0.3 --benchmark_repetitions=3
            --benchmark_report_aggregates_only=true)
    fi
    [ -z "$out" ] || engine_args+=(--benchmark_out="$out/engine.json" --benchmark_out_format=json)
    "$build/tests/bench/kvp_engine_bench" "${engine_args[@]}"
fi

if [ "$run_fs" = 1 ]; then
    echo
    echo "== file system (kvp_fs_bench)"
    scratch=$(mktemp -d /dev/shm/kvpfs-bench-run.XXXXXX)
    cleanup() {
        # The bench unmounts what it mounted; this is the net under it (e.g. after a kill -9).
        grep -F " $scratch/" /proc/self/mountinfo 2>/dev/null | awk '{print $5}' |
            while read -r m; do fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m"; done || true
        rm -rf --one-file-system "$scratch"
    }
    trap cleanup EXIT INT TERM
    [ "$quick" = 0 ] || fs_args=(--quick "${fs_args[@]}")
    [ -z "$out" ] || fs_args+=(--csv "$out/fs.csv")
    # FUSE requests per op, when the kernel's fuse tracepoints can be read (root, tracefs).
    if [ -w /sys/kernel/tracing/events/fuse/fuse_request_send/enable ]; then
        fs_args+=(--count-requests)
    fi
    "$build/tests/bench/kvp_fs_bench" --kvpfs "$build/kvpfs" --passthrough "$build/passthrough_ll" \
        --work "$scratch" "${fs_args[@]}"
    echo
    echo "== staleness of -o cache (kvp_staleness_bench)"
    changes=10000
    [ "$quick" = 0 ] || changes=1000
    "$build/tests/bench/kvp_staleness_bench" --kvpfs "$build/kvpfs" --work "$scratch" \
        --changes "$changes"
fi
