#!/usr/bin/env bash
# The whole test suite: set-up, build, every ctest test (unit, mount, shell).
# Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh
# Mount tests share /dev/fuse and the CPU; 2 jobs keeps a 2-core machine busy but fair.
ctest --test-dir build --output-on-failure -j2 --timeout 300
