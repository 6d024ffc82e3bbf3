# Helpers for the tests of `kvpctl wait`: start a waiting kvpctl, make the key appear by any
# means (kvpctl set, a write through a mount, a push from a host, a shell tool), then check
# what the wait printed. Only KVPCTL (the binary) and a writable directory are needed:
#
#   wait_start --pool-dir "$POOL" guest Status --value Ready   # returns once the wait is armed
#   ... make guest/Status be Ready ...
#   wait_finish                                                 # waits for it to end
#   [ "$WAIT_STATUS" -eq 0 ] && [ "$WAIT_STDOUT" = Ready ]
#
# wait_start and wait_finish bound their waits generously (WAIT_BOUND seconds, 60 by default)
# so that they hold on a loaded machine; a test never asserts an upper bound of time through
# them. wait_cleanup (for teardown) kills a wait still running.

# The pool record writers the kvpctl tests use (kvpctl_record, kvp_record).
source "${BASH_SOURCE[0]%/*}/kvpctl_helpers.bash"

WAIT_BOUND=${WAIT_BOUND:-60}
WAIT_PID=

# wait_start ARGS...: runs `kvpctl wait ARGS... --verbose` in the background, its stdout and
# stderr into files ($WAIT_OUT, $WAIT_ERR, under WAIT_DIR: BATS_TEST_TMPDIR by default), and
# returns once it said it is armed (a change made from then on is seen), or once it ended.
# Fails if neither happens within WAIT_BOUND seconds.
wait_start() {
    local dir=${WAIT_DIR:-$BATS_TEST_TMPDIR}
    WAIT_OUT=$dir/wait.out
    WAIT_ERR=$dir/wait.err
    : >"$WAIT_OUT"
    : >"$WAIT_ERR"
    "$KVPCTL" wait "$@" --verbose >"$WAIT_OUT" 2>"$WAIT_ERR" &
    WAIT_PID=$!
    local i
    for ((i = 0; i < WAIT_BOUND * 100; i++)); do
        grep -qF "kvpctl: waiting for" "$WAIT_ERR" && return 0
        wait_running || return 0
        sleep 0.01
    done
    echo "kvpctl wait did not get ready in $WAIT_BOUND s; its stderr:" >&2
    cat "$WAIT_ERR" >&2
    return 1
}

# True while the started wait still runs (a zombie counts as ended).
wait_running() {
    [ -n "$WAIT_PID" ] && kill -0 "$WAIT_PID" 2>/dev/null &&
        [[ $(cut -d' ' -f3 "/proc/$WAIT_PID/stat" 2>/dev/null) != Z ]]
}

# wait_finish: waits for the started wait to end (WAIT_BOUND seconds at most), then sets
# WAIT_STATUS (its exit status), WAIT_STDOUT and WAIT_STDERR (what it printed). Fails, showing
# its stderr, when it is still running at the bound.
wait_finish() {
    local i
    for ((i = 0; i < WAIT_BOUND * 100; i++)); do
        wait_running || break
        sleep 0.01
    done
    if wait_running; then
        echo "kvpctl wait still running after $WAIT_BOUND s; its stderr:" >&2
        cat "$WAIT_ERR" >&2
        return 1
    fi
    WAIT_STATUS=0
    wait "$WAIT_PID" || WAIT_STATUS=$?
    WAIT_PID=
    WAIT_STDOUT=$(cat "$WAIT_OUT")
    WAIT_STDERR=$(cat "$WAIT_ERR")
}

# The CPU time the started wait has used so far, in clock ticks (utime + stime).
wait_cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$WAIT_PID/stat"
}

wait_cleanup() {
    if [ -n "$WAIT_PID" ]; then
        kill -KILL "$WAIT_PID" 2>/dev/null || true
        wait "$WAIT_PID" 2>/dev/null || true
        WAIT_PID=
    fi
}

# wait_pool_record KEY VALUE: one zero-filled 2560-byte record on stdout, written by shell
# tools alone (no engine, no lock), for writers that bypass kvpctl.
wait_pool_record() {
    kvp_record "$1" "$2"
}
