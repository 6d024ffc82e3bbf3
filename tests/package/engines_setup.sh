#!/usr/bin/env bash
# Installs the container engines of the engine_* tests (podman, docker.io, busybox-static
# for their image) with apt-get, once, before them: ctest runs it under the dpkg lock, so
# no other package test's dpkg runs next to it. A no-op where they are installed; exit 77
# where apt-get cannot install them (then the engine tests skip too, saying why).
# Usage: engines_setup.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
src=$(cd "$2" && pwd)
# shellcheck source=tests/package/lib.sh
source "$src/tests/package/lib.sh"
# shellcheck source=tests/package/engines_lib.sh
source "$src/tests/package/engines_lib.sh"

[[ $(id -u) -eq 0 ]] || skip "needs root (apt-get install)"
engines_need podman:podman docker.io:dockerd busybox-static:busybox
say "ok   podman $(podman --version | awk '{ print $3 }'), dockerd $(dockerd --version | awk '{ print $3 }' | tr -d ,), busybox-static installed"
