#!/usr/bin/env bash
# docs/containers.md's recipes with podman 4.3 (engines_lib.sh's engine_scenario): kvpfs on
# the VM bind-mounted into a container (the mount point, and its parent with rslave), mounts
# made after the container started, kill -9 and restart of the VM's daemon, a non-root user
# in the container; then kvpfs inside a container with /dev/fuse and CAP_SYS_ADMIN.
# Everything podman keeps (storage, run state, events) lives in a mktemp directory.
# Usage: engine_podman_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
# shellcheck source=tests/package/lib.sh
source "$src/tests/package/lib.sh"
# shellcheck source=tests/package/engines_lib.sh
source "$src/tests/package/engines_lib.sh"

engines_need podman:podman busybox-static:busybox
# shellcheck disable=SC2317  # called from the trap below
cleanup() {
    set +e
    if [[ -d ${work:-}/podman ]]; then
        ctr rm -f -a -t 0 >/dev/null 2>&1
        ctr rmi -a -f >/dev/null 2>&1
    fi
    engine_cleanup
}
trap cleanup EXIT
trap 'exit 1' INT TERM
cgroups_note libpod_parent
# Image imports keep a blob cache there, whatever --root says.
paths_note /var/lib/containers
engine_prepare podman

# This machine: the capability bounding set lacks CAP_SYS_RESOURCE, so no rlimit may be
# raised over its hard limit (podman's defaults ask for more); the cgroup layout is hybrid;
# no registry is reachable, hence `podman import`. runc, not podman's default crun: crun 1.8
# refuses a hybrid cgroup layout ("drop all controllers from cgroupv2").
mkdir -p "$work/podman"
ctr() {
    podman --root "$work/podman/root" --runroot "$work/podman/run" --tmpdir "$work/podman/tmp" \
        --storage-driver vfs --cgroup-manager cgroupfs --events-backend file \
        --runtime runc "$@"
}
ctr_run_flags=(--network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

ctr import --change 'ENV PATH=/usr/bin:/bin' "$work/image.tar" localhost/kvpfs-test:busybox >/dev/null
engine_scenario localhost/kvpfs-test:busybox
finish
