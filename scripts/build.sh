#!/usr/bin/env bash
# Configures and builds kvpfs into BUILD_DIR (default: build/). Extra args go to cmake.
# With ccache installed (scripts/setup.sh installs it) compiles go through it, so the plain,
# sanitizer and repeated builds of unchanged sources are fast; KVPFS_NO_CCACHE=1 turns it off.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}
launcher=()
if [[ -z ${KVPFS_NO_CCACHE:-} ]] && command -v ccache >/dev/null; then
  # Paths relative to the checkout, and the build directory left out of the hash (ccache hashes
  # it when compiling with -g), so clones and worktrees in other folders (CI's) share the cache.
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
  export CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" "${launcher[@]}" "$@" >/dev/null
cmake --build "$build_dir" -j"$(nproc)"
