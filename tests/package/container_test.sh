#!/usr/bin/env bash
# A container played for real with Linux namespaces (docs/containers.md, setup (a)).
#
# The host mounts kvpfs twice over one tmpfs pool dir, under a parent directory that is a
# shared mount (as / is on a systemd host):
#   HOST/kvp     kvpfs -o allow_other        (the host's /kvp)
#   HOST/kvp-ro  kvpfs -o allow_other,ro     (the view for containers that must not write)
# The "container" is a new mount and PID namespace (unshare --mount --pid --fork, slave
# propagation) that binds what docker -v would bind, and runs its checks as nobody and as
# its root (container_inside.sh):
#   bind       the kvpfs mountpoint itself                  (-v /kvp:/kvp)
#   robind     the same, read-only                          (-v /kvp:/kvp:ro)
#   share      the parent, recursive, slave propagation     (-v /run/kvpfs:/run/kvpfs:rslave)
#   share-ro   the same, read-only                          (... :ro,rslave)
# Then the host restarts both daemons, and the container checks again: through `share` it
# sees the new mounts with the same permissions; the direct binds are left on the dead mount;
# the read-only flag of share-ro never reaches the kvpfs mounts below it (use kvp-ro).
# Usage: container_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/package/lib.sh"

[[ $(id -u) -eq 0 ]] || skip "needs root (mount, namespaces)"
[[ -c /dev/fuse ]] || skip "no /dev/fuse"
for tool in unshare setpriv mountpoint findmnt; do
    command -v "$tool" >/dev/null || skip "no $tool"
done
kvpfs=$build/kvpfs
kvpctl=$build/kvpctl
[[ -x $kvpfs && -x $kvpctl ]] || skip "build kvpfs and kvpctl first"
unshare --mount --pid --fork true 2>/dev/null || skip "cannot make mount and PID namespaces"

work=$(mktemp -d /tmp/kvpfs-ctr.XXXXXX)
chmod 755 "$work"
pool=$work/pool
host=$work/host
ctr=$work/ctr
pids=()
ctr_pid=
cleanup() {
    local pid
    [[ -z $ctr_pid ]] || kill -KILL "$ctr_pid" 2>/dev/null
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait_until 30 pid_gone "$pid" || kill -KILL "$pid" 2>/dev/null; done
    umount_tree "$work"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

mkdir -p "$pool" "$host" "$ctr"
mount -t tmpfs -o size=4m,mode=0755 kvpfs-ctr-pool "$pool"
"$kvpctl" --pool-dir "$pool" init "$pool" --sample >/dev/null
"$kvpctl" --pool-dir "$pool" set guest Existing hello
hostname_value=$("$kvpctl" --pool-dir "$pool" get parameter HostName)

# The host's parent directory: a shared mount of its own, like / under systemd.
mount --bind "$host" "$host"
mount --make-shared "$host"
mkdir -p "$host/kvp" "$host/kvp-ro"

# start_daemons: both kvpfs in the foreground, logging to $work/kvpfs-*.log; sets pid_rw/pid_ro.
start_daemons() {
    "$kvpfs" -f -o allow_other "$pool" "$host/kvp" 2>>"$work/kvpfs-rw.log" &
    pid_rw=$!
    "$kvpfs" -f -o allow_other,ro "$pool" "$host/kvp-ro" 2>>"$work/kvpfs-ro.log" &
    pid_ro=$!
    pids+=("$pid_rw" "$pid_ro")
    check "host: kvpfs mounted on kvp" wait_until 30 is_mounted "$host/kvp"
    check "host: kvpfs -o ro mounted on kvp-ro" wait_until 30 is_mounted "$host/kvp-ro"
}
start_daemons

# The container's mount points (made on the host, as an image would have them).
mkdir -p "$ctr/bind" "$ctr/robind" "$ctr/share" "$ctr/share-ro"
unshare --mount --pid --fork --mount-proc --propagation slave \
    env HOST="$host" CTR="$ctr" WORK="$work" HOSTNAME_VALUE="$hostname_value" \
    bash "$src/tests/package/container_inside.sh" "$src/tests/package/lib.sh" \
    >"$work/container.log" 2>&1 &
ctr_pid=$!

if wait_until 30 test -e "$work/phase1.done"; then
    ok "container: first round done"
    # Restart both daemons the way systemd would: SIGTERM, wait for the exit, start again.
    for pid in "$pid_rw" "$pid_ro"; do
        kill -TERM "$pid"
        wait "$pid"
        say "host: kvpfs $pid ended with status $? on SIGTERM"
    done
    check "host: kvp unmounted by SIGTERM" wait_until 30 is_not_mounted "$host/kvp"
    check "host: kvp-ro unmounted by SIGTERM" wait_until 30 is_not_mounted "$host/kvp-ro"
    start_daemons
    touch "$work/restarted"
else
    fail "container: first round did not finish in 30 s"
fi

if wait_until 40 pid_gone "$ctr_pid"; then
    wait "$ctr_pid"
    status=$?
else
    kill -KILL "$ctr_pid"
    status=124
fi
ctr_pid=
sed 's/^/  [container] /' "$work/container.log"
grep -q '^FAIL' "$work/container.log" && failures=$((failures + 1))
expect_eq "container: exit status" 0 "$status"
check "container: no namespace left behind (mounts of the container gone)" \
    bash -c "! grep -q ' $ctr/' /proc/self/mountinfo"
if ((failures)); then
    say "--- kvpfs logs"
    cat "$work"/kvpfs-*.log
fi
finish
