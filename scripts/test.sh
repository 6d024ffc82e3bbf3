#!/usr/bin/env bash
# The test suite. `scripts/test.sh` (what CI runs through .ci/run): set-up, the plain build and
# every ctest test (unit, mount, shell, stress, package), then the unit and mount tests again
# under ASan+UBSan and under TSan, then each fuzz target for a bounded time.
# `scripts/test.sh --quick` is the everyday run: the plain build's tests without the package
# tests, so past scripts/setup.sh it installs and purges nothing on the machine and boots no
# systemd.
# KVPFS_TEST_SLACK=F (a factor, default 1) stretches every wait bound of the tests on a slow
# machine (tests/common/wait_bounds.hpp, tests/package/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
case ${1:-} in
'') ;;
--quick) quick=1 ;;
*) echo "usage: scripts/test.sh [--quick]" >&2; exit 2 ;;
esac

stage() { printf '\n==== %s (%s) ====\n' "$*" "$(date -u +%H:%M:%S)"; }

scripts/setup.sh

stage "build and test (RelWithDebInfo)"
scripts/build.sh
# Two jobs keep a 2-core machine busy; mount tests each bring their own daemon and tmpfs.
if ((quick)); then
  ctest --test-dir build --output-on-failure -j2 --timeout 300 -LE package
  exit 0
fi
ctest --test-dir build --output-on-failure -j2 --timeout 300

# Sanitizer builds run the engine, kvpctl, daemon and shell tests; the package and stress
# suites stay with the plain build (they install packages / run for a fixed time), so the
# sanitizer builds do not compile the stress programs at all, and build at -O1 -g1
# (CMakeLists.txt): stack traces keep their lines, compiling takes less.
sanitizer_build=(-DKVPFS_BUILD_STRESS_TESTS=OFF)

stage "ASan+UBSan build and test"
BUILD_DIR=build-asan scripts/build.sh -DKVPFS_SANITIZE=address "${sanitizer_build[@]}"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j2 --timeout 300 -LE 'package|stress'

stage "TSan build and test"
BUILD_DIR=build-tsan scripts/build.sh -DKVPFS_SANITIZE=thread "${sanitizer_build[@]}"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --test-dir build-tsan --output-on-failure -j2 --timeout 300 -LE 'package|stress'

if [[ -x scripts/fuzz.sh ]]; then
  stage "fuzzing (bounded)"
  scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
stage "all stages passed"
