# Helpers for kvpfs.bats: a tmpfs pool directory, a kvpfs mount over it, and a record
# writer of our own (tests/common/pool_record.bash), independent of the engine.

KVPFS=${KVPFS:-$BATS_TEST_DIRNAME/../../build/kvpfs}
FUSE_MAGIC=65735546

# The tests' own pool record writer (kvp_record KEY VALUE).
source "${BASH_SOURCE[0]%/*}/../common/pool_record.bash"

# set_pool N KEY VALUE [KEY VALUE...]: replaces .kvp_pool_N under flock.
set_pool() {
    local n=$1
    shift
    {
        while [ $# -ge 2 ]; do
            kvp_record "$1" "$2"
            shift 2
        done
    } >"$BATS_TEST_TMPDIR/records"
    flock "$POOL/.kvp_pool_$n" cp "$BATS_TEST_TMPDIR/records" "$POOL/.kvp_pool_$n"
}

# start_kvpfs [OPTIONS...]: mounts $POOL on $MNT and waits until the mount is live.
start_kvpfs() {
    "$KVPFS" -f "$@" "$POOL" "$MNT" 2>>"$BATS_TEST_TMPDIR/kvpfs.log" &
    KVPFS_PID=$!
    local i
    for ((i = 0; i < 6000; i++)); do
        [ "$(stat -f -c %t "$MNT" 2>/dev/null)" = "$FUSE_MAGIC" ] && return 0
        kill -0 "$KVPFS_PID" 2>/dev/null || break
        sleep 0.005
    done
    echo "kvpfs did not mount:" >&2
    cat "$BATS_TEST_TMPDIR/kvpfs.log" >&2
    return 1
}

stop_kvpfs() {
    if [ -n "${KVPFS_PID:-}" ]; then
        if [ "$(stat -f -c %t "$MNT" 2>/dev/null)" = "$FUSE_MAGIC" ]; then
            fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
        fi
        wait "$KVPFS_PID" 2>/dev/null || true
        KVPFS_PID=
    fi
}

kvpfs_setup() {
    BASE=$(mktemp -d /tmp/kvpfs-bats.XXXXXX)
    POOL=$BASE/pool
    MNT=$BASE/mnt
    mkdir "$POOL" "$MNT"
    mount -t tmpfs -o size=16m tmpfs "$POOL"
    local n
    for n in 0 1 2 3 4; do
        : >"$POOL/.kvp_pool_$n"
    done
}

kvpfs_teardown() {
    stop_kvpfs
    if [ -n "${BASE:-}" ]; then
        umount -l "$POOL" 2>/dev/null || true
        rm -rf "$BASE"
    fi
}
