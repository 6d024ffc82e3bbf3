# Helpers of sandbox.bats.

# Runs the sandbox with a CMD that records where it ran (KVP_MOUNT, KVP_POOL_DIR and the
# daemon's PID) into $tmp/where, then runs the rest of the script given.
sandbox_run() {  # [--sample] -- SCRIPT
    local args=()
    while [[ $1 != -- ]]; do args+=("$1"); shift; done
    shift
    run "$KVP_SANDBOX" "${args[@]}" -- bash -c '
        printf "%s\n" "$KVP_MOUNT" "$KVP_POOL_DIR" "$KVPFS_PID" >"$0"
        '"$1" "$tmp/where"
}

# Fails unless everything the last sandbox made is gone: no mount at its mountpoint or
# pool directory, neither directory left, its daemon ended.
sandbox_assert_clean() {
    local mnt pools pid
    { read -r mnt; read -r pools; read -r pid; } <"$tmp/where"
    [[ -n $mnt && -n $pools && -n $pid ]] || { echo "where: $(cat "$tmp/where")"; return 1; }
    if awk -v a="$mnt" -v b="$pools" '$2 == a || $2 == b { f = 1 } END { exit !f }' /proc/self/mounts; then
        echo "still mounted: $(grep -F -e "$mnt" -e "$pools" /proc/self/mounts)"
        return 1
    fi
    [[ ! -e $mnt ]] || { echo "mountpoint left: $mnt"; return 1; }
    [[ ! -e $pools ]] || { echo "pool directory left: $pools"; return 1; }
    [[ ! -e $(dirname "$mnt") ]] || { echo "sandbox directory left: $(dirname "$mnt")"; return 1; }
    if [[ -e /proc/$pid ]] && [[ $(cut -d' ' -f2 "/proc/$pid/stat") == "(kvpfs)" ]]; then
        echo "kvpfs $pid still runs"
        return 1
    fi
}
