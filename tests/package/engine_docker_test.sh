#!/usr/bin/env bash
# docs/containers.md's recipes with docker 20.10 (engines_lib.sh's engine_scenario): kvpfs on
# the VM bind-mounted into a container (the mount point, and its parent with rslave), mounts
# made after the container started, kill -9 and restart of the VM's daemon, a non-root user
# in the container; then kvpfs inside a container with /dev/fuse and CAP_SYS_ADMIN.
# A private dockerd (and its containerd) for this script alone, its data, run state and
# socket in a mktemp directory, stopped on exit.
# Usage: engine_docker_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
# shellcheck source=tests/package/lib.sh
source "$src/tests/package/lib.sh"
# shellcheck source=tests/package/engines_lib.sh
source "$src/tests/package/engines_lib.sh"

engines_need docker.io:dockerd busybox-static:busybox
# The client of the docker.io package (another docker may come first on PATH).
client=/usr/bin/docker
[[ -x $client ]] || skip "docker.io installed, yet no $client"
dockerd_pid=
ctr() { DOCKER_CONFIG=$work/docker/config "$client" -H "unix://$work/docker/sock" "$@"; }
# shellcheck disable=SC2317  # called from the trap below
cleanup() {
    set +e
    if [[ -n $dockerd_pid ]]; then
        local ids
        ids=$(ctr ps -aq 2>/dev/null)
        # shellcheck disable=SC2086  # one ID a word
        [[ -z $ids ]] || ctr rm -f $ids >/dev/null 2>&1
        kill -TERM "$dockerd_pid" 2>/dev/null
        wait_until 30 pid_gone "$dockerd_pid" || kill -KILL "$dockerd_pid" 2>/dev/null
    fi
    engine_cleanup
}
trap cleanup EXIT
trap 'exit 1' INT TERM
cgroups_note docker
paths_note /run/docker  # its plugin directory, /run/docker/plugins, is fixed
engine_prepare docker

# This machine: no iptables rules or bridge wanted (containers run with --network none), a
# hybrid cgroup layout (cgroupfs, not systemd), vfs storage (no overlay in a tmp directory
# needed), no registry reachable, hence `docker import`.
mkdir -p "$work/docker/config"
# Its identity key would go to /etc/docker/key.json; only the configuration file moves it.
printf '{"deprecated-key-path": "%s"}\n' "$work/docker/key.json" >"$work/docker/daemon.json"
dockerd --config-file "$work/docker/daemon.json" --data-root "$work/docker/data" \
    --exec-root "$work/docker/exec" --pidfile "$work/docker/dockerd.pid" \
    -H "unix://$work/docker/sock" --storage-driver vfs \
    --exec-opt native.cgroupdriver=cgroupfs --iptables=false --ip6tables=false \
    --ip-masq=false --bridge=none >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
# Ready, or gone (then there is no point waiting).
# shellcheck disable=SC2317  # called by wait_until
dockerd_settled() { pid_gone "$dockerd_pid" || ctr version; }
if ! wait_until 60 dockerd_settled || pid_gone "$dockerd_pid"; then
    tail -n 20 "$work/dockerd.log"
    fail "the private dockerd did not answer in 60 s, or stopped"
    finish
fi
ctr_run_flags=(--network none)

ctr import -c 'ENV PATH=/usr/bin:/bin' "$work/image.tar" kvpfs-test:busybox >/dev/null
engine_scenario kvpfs-test:busybox
((failures == 0)) || tail -n 20 "$work/dockerd.log"
finish
