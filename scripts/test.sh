#!/usr/bin/env bash
# The whole test suite: set-up, build, every ctest test (unit, mount, shell, package), then the
# same unit and mount tests under ASan+UBSan and under TSan, then each fuzz target for a bounded
# time.  `scripts/test.sh --quick` stops after the first stage (the everyday run).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[[ ${1:-} == --quick ]] && quick=1

stage() { printf '\n==== %s ====\n' "$*"; }

scripts/setup.sh

stage "build and test (RelWithDebInfo)"
scripts/build.sh
# Two jobs keep a 2-core machine busy; mount tests each bring their own daemon and tmpfs.
ctest --test-dir build --output-on-failure -j2 --timeout 300

((quick)) && exit 0

# Sanitizer builds run the engine, kvpctl, daemon and shell tests; the package and stress
# suites stay with the plain build (they install packages / run for a fixed time).
stage "ASan+UBSan build and test"
BUILD_DIR=build-asan scripts/build.sh -DKVPFS_SANITIZE=address
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j2 --timeout 300 -LE 'package|stress'

stage "TSan build and test"
BUILD_DIR=build-tsan scripts/build.sh -DKVPFS_SANITIZE=thread
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  ctest --test-dir build-tsan --output-on-failure -j2 --timeout 300 -LE 'package|stress'

if [[ -x scripts/fuzz.sh ]]; then
  stage "fuzzing (bounded)"
  scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
stage "all stages passed"
