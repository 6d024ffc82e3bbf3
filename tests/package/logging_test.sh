#!/usr/bin/env bash
# Logging: where kvpfs logs and what. In the foreground to stderr; detached
# (as mount.fuse3 and the fstab line run it) to syslog, caught here on a /dev/log socket of a
# private mount namespace; -d traces every request with its result; a refusal and a lock
# timeout are logged once, with the key, the pool and the reason.
# Usage: logging_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/package/lib.sh"

[[ $(id -u) -eq 0 ]] || skip "needs root (mount)"
[[ -c /dev/fuse ]] || skip "no /dev/fuse"
for tool in flock mountpoint fusermount3 unshare; do
    command -v "$tool" >/dev/null || skip "no $tool"
done
[[ -x $build/kvpfs && -x $build/kvpctl ]] || skip "build kvpfs and kvpctl first"

work=$(mktemp -d /tmp/kvpfs-log.XXXXXX)
pool=$work/pool
mnt=$work/mnt
pid=
holder=
ns_pid=
cleanup() {
    local p
    for p in $pid $holder $ns_pid; do kill -KILL "$p" 2>/dev/null; done
    umount_tree "$work"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
mkdir -p "$pool" "$mnt"
mount -t tmpfs -o size=4m kvpfs-log-pool "$pool"
"$build/kvpctl" --pool-dir "$pool" init "$pool" --sample >/dev/null
"$build/kvpctl" --pool-dir "$pool" set guest Held before

# run_kvpfs LOG ARGS...: kvpfs ARGS POOL MNT in the background, stderr to LOG; sets pid.
run_kvpfs() {
    local log=$1; shift
    "$build/kvpfs" "$@" "$pool" "$mnt" 2>"$log" &
    pid=$!
    wait_until 30 is_mounted "$mnt" || fail "kvpfs $* did not mount"
}
stop_kvpfs() {
    kill -TERM "$pid"
    wait "$pid"
    pid=
}
lines() { grep -c -- "$1" "$2"; }

# --- Foreground: stderr -------------------------------------------------------------------
log=$work/fg.log
run_kvpfs "$log" -f -o lock_timeout=1
cat "$mnt/parameter/HostName" >/dev/null
expect_refused "refusal: write parameter/HostName" "Permission denied" \
    bash -c "echo x > '$mnt/parameter/HostName'"
# A lock timeout: another process holds the pool's flock past lock_timeout=1 (flock -o: the
# lock is flock's own, so killing flock releases it).
flock -o -x "$pool/.kvp_pool_1" sleep 30 &
holder=$!
wait_until 30 bash -c "! flock -n -x '$pool/.kvp_pool_1' true"
t0=$SECONDS
# dd reports a failed open and a failed close (the commit) alike.
expect_refused "lock timeout: write guest/Held fails" "Resource temporarily unavailable" \
    bash -c "echo after | dd of='$mnt/guest/Held' status=none"
say "  (failed after $((SECONDS - t0)) s)"
sleeper=$(cat "/proc/$holder/task/$holder/children" 2>/dev/null)
kill "$holder" $sleeper 2>/dev/null
wait "$holder" 2>/dev/null
holder=
stop_kvpfs
say "--- foreground log"
sed 's/^/  | /' "$log"
check "foreground: 'mounted' on stderr" grep -q "mounted $pool on $mnt" "$log"
check "foreground: 'unmounted' on stderr after SIGTERM" grep -q "unmounted $mnt" "$log"
check "foreground: no request trace without -d" bash -c "! grep -q 'opcode:' '$log'"
refusal=$(grep -- 'parameter/HostName' "$log" | grep -c 'Permission denied\|EACCES')
expect_eq "refusal: logged once" 1 "$refusal"
check "refusal: names key and pool (parameter/HostName) and a reason" \
    grep -Eq 'parameter/HostName.*(writable|read-only|Permission denied)' "$log"
timeouts=$(grep -ci 'timed out\|timeout' "$log")
with_key=$(grep -i 'timed out\|timeout' "$log" | grep -c 'guest/Held')
if [[ $timeouts -eq 1 && $with_key -eq 1 ]]; then
    ok "lock timeout: logged once, naming guest/Held"
else
    fail "lock timeout: $timeouts line(s), $with_key naming guest/Held (want 1 and 1)"
fi
check "lock timeout: names the pool file and the holder's PID" \
    grep -Eq "timed out.*\\.kvp_pool_1.*PID [0-9]+" "$log"
expect_eq "lock timeout: the stored value kept" before \
    "$("$build/kvpctl" --pool-dir "$pool" get guest Held)"

# --- -d: every request with its result ---------------------------------------------------
log=$work/debug.log
run_kvpfs "$log" -d
cat "$mnt/parameter/HostName" >/dev/null
ls "$mnt/guest" >/dev/null
echo traced >"$mnt/guest/Traced"
cat "$mnt/guest/NoSuchKey" 2>/dev/null
stop_kvpfs
for op in LOOKUP GETATTR OPEN READ READDIR CREATE WRITE FLUSH RELEASE; do
    check "-d: $op requests traced" grep -q "opcode: $op " "$log"
done
requests=$(grep -c 'opcode: ' "$log")
results=$(grep -Ec '^ +unique: [0-9]+, (success|error)' "$log")
say "  -d: $requests requests, $results results"
check "-d: every request has its result" test "$results" -ge $((requests - 1))
check "-d: the failed lookup with its error" grep -Eq 'NoSuchKey.*(No such file|ENOENT)' "$log"
check "-d: the key's open with its result" grep -Eq 'open: parameter/HostName: ok' "$log"

# --- Detached: syslog (a /dev/log socket in a private mount namespace) --------------------
if command -v python3 >/dev/null && python3 -c 'import socket' 2>/dev/null; then
    cat >"$work/detached.sh" <<'INNER'
set -u
source "$LIB"
# A private /dev with the nodes kvpfs needs and a syslog socket of our own.
mount -t tmpfs -o mode=0755,size=64k log-dev /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/fuse c 10 229
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536) + b"\n")
' "$WORK/syslog.txt" &
wait_until 30 test -S /dev/log || { echo "no syslog socket"; exit 1; }
"$KVPFS" "$POOL" "$MNT" 2>"$WORK/detached.stderr"
echo "kvpfs returned $?"
wait_until 30 is_mounted "$MNT" || { echo "not mounted"; exit 1; }
{ echo x >"$MNT/auto/NoWrite"; } 2>/dev/null
fusermount3 -u "$MNT"
wait_until 30 grep -q unmounted "$WORK/syslog.txt"
kill %1
INNER
    unshare --mount --propagation private env LIB="$src/tests/package/lib.sh" WORK="$work" \
        KVPFS="$build/kvpfs" POOL="$pool" MNT="$mnt" bash "$work/detached.sh" \
        >"$work/detached.out" 2>&1
    say "--- detached: syslog"
    sed 's/^/  | /' "$work/syslog.txt" 2>/dev/null
    check "detached: kvpfs returned 0 once mounted" grep -q 'kvpfs returned 0' "$work/detached.out"
    check "detached: 'mounted' in syslog as kvpfs[PID]" \
        grep -Eq "kvpfs\\[[0-9]+\\]: .*mounted $pool on $mnt" "$work/syslog.txt"
    check "detached: the refusal in syslog" grep -q 'auto/NoWrite' "$work/syslog.txt"
    check "detached: 'unmounted' in syslog" grep -q "unmounted $mnt" "$work/syslog.txt"
    check "detached: nothing on stderr" test ! -s "$work/detached.stderr"
    ((failures == 0)) || cat "$work/detached.out"
else
    say "no python3: the syslog part is not run"
fi
finish
