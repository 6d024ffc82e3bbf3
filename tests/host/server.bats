#!/usr/bin/env bats
# kvp-host serve's own life, without kvpfs (so run once, not per mount mode): a server that
# crashed, two servers on one state directory, stopping with a client connected, and the
# client's --timeout.

setup() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/kvp-host-server.XXXXXX")
    mkdir "$work/pools"
    "$KVPCTL" init "$work/pools" >/dev/null
    servers=()
    helpers=()
}

teardown() {
    local pid
    for pid in "${helpers[@]}"; do
        kill -KILL "$pid" 2>/dev/null
    done
    for pid in "${servers[@]}"; do
        kill -TERM "$pid" 2>/dev/null
        wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null
    done
    local m
    for m in $(awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | sort -r); do
        umount -l "$m"
    done
    rm -rf --one-file-system "$work"
}

# serve STATE_DIR [ARGS...]: starts kvp-host serve on $work/pools in the background.
serve() {
    local state=$1
    shift
    "$KVP_HOST" serve --pool-dir "$work/pools" --state-dir "$state" "$@" \
        </dev/null 2>>"$work/serve.err" &
    servers+=($!)
    server_pid=$!
}

# wait_gone PID SECONDS: until PID has ended (a zombie has ended).
wait_gone() {
    local end=$((SECONDS + $2)) stat
    while stat=$(cat "/proc/$1/stat" 2>/dev/null); do
        stat=${stat##*) }
        [[ ${stat:0:1} == Z ]] && return 0
        ((SECONDS < end)) || return 1
        sleep 0.02
    done
}

@test "serve after a serve that was killed: the dead device mount is cleared and it starts" {
    serve "$work/state"
    "$KVP_HOST" --socket "$work/state/socket" status --wait 60 >/dev/null
    kill -KILL "$server_pid"
    wait_gone "$server_pid" 60
    # The killed server could not unmount its device: a dead FUSE mount is left behind.
    awk -v p="$work/state/dev" '$2 == p { found = 1 } END { exit !found }' /proc/self/mounts
    serve "$work/state"
    run "$KVP_HOST" --socket "$work/state/socket" status --wait 60
    echo "$output"
    cat "$work/serve.err"
    [[ $status == 0 ]]
    "$KVP_HOST" --socket "$work/state/socket" add external AfterCrash yes
    [[ $("$KVP_HOST" --socket "$work/state/socket" get external AfterCrash) == yes ]]
}

@test "a second serve on the same state directory is refused; the first keeps working" {
    serve "$work/state"
    first=$server_pid
    "$KVP_HOST" --socket "$work/state/socket" status --wait 60 >/dev/null
    mkdir "$work/pools2"
    "$KVPCTL" init "$work/pools2" >/dev/null
    run timeout 60 "$KVP_HOST" serve --pool-dir "$work/pools2" --state-dir "$work/state" \
        --socket "$work/socket2" </dev/null
    echo "$output"
    [[ $status == 2 ]]
    [[ $output == *"$work/state"*"in use"* ]]
    kill -0 "$first"
    # The first server's daemon can still be restarted (its syslog socket and device are
    # its own) and registers again.
    "$KVP_HOST" --socket "$work/state/socket" daemon stop
    local end=$((SECONDS + 60))
    until "$KVP_HOST" --socket "$work/state/socket" status | grep -q "not running"; do
        ((SECONDS < end)) || return 1
        sleep 0.05
    done
    "$KVP_HOST" --socket "$work/state/socket" daemon start
    run "$KVP_HOST" --socket "$work/state/socket" status --wait 60
    echo "$output"
    cat "$work/serve.err"
    [[ $status == 0 ]]
}

@test "serve stops on SIGTERM while a client stays connected without a request" {
    serve "$work/state"
    "$KVP_HOST" --socket "$work/state/socket" status --wait 60 >/dev/null
    python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(600)' "$work/state/socket" &
    helpers+=($!)
    # Connected once the server counts it: a status request over another connection works
    # either way, so give the client a moment by waiting for its socket to exist.
    local end=$((SECONDS + 60))
    until [[ -n $(ls -l /proc/"${helpers[0]}"/fd 2>/dev/null | grep socket) ]]; do
        ((SECONDS < end)) || return 1
        sleep 0.02
    done
    sleep 0.2
    kill -TERM "$server_pid"
    # The bound is the feature: kvp-sandbox SIGKILLs a server that takes 8 s to stop (it
    # then cannot unmount its device); a silent client must not hold the server up.
    wait_gone "$server_pid" 6
    cat "$work/serve.err"
    grep -q "stopped" "$work/serve.err"
}

@test "--timeout 0 is refused, not taken as the server's 30 s" {
    run "$KVP_HOST" --socket "$work/nosuch" --timeout 0 add external Key Value
    echo "$output"
    [[ $status == 2 ]]
    [[ $output == *timeout* ]]
    run "$KVP_HOST" --socket "$work/nosuch" --timeout 0.0001 add external Key Value
    echo "$output"
    [[ $status == 2 ]]
    [[ $output == *timeout* ]]
}

@test "a host call whose client died while it waited its turn is not sent to the daemon" {
    serve "$work/state"
    local sock=$work/state/socket
    "$KVP_HOST" --socket "$sock" status --wait 60 >/dev/null
    # The client's request line, as kvp-host sends it (caught by a one-shot listener).
    python3 - "$work/fake" "$work/ghost.line" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept()
line = b""
while not line.endswith(b"\n"):
    line += c.recv(65536)
open(sys.argv[2], "wb").write(line)
PY
    local catcher=$!
    local end=$((SECONDS + 60))
    until [[ -S $work/fake ]]; do ((SECONDS < end)) || return 1; sleep 0.02; done
    timeout 60 "$KVP_HOST" --socket "$work/fake" add external Ghost v || true
    wait "$catcher"
    # The daemon stopped: a first request waits for it, the ghost's waits its turn.
    local dpid
    dpid=$("$KVP_HOST" --socket "$sock" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["daemon_pid"])')
    kill -STOP "$dpid"
    "$KVP_HOST" --socket "$sock" --timeout 60 add external First v &
    local first=$!
    helpers+=("$first")
    until "$KVP_HOST" --socket "$sock" --json status | grep -q '"pending":true'; do
        ((SECONDS < end)) || return 1
        sleep 0.02
    done
    # Sent, then the client is gone before its turn came (as a client killed with SIGKILL).
    python3 - "$sock" "$work/ghost.line" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(open(sys.argv[2], "rb").read())
s.close()
PY
    kill -CONT "$dpid"
    wait "$first"
    # The ghost's turn has come and gone once a later request is answered.
    "$KVP_HOST" --socket "$sock" add external Last v
    run "$KVPCTL" --pool-dir "$work/pools" list external
    echo "$output"
    [[ $output == *First* && $output == *Last* && $output != *Ghost* ]]
}
