#!/usr/bin/env bats
# scripts/kvp-sandbox (docs/behaviour.md §10): it runs CMD over a live kvpfs, passes CMD's exit
# status through, and leaves nothing behind whatever happens: CMD failing, CMD killed,
# the daemon killed, the sandbox itself signalled. Needs root, /dev/fuse (ctest label
# `mount`), and KVPFS, KVPCTL, KVP_SANDBOX.

load sandbox_helpers

setup() {
    : "${KVP_SANDBOX:?set KVP_SANDBOX to scripts/kvp-sandbox}"
    : "${KVPFS:?set KVPFS}" "${KVPCTL:?set KVPCTL}"
    export KVPFS KVPCTL
    tmp=$(mktemp -d)
    sandbox_pid=
}

teardown() {
    [[ -n $sandbox_pid ]] && kill -KILL "$sandbox_pid" 2>/dev/null
    rm -rf "$tmp"
}

@test "CMD runs over a live mount with KVP_MOUNT and KVP_POOL_DIR; all is removed after" {
    sandbox_run -- '
        [ "$(stat -f -c %T "$KVP_MOUNT")" = fuseblk ] || exit 10
        [ "$(ls "$KVP_MOUNT" | tr "\n" " ")" = "auto external guest parameter " ] || exit 11
        [ -f "$KVP_POOL_DIR/.kvp_pool_1" ] || exit 12
        [ "$(stat -f -c %T "$KVP_POOL_DIR")" = tmpfs ] || exit 13
        echo Ready >"$KVP_MOUNT/guest/Status" || exit 14
        "$KVPCTL" get guest Status'
    [ "$status" -eq 0 ]
    [[ $output == *Ready* ]]
    sandbox_assert_clean
}

@test "--sample fills parameter; auto shows the intrinsic items with pool 2 empty" {
    sandbox_run --sample -- '
        cat "$KVP_MOUNT/parameter/HostingSystemOsMajor"
        cat "$KVP_MOUNT/auto/ProcessorArchitecture"
        ls "$KVP_MOUNT/parameter" | wc -l
        stat -c %s "$KVP_POOL_DIR/.kvp_pool_2"'
    [ "$status" -eq 0 ]
    [[ $output == *$'10\n'"$(uname -m)"$'\n16\n0'* ]]
    sandbox_assert_clean
}

@test "writes through the mount land in the pool: kvpctl watch sees each one" {
    sandbox_run -- '
        seen() {  # polls 10 s at most
            for i in $(seq 3000); do grep -qxF "$1" "$0.watch" && return; sleep 0.01; done
            exit 21
        }
        "$KVPCTL" watch guest >"$0.watch" 2>"$0.err" &
        watcher=$!
        for i in $(seq 3000); do grep -q "kvpctl: watching" "$0.err" && break; sleep 0.01; done
        echo Ready >"$KVP_MOUNT/guest/Status"
        seen "guest added Status=Ready"
        echo Done >"$KVP_MOUNT/guest/Status"
        seen "guest changed Status=Done"
        rm "$KVP_MOUNT/guest/Status"
        seen "guest removed Status"
        kill -INT "$watcher"
        wait "$watcher" || exit 20
        cp "$0.watch" "$0.result"'
    [ "$status" -eq 0 ]
    [ "$(cat "$tmp/where.result")" = $'guest added Status=Ready\nguest changed Status=Done\nguest removed Status' ]
    sandbox_assert_clean
}

@test "the exit status of CMD is the sandbox's" {
    for code in 0 1 3 42 255; do
        run "$KVP_SANDBOX" -- sh -c "exit $code"
        [ "$status" -eq "$code" ]
    done
    run "$KVP_SANDBOX" -- false
    [ "$status" -eq 1 ]
}

@test "cleanup after a failing CMD" {
    sandbox_run -- 'echo Ready >"$KVP_MOUNT/guest/Status"; ls /nonexistent'
    [ "$status" -eq 2 ]
    sandbox_assert_clean
}

@test "cleanup after CMD is killed by a signal: exit 128+N" {
    sandbox_run -- 'kill -KILL $$'
    [ "$status" -eq 137 ]
    sandbox_assert_clean
    sandbox_run -- 'kill -TERM $$'
    [ "$status" -eq 143 ]
    sandbox_assert_clean
}

@test "cleanup when CMD leaves a process behind that keeps the mount busy" {
    sandbox_run -- '(cd "$KVP_MOUNT/guest" && exec sleep 1 </dev/null >/dev/null 2>&1 &); exit 5'
    [ "$status" -eq 5 ]
    sandbox_assert_clean
}

@test "cleanup after the daemon is killed under CMD" {
    sandbox_run -- '
        kill -KILL "$KVPFS_PID"
        while [ -e "/proc/$KVPFS_PID" ] && [ "$(cut -d" " -f3 "/proc/$KVPFS_PID/stat")" != Z ]; do
            sleep 0.01
        done
        ls "$KVP_MOUNT" && exit 0
        exit 7'
    [ "$status" -eq 7 ]
    [[ $output == *"kvpfs ended while the command ran"* ]]
    sandbox_assert_clean
}

@test "cleanup when the sandbox itself gets SIGTERM or SIGINT" {
    for sig in TERM:143 INT:130; do
        expected=${sig#*:} sig=${sig%:*}
        rm -f "$tmp/where"
        # env resets SIGINT: a shell starts background jobs with it ignored.
        env --default-signal=INT "$KVP_SANDBOX" -- bash -c 'printf "%s\n" "$KVP_MOUNT" "$KVP_POOL_DIR" "$KVPFS_PID" >"$0.new"
            mv "$0.new" "$0"; exec sleep 60' "$tmp/where" >"$tmp/log" 2>&1 &
        sandbox_pid=$!
        for ((i = 0; i < 3000; i++)); do [[ -e $tmp/where ]] && break; sleep 0.01; done
        [[ -e $tmp/where ]]
        kill -"$sig" "$sandbox_pid"
        status=0
        wait "$sandbox_pid" || status=$?
        sandbox_pid=
        [ "$status" -eq "$expected" ] || { cat "$tmp/log"; false; }
        [[ $(cat "$tmp/log") == *"$sig received"* ]]
        sandbox_assert_clean
    done
}

@test "a signalled sandbox also stops the processes CMD started" {
    "$KVP_SANDBOX" -- bash -c 'printf "%s\n" "$KVP_MOUNT" "$KVP_POOL_DIR" "$KVPFS_PID" >"$1"
        sleep 60 & echo $! >"$0.new"; mv "$0.new" "$0"; wait' "$tmp/child" "$tmp/where" \
        >"$tmp/log" 2>&1 &
    sandbox_pid=$!
    for ((i = 0; i < 3000; i++)); do [[ -e $tmp/child ]] && break; sleep 0.01; done
    child=$(cat "$tmp/child")
    kill -TERM "$sandbox_pid"
    status=0
    wait "$sandbox_pid" || status=$?
    sandbox_pid=
    [ "$status" -eq 143 ]
    # Gone (or a zombie waiting for its new parent) within a bound, not left to run 60 s.
    for ((i = 0; i < 1000; i++)); do
        [[ ! -e /proc/$child ]] && break
        [[ $(cut -d" " -f3 "/proc/$child/stat" 2>/dev/null) == Z ]] && break
        sleep 0.01
    done
    gone=1
    [[ -e /proc/$child && $(cut -d" " -f3 "/proc/$child/stat" 2>/dev/null) != Z ]] && gone=0
    ((gone)) || { kill "$child"; cat "$tmp/log"; false; }
    sandbox_assert_clean
}

@test "a clear error, exit 125, when there is no /dev/fuse" {
    run unshare -m bash -c 'mount -t tmpfs none /dev && exec "$0" -- true' "$KVP_SANDBOX"
    [ "$status" -eq 125 ]
    [[ $output == *"/dev/fuse is missing"* ]]
}

@test "a clear error, exit 125, when mounting is not permitted" {
    run setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin "$KVP_SANDBOX" -- true
    [ "$status" -eq 125 ]
    [[ $output == *"cannot mount a tmpfs"* ]]
    [[ $output == *"CAP_SYS_ADMIN"* ]]
}

@test "bad use: no command, unknown option" {
    run "$KVP_SANDBOX"
    [ "$status" -eq 125 ]
    [[ $output == *usage:* ]]
    run "$KVP_SANDBOX" --frob -- true
    [ "$status" -eq 125 ]
    run "$KVP_SANDBOX" --help
    [ "$status" -eq 0 ]
}

@test "-o passes kvpfs options through" {
    sandbox_run -o raw -o limits=pool -- '
        printf v >"$KVP_MOUNT/guest/K" || exit 10
        [ "$(wc -c <"$KVP_MOUNT/guest/K")" -eq 1 ] || exit 11
        grep -q " $KVP_MOUNT " /proc/mounts || exit 12'
    [ "$status" -eq 0 ]
    sandbox_run -o ro -- 'echo x >"$KVP_MOUNT/guest/K"'
    [ "$status" -ne 0 ]
    [[ $output == *"Read-only file system"* ]]
    sandbox_assert_clean
    run "$KVP_SANDBOX" -o bogus -- true
    [ "$status" -eq 125 ]
    [[ $output == *"unknown option"* ]]
}

@test "--quiet keeps kvpfs's lines off stderr; they are in \$KVP_LOG" {
    run "$KVP_SANDBOX" --quiet -- bash -c '
        stat "$KVP_MOUNT/guest/%zz" 2>/dev/null
        for i in $(seq 3000); do
            grep -q "not a canonical key name" "$KVP_LOG" && exit 0
            sleep 0.01
        done
        exit 10'
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    sandbox_run -- 'stat "$KVP_MOUNT/guest/%zz" 2>/dev/null; :'
    [[ $output == *"info: mounted"* ]]
    [[ $output == *"not a canonical key name"* ]]
}

@test "CMD finds the sandbox's kvpctl and kvpfs on its PATH" {
    PATH=/usr/bin:/bin run "$KVP_SANDBOX" --quiet -- sh -c \
        'readlink -f "$(command -v kvpctl)"; readlink -f "$(command -v kvpfs)"'
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "$(readlink -f "$KVPCTL")" ]
    [ "${lines[1]}" = "$(readlink -f "$KVPFS")" ]
}

@test "the pytest example of docs/examples passes in a sandbox, and fails outside its rules" {
    example=$BATS_TEST_DIRNAME/../../docs/examples/test_kvp_pytest.py
    # Debian's python3-pytest (scripts/setup.sh) is for Debian's python3, whatever else PATH has.
    python=/usr/bin/python3
    run "$KVP_SANDBOX" --quiet --sample -- "$python" -m pytest -q -p no:cacheprovider "$example"
    [ "$status" -eq 0 ]
    [[ $output == *"3 passed"* ]]
    # Without the sample data the VM's name is missing: the example's checks can fail.
    sandbox_run --quiet -- "$python -m pytest -q -p no:cacheprovider $example"
    [ "$status" -ne 0 ]
    [[ $output == *"failed"* ]]
    sandbox_assert_clean
}
