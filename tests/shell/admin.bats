#!/usr/bin/env bats
# What an administrator meets around a mount: refused mountpoints, dead and stacked mounts,
# read-only and named mounts, log lines that cannot be forged or flooded, a log file,
# permissions for a group, and df. See docs/behaviour.md, "Daemon options and life".

load kvpfs_helpers

setup() {
    kvpfs_setup
}

teardown() {
    cd /
    kvpfs_teardown
}

# refused_before_mount ARGS...: kvpfs exits non-zero with one line and mounts nothing.
refused_before_mount() {
    run "$KVPFS" -f "$@"
    [ "$status" -ne 0 ]
    [ "${#lines[@]}" -eq 1 ]
    # (bats ignores a failing `! cmd` that is not a test's last line: test it explicitly)
    if grep -q " $MNT " /proc/mounts || grep -q " $POOL fuse" /proc/mounts; then
        return 1
    fi
}

@test "MOUNTPOINT equal to POOL_DIR is refused before mounting" {
    refused_before_mount "$POOL" "$POOL"
    [[ "$output" == *"is POOL_DIR"* ]]
    refused_before_mount "$POOL" "$POOL/."
    [[ "$output" == *"is POOL_DIR"* ]]
    ln -s "$POOL" "$BASE/link"
    refused_before_mount "$BASE/link" "$POOL"
    [[ "$output" == *"is POOL_DIR"* ]]
}

@test "MOUNTPOINT inside or holding POOL_DIR is refused (swapped arguments)" {
    mkdir "$POOL/sub"
    refused_before_mount "$POOL" "$POOL/sub"
    [[ "$output" == *"inside POOL_DIR"* ]]
    refused_before_mount "$POOL/sub" "$POOL"
    [[ "$output" == *"holds POOL_DIR"* ]]
    refused_before_mount "$POOL" "$BASE"
    [[ "$output" == *"holds POOL_DIR"* ]]
    [ -e "$POOL/.kvp_pool_1" ]
}

@test "a MOUNTPOINT that holds pool files is refused (kvpfs EMPTY_DIR POOL_DIR)" {
    mkdir "$BASE/empty"
    refused_before_mount "$BASE/empty" "$POOL"
    [[ "$output" == *"MOUNTPOINT '$POOL' holds pool files (.kvp_pool_"*"arguments swapped?"* ]]
    # One pool file is enough: a directory hv_kvp_daemon has only begun to fill.
    mkdir "$BASE/one"
    : >"$BASE/one/.kvp_pool_3"
    refused_before_mount "$POOL" "$BASE/one"
    [[ "$output" == *"holds pool files (.kvp_pool_3)"* ]]
    [ -e "$POOL/.kvp_pool_1" ] && [ -e "$BASE/one/.kvp_pool_3" ]
}

@test "a MOUNTPOINT inside a kvpfs mount is refused" {
    start_kvpfs
    run "$KVPFS" -f "$POOL" "$MNT/guest"
    [ "$status" -ne 0 ]
    [[ "$output" == *"lies inside the kvpfs mount on '$MNT'"* ]]
    [ "$(grep -c " $MNT" /proc/mounts)" -eq 1 ]
}

@test "a /dev/fuse that is not the FUSE device is named, with the cure" {
    # In a mount namespace of its own: /dev/null bound over /dev/fuse, then no /dev/fuse at all.
    run unshare -m --propagation private sh -c \
        'mount --bind /dev/null /dev/fuse && exec "$0" -f "$1" "$2"' "$KVPFS" "$POOL" "$MNT"
    [ "$status" -eq 2 ]
    [[ "$output" == *"/dev/fuse is not the FUSE device"*"character device 1:3"*"--device /dev/fuse"* ]]
    run unshare -m --propagation private sh -c \
        'mount -t tmpfs none /dev && exec "$0" -f "$1" "$2"' "$KVPFS" "$POOL" "$MNT"
    [ "$status" -eq 2 ]
    [[ "$output" == *"/dev/fuse: No such file or directory"*"modprobe fuse"* ]]
    if grep -q " $MNT " /proc/mounts; then return 1; fi
}

@test "a second kvpfs on a kvpfs mount is refused and says so" {
    start_kvpfs
    run "$KVPFS" "$POOL" "$MNT"
    [ "$status" -ne 0 ]
    [[ "$output" == *"already a kvpfs mount"* ]]
    [ "$(grep -c " $MNT " /proc/mounts)" -eq 1 ]
}

@test "a dead FUSE mount names the cure: fusermount3 -u MOUNTPOINT" {
    start_kvpfs
    stat "$MNT/guest" >/dev/null
    kill -9 "$KVPFS_PID"
    wait "$KVPFS_PID" 2>/dev/null || true
    KVPFS_PID=
    run "$KVPFS" "$POOL" "$MNT"
    [ "$status" -ne 0 ]
    [[ "$output" == *"dead FUSE mount"*"fusermount3 -u $MNT"* ]]
    fusermount3 -u "$MNT"
    start_kvpfs
}

@test "a POOL_DIR without pool files mounts with one warning line" {
    rm "$POOL"/.kvp_pool_*
    start_kvpfs
    [ "$(grep -c 'warning' "$BATS_TEST_TMPDIR/kvpfs.log")" -eq 1 ]
    grep -q "holds none of the pool files" "$BATS_TEST_TMPDIR/kvpfs.log"
    echo v >"$MNT/guest/first"
    [ -s "$POOL/.kvp_pool_1" ]
}

@test "-o ro is a kernel read-only mount; the last of ro and rw wins" {
    start_kvpfs -o ro
    grep " $MNT " /proc/mounts | grep -q " ro,"
    [ ! -w "$MNT/guest" ]
    run bash -c "echo x >'$MNT/guest/k'"
    [[ "$output" == *"Read-only file system"* ]]
    stop_kvpfs
    start_kvpfs -o ro -o rw
    grep " $MNT " /proc/mounts | grep -q " rw,"
    echo x >"$MNT/guest/k"
    stop_kvpfs
    start_kvpfs -o rw,ro
    grep " $MNT " /proc/mounts | grep -q " ro,"
}

@test "-o fsname= and -o subtype= are honoured" {
    start_kvpfs -o fsname=hyperv-kvp,subtype=kvptest
    grep -q "^hyperv-kvp $MNT fuse.kvptest " /proc/mounts
    stop_kvpfs
    start_kvpfs
    grep -q "^$POOL $MNT fuse.kvpfs " /proc/mounts
}

@test "-o max_read=N is honoured: the mount serves reads, not EPROTO at init" {
    set_pool 3 k "$(head -c 2000 /dev/zero | tr '\0' x)"
    start_kvpfs -o max_read=4096
    [ "$(wc -c <"$MNT/parameter/k")" -eq 2001 ]
    ls "$MNT/auto" >/dev/null
}

@test "empty or bad values of generic options are refused before mounting" {
    refused_before_mount -o fsname= "$POOL" "$MNT"
    [[ $output == *"fsname"* ]]
    refused_before_mount -o subtype= "$POOL" "$MNT"
    [[ $output == *"subtype"* ]]
    refused_before_mount -o max_read=lots "$POOL" "$MNT"
    [[ $output == *"max_read"* ]]
    refused_before_mount "$POOL" "$MNT" -o   # one line, not libfuse's and then ours
    [[ $output == *"-o"* ]]
}

@test "a crafted name cannot forge a log line" {
    start_kvpfs
    run stat "$MNT/guest/%zz"$'\n''kvpfs: error: forged'
    [ "$status" -ne 0 ]
    run grep -c '^kvpfs: error: forged' "$BATS_TEST_TMPDIR/kvpfs.log"
    [ "$output" = 0 ]
    grep -qF 'guest/%zz\nkvpfs: error: forged' "$BATS_TEST_TMPDIR/kvpfs.log"
    run stat "$MNT/guest/%zz"$'\r\x1b[2K\x7f'
    grep -qF 'guest/%zz\r\x1b[2K\x7f' "$BATS_TEST_TMPDIR/kvpfs.log"
    # C1 controls (NEL, CSI) and bytes that are not UTF-8 are escaped too.
    run stat "$MNT/guest/%zz"$'\xc2\x85''nel'$'\x9b''csi'$'\xff'
    grep -qF 'guest/%zz\xc2\x85nel\x9bcsi\xff' "$BATS_TEST_TMPDIR/kvpfs.log"
    run env LC_ALL=C grep -a -c $'\xc2\x85\|\x9b' "$BATS_TEST_TMPDIR/kvpfs.log"
    [ "$output" = 0 ]
}

@test "5,000 bad lookups give a bounded number of lines and a summary" {
    start_kvpfs
    python3 - "$MNT" <<'PY'
import os, sys
for i in range(5000):
    try:
        os.stat(sys.argv[1] + "/guest/%zz" + str(i))
    except OSError:
        pass
PY
    stop_kvpfs
    local log=$BATS_TEST_TMPDIR/kvpfs.log
    [ "$(grep -c 'not a canonical key name' "$log")" -le 100 ]
    # Every line left out is counted in the summaries.
    local shown left
    shown=$(grep -c 'not a canonical key name' "$log")
    left=$(grep -o '[0-9]* more error lines left out' "$log" | awk '{s += $1} END {print s}')
    [ $((shown + left)) -eq 5000 ]
}

@test "-o logfile=PATH keeps the lines of a detached daemon" {
    "$KVPFS" -o logfile="$BASE/kvpfs.log" "$POOL" "$MNT"
    run stat "$MNT/guest/%zz"
    fusermount3 -u "$MNT"
    local i
    for ((i = 0; i < 3000; i++)); do
        grep -q unmounted "$BASE/kvpfs.log" && break
        sleep 0.01
    done
    grep -q "kvpfs\[[0-9]*\]: info: mounted $POOL on $MNT" "$BASE/kvpfs.log"
    grep -q "error: lookup: guest/%zz: not a canonical key name" "$BASE/kvpfs.log"
    grep -q "info: unmounted $MNT" "$BASE/kvpfs.log"
}

@test "-o logfile= a FIFO: refused at once without a reader, used with one" {
    mkfifo "$BATS_TEST_TMPDIR/fifo"
    run timeout 10 "$KVPFS" -f -o logfile="$BATS_TEST_TMPDIR/fifo" "$POOL" "$MNT"
    [ "$status" -ne 124 ]   # not waiting for a reader forever
    [ "$status" -ne 0 ]
    [ "${#lines[@]}" -eq 1 ]
    [[ $output == *"no reader"* ]]
    run grep -c " $MNT " /proc/mounts
    [ "$output" = 0 ]
    cat "$BATS_TEST_TMPDIR/fifo" >"$BATS_TEST_TMPDIR/read" &
    reader=$!
    for ((i = 0; i < 3000; i++)); do
        # cat waits in open() for a writer: a reader the FIFO counts
        [[ $(cat /proc/$reader/comm) == cat && $(cut -d' ' -f3 /proc/$reader/stat) == S ]] && break
        sleep 0.01
    done
    start_kvpfs -o logfile="$BATS_TEST_TMPDIR/fifo"
    stop_kvpfs
    wait "$reader"
    grep -q "info: mounted $POOL on $MNT" "$BATS_TEST_TMPDIR/read"
}

@test "a detached kvpfs without /dev/log says so once on stderr" {
    # A private mount namespace where /dev/log is missing, as in a container.
    run unshare -m bash -c "mount -t tmpfs tmpfs /dev 2>/dev/null || exit 99
        mknod -m 666 /dev/fuse c 10 229; mknod -m 666 /dev/null c 1 3
        '$KVPFS' '$POOL' '$MNT' && fusermount3 -u '$MNT'"
    [ "$status" -ne 99 ] || skip "cannot make a private /dev here"
    [ "$status" -eq 0 ]
    [ "$(grep -c '/dev/log is missing' <<<"$output")" -eq 1 ]
}

@test "-o umask= opens guest/ to a group; read-only pools stay without write bits" {
    start_kvpfs -o uid=daemon,gid=daemon,umask=002
    [ "$(stat -c '%a %U %G' "$MNT/guest")" = "775 daemon daemon" ]
    echo v >"$MNT/guest/k"
    [ "$(stat -c '%a %U %G' "$MNT/guest/k")" = "664 daemon daemon" ]
    [ "$(stat -c %a "$MNT/parameter")" = 555 ]
    [ "$(stat -c %a "$MNT")" = 555 ]
    stop_kvpfs
    start_kvpfs -o umask=077
    [ "$(stat -c %a "$MNT/guest")" = 700 ]
    [ "$(stat -c %a "$MNT/guest/k")" = 600 ]
    [ "$(stat -c %a "$MNT/parameter")" = 500 ]
    [ "$(stat -c %a "$MNT")" = 500 ]      # the root is masked like the pool directories
    stop_kvpfs
    start_kvpfs -o umask=0777
    [ "$(stat -c %a "$MNT" "$MNT/guest" "$MNT/parameter" | sort -u)" = 0 ]
}

@test "a group member writes guest/ with gid=GROUP,umask=002" {
    chmod 755 "$BASE"
    start_kvpfs -o allow_other,gid=nogroup,umask=002
    # nobody, with nogroup as its group: writes by the group bits only.
    run setpriv --reuid=nobody --regid=nogroup --clear-groups bash -c "echo hi >'$MNT/guest/bygroup'"
    [ "$status" -eq 0 ]
    [ "$(cat "$MNT/guest/bygroup")" = hi ]
    stop_kvpfs
    start_kvpfs -o allow_other,gid=nogroup
    run setpriv --reuid=nobody --regid=nogroup --clear-groups bash -c "echo hi >'$MNT/guest/bygroup'"
    [ "$status" -ne 0 ]
}

@test "-o allow_root is accepted" {
    start_kvpfs -o allow_root
    [ -d "$MNT/guest" ]
}

@test "df shows the pool bytes as used blocks and the keys as used inodes" {
    set_pool 3 a 1 b 2 c 3
    set_pool 1 g 1
    start_kvpfs -o auto=file
    used_inodes() { echo $(($(stat -f -c %c "$MNT") - $(stat -f -c %d "$MNT"))); }
    [ "$(used_inodes)" -eq 4 ]              # 3 + 1 keys
    [ "$(stat -f -c %S "$MNT")" -eq 4096 ]
    [ "$(($(stat -f -c %b "$MNT") - $(stat -f -c %f "$MNT")))" -eq 3 ]  # 4 records of 2560 bytes in 3 blocks
    echo v >"$MNT/guest/h"
    [ "$(used_inodes)" -eq 5 ]
    run df -i "$MNT"
    # Inodes IUsed IFree IUse%: 5 used, and never 100 %: the room left on the pools' tmpfs.
    read -r _ _ iused ifree iuse _ <<<"${lines[1]}"
    [ "$iused" -eq 5 ]
    [ "$ifree" -gt 1000 ]                   # 16 MiB of tmpfs holds thousands of records
    [ "$iuse" != "100%" ]
}

@test "df's free blocks and inodes are the room the pools' file system has left" {
    start_kvpfs
    # The pool tmpfs is 16 MiB: its free bytes, in 4096-byte blocks and in 2560-byte records.
    free=$(($(stat -f -c %a "$POOL") * $(stat -f -c %S "$POOL")))
    [ "$(stat -f -c %a "$MNT")" -eq $((free / 4096)) ]
    [ "$(stat -f -c %d "$MNT")" -eq $((free / 2560)) ]
    run df "$MNT"
    [[ "${lines[1]}" != *" 100% "* ]]
}

@test "df -i counts the files ls shows, auto/'s intrinsic items included" {
    set_pool 3 a 1 b 2 c 3
    set_pool 2 OSName mine extra x   # overrides one intrinsic item, adds one key
    start_kvpfs
    shown=$(find "$MNT" -type f | wc -l)
    [ "$shown" -eq 14 ]                    # 3 + 2 + the 9 intrinsic items the file lacks
    [ "$(($(stat -f -c %c "$MNT") - $(stat -f -c %d "$MNT")))" -eq "$shown" ]
}

@test "a user's own mount belongs to that user, who may write guest/; every mount is nodev,nosuid" {
    # nobody mounts through fusermount3, in a mount namespace of its own where /dev/fuse is
    # open to users (it is 0600 on some machines) and nothing leaks out.
    chown -R nobody:nogroup "$POOL" "$MNT"
    chmod 755 "$BASE"
    run unshare -m --propagation private sh -ec '
        dev=$(mktemp -d); mount -t tmpfs -o mode=755 none "$dev"
        mknod -m 666 "$dev/fuse" c 10 229; mount --bind "$dev/fuse" /dev/fuse
        as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
        as_nobody "$0" "$1" "$2"
        i=0; until grep -q " $2 fuse" /proc/self/mounts; do i=$((i+1)); [ $i -lt 3000 ]; sleep 0.01; done
        grep " $2 " /proc/self/mounts | cut -d" " -f4
        as_nobody stat -c "%U:%G" "$2" "$2/guest" "$2/parameter"
        as_nobody sh -c "echo mine >\"$2/guest/K\"" && echo stored
        as_nobody fusermount3 -u "$2"' "$KVPFS" "$POOL" "$MNT"
    echo "$output"
    [ "$status" -eq 0 ]
    # (a detached kvpfs may first warn that /dev/log is missing)
    [[ $output == *$'\n'rw,nosuid,nodev,*user_id=65534,group_id=65534* ]]
    [[ $output == *$'\nnobody:nogroup\nnobody:nogroup\nnobody:nogroup\nstored' ]]
    grep -q mine "$POOL/.kvp_pool_1"
}

@test "an fstab-style mount with dev,suid is nodev,nosuid all the same" {
    start_kvpfs -o dev,suid
    grep " $MNT " /proc/mounts | grep -q "nosuid,nodev"
}
