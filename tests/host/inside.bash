# Helpers for the scripts the host tests run inside `kvp-sandbox --host` (sourced there).
# The mode comes from KVPFS_TEST_MOUNT_OPTIONS ("", "cache", "cache=all").

cached_mode() { [[ -n ${KVPFS_TEST_MOUNT_OPTIONS:-} ]]; }

# shown CMD...: a change another process made (here: hv_kvp_daemon, for the host) shows
# through the mount at the first read in the default mode; in the cached modes within the
# staleness window, polled here with a generous bound for a loaded machine.
shown() {
    if ! cached_mode; then
        "$@"
        return
    fi
    # 10 s, times KVPFS_TEST_SLACK: the window itself is measured by the bench, not here.
    local slack=${KVPFS_TEST_SLACK:-1}
    local end=$(($(date +%s%N) + 10000000000 * ${slack%.*}))
    until "$@"; do
        (($(date +%s%N) < end)) || return 1
        sleep 0.002
    done
}

# holds REL VALUE: the file under the mount shows exactly VALUE (and the newline of text mode).
holds() {
    cmp -s <(printf '%s\n' "$2") "$KVP_MOUNT/$1"
}
absent() {
    [[ ! -e $KVP_MOUNT/$1 ]]
}

# say WHAT...: a line for the test log (bats shows it when a test fails).
say() {
    echo "# $*" >&2
}

# repeat TEXT N: TEXT N times.
repeat() {
    local out= i
    for ((i = 0; i < $2; i++)); do out+=$1; done
    printf '%s' "$out"
}

# The daemon's pid, from the simulator.
daemon_pid() {
    kvp-host --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["daemon_pid"])'
}
status_field() {
    kvp-host --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
