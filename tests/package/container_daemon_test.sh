#!/usr/bin/env bash
# kvpfs inside a container (docs/containers.md, setup (b)), played with Linux namespaces:
# a new mount and PID namespace with its own /dev (a tmpfs, as a container engine makes it),
# the pool dir bind-mounted in, and kvpfs run under docker's default capability bounding set,
# with and without CAP_SYS_ADMIN, with and without /dev/fuse (what `--device /dev/fuse` and
# `--cap-add SYS_ADMIN` grant). The mount stays inside the container; what kvpfs writes there
# lands in the host's pool file.
# Usage: container_daemon_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/package/lib.sh"

[[ $(id -u) -eq 0 ]] || skip "needs root (mount, namespaces)"
[[ -c /dev/fuse ]] || skip "no /dev/fuse"
for tool in unshare setpriv mountpoint mknod; do
    command -v "$tool" >/dev/null || skip "no $tool"
done
[[ -x $build/kvpfs && -x $build/kvpctl ]] || skip "build kvpfs and kvpctl first"
unshare --mount --pid --fork true 2>/dev/null || skip "cannot make mount and PID namespaces"

work=$(mktemp -d /tmp/kvpfs-ctrd.XXXXXX)
chmod 755 "$work"
ctr_pid=
cleanup() {
    [[ -z $ctr_pid ]] || kill -KILL "$ctr_pid" 2>/dev/null
    umount_tree "$work"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

pool=$work/hyperv
mkdir -p "$pool" "$work/ctr/var/lib/hyperv" "$work/ctr/kvp" "$work/ctr/bin"
mount -t tmpfs -o size=4m,mode=0755 kvpfs-ctrd-pool "$pool"
"$build/kvpctl" --pool-dir "$pool" init "$pool" --sample >/dev/null
hostname_value=$("$build/kvpctl" --pool-dir "$pool" get parameter HostName)
# The image: the two programs.
cp "$build/kvpfs" "$build/kvpctl" "$work/ctr/bin/"

cat >"$work/inside.sh" <<'INSIDE'
set -uo pipefail
source "$LIB"
ctr=$WORK/ctr
pool=$ctr/var/lib/hyperv
mnt=$ctr/kvp
# Docker's default capability set, and what --cap-add SYS_ADMIN adds to it.
docker_caps=-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,+setpcap
docker_caps+=,+net_bind_service,+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap
as_container() { setpriv --bounding-set="$1" --inh-caps=-all "${@:2}"; }

mount --bind "$HOST_POOL" "$pool"                  # -v /var/lib/hyperv:/var/lib/hyperv
mount -t tmpfs -o mode=0755,size=64k ctr-dev /dev  # the container's own /dev ...
mknod -m 666 /dev/null c 1 3                       # ... with the usual nodes, no fuse

out=$(as_container "$docker_caps,+sys_admin" timeout 10 "$ctr/bin/kvpfs" -f "$pool" "$mnt" 2>&1)
status=$?
check "no /dev/fuse: kvpfs fails (status $status: $out)" test "$status" -ne 0 -a "$status" -ne 124
check "no /dev/fuse: nothing mounted" is_not_mounted "$mnt"

mknod -m 666 /dev/fuse c 10 229                    # --device /dev/fuse
out=$(as_container "$docker_caps" timeout 10 "$ctr/bin/kvpfs" -f "$pool" "$mnt" 2>&1)
status=$?
check "no CAP_SYS_ADMIN: kvpfs fails (status $status: $out)" test "$status" -ne 0 -a "$status" -ne 124
check "no CAP_SYS_ADMIN: nothing mounted" is_not_mounted "$mnt"

# --device /dev/fuse --cap-add SYS_ADMIN: kvpfs mounts, as PID 2 under this shell (PID 1).
setpriv --bounding-set="$docker_caps,+sys_admin" --inh-caps=-all \
    "$ctr/bin/kvpfs" -f -o allow_other "$pool" "$mnt" 2>"$WORK/kvpfs.log" &
pid=$!
check "with /dev/fuse and CAP_SYS_ADMIN: mounted" wait_until 30 is_mounted "$mnt"
expect_eq "reads parameter/HostName" "$HOSTNAME_VALUE" "$(cat "$mnt/parameter/HostName" 2>&1)"
check "container root writes guest/FromContainer" bash -c "echo inside > '$mnt/guest/FromContainer'"
expect_eq "nobody in the container reads guest/FromContainer" inside \
    "$(setpriv --reuid=65534 --regid=65534 --clear-groups cat "$mnt/guest/FromContainer" 2>&1)"
touch "$WORK/mounted"
wait_until 60 test -e "$WORK/host-checked" || fail "the host did not check in 60 s"
kill -TERM "$pid"
wait "$pid"
expect_eq "docker stop (SIGTERM): kvpfs exits 0" 0 "$?"
check "docker stop (SIGTERM): unmounted" is_not_mounted "$mnt"

# -v /var/lib/hyperv:/var/lib/hyperv:ro with kvpfs -o ro: reads work, changes are EROFS.
mount -o remount,bind,ro "$pool"
setpriv --bounding-set="$docker_caps,+sys_admin" --inh-caps=-all \
    "$ctr/bin/kvpfs" -f -o allow_other,ro "$pool" "$mnt" 2>>"$WORK/kvpfs.log" &
pid=$!
check "read-only pool dir, -o ro: mounted" wait_until 30 is_mounted "$mnt"
expect_eq "read-only pool dir: reads guest/FromContainer" inside \
    "$(cat "$mnt/guest/FromContainer" 2>&1)"
expect_refused "read-only pool dir: root writes guest/" "Read-only file system" \
    bash -c "echo x > '$mnt/guest/FromContainer'"
kill -TERM "$pid"
wait "$pid"
expect_eq "read-only pool dir: kvpfs exits 0 on SIGTERM" 0 "$?"
finish
INSIDE

unshare --mount --pid --fork --mount-proc --propagation slave \
    env LIB="$src/tests/package/lib.sh" WORK="$work" HOST_POOL="$pool" \
    HOSTNAME_VALUE="$hostname_value" bash "$work/inside.sh" >"$work/container.log" 2>&1 &
ctr_pid=$!
if wait_until 60 test -e "$work/mounted"; then
    check "host: the container's mount is not in the host's namespace" \
        is_not_mounted "$work/ctr/kvp"
    expect_eq "host: the container's write is in the host's pool file" inside \
        "$("$build/kvpctl" --pool-dir "$pool" get guest FromContainer 2>&1)"
    check "host: the container's kvpfs is an ordinary process of the host" \
        test -n "$(pids_of_exe "$work/ctr/bin/kvpfs")"
else
    fail "the container did not mount in 60 s"
fi
touch "$work/host-checked"
if wait_until 60 pid_gone "$ctr_pid"; then
    wait "$ctr_pid"
    status=$?
else
    kill -KILL "$ctr_pid"
    status=124
fi
ctr_pid=
sed 's/^/  [container] /' "$work/container.log"
expect_eq "container: exit status" 0 "$status"
((failures == 0)) || cat "$work/kvpfs.log"
finish
