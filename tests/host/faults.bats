#!/usr/bin/env bats
# The daemon killed, restarted and stopped; the device's one-opener and interrupt rules;
# bad input on the host's side.

load host_helpers

@test "daemon killed: host requests fail fast; restarted: it registers again, pools intact" {
    host_sandbox '
        kvp-host add external Before kept
        shown holds external/Before kept
        pid=$(daemon_pid)
        kill -KILL $pid
        while kill -0 $pid 2>/dev/null; do sleep 0.01; done
        # Fast: the driver fails a request when no daemon is registered, without its 30 s
        # timeout (the bound is the feature here).
        start=$(date +%s%N)
        rc=0; kvp-host add external During x 2>err || rc=$?
        elapsed_ms=$((($(date +%s%N) - start) / 1000000))
        say "failed in ${elapsed_ms} ms: $(cat err)"
        [[ $rc == 1 ]] && grep -q "HV_E_FAIL" err && ((elapsed_ms < 10000))
        rc=0; kvp-host list guest 2>err || rc=$?
        [[ $rc == 1 ]]
        kvp-host daemon start
        kvp-host status --wait 60 > /dev/null
        [[ $(status_field registrations) == 2 ]]
        [[ $(kvp-host get external Before) == kept ]]
        shown holds external/Before kept
        absent external/During
        kvp-host add external After again
        shown holds external/After again
    '
}

@test "daemon stopped: the host times out, and after SIGCONT the daemon still applies it once" {
    host_sandbox '
        wait_for() { local end=$((SECONDS + 60)); until "$@"; do ((SECONDS < end)) || return 1; sleep 0.01; done; }
        pid=$(daemon_pid)
        kill -STOP $pid
        rc=0; kvp-host --timeout 1.5 add external Late value 2>err || rc=$?
        say "$(cat err)"
        [[ $rc == 1 ]] && grep -q "did not answer within 1.5 s" err
        # The daemon has not read that message: the driver fails the next request at once.
        rc=0; kvp-host --timeout 1.5 add external Second v 2>err || rc=$?
        [[ $rc == 1 ]] && grep -q "has not read the previous message" err
        kill -CONT $pid
        # It reads the old message, applies it, and its answer reaches no one (EINVAL): it
        # reopens the device and registers again.
        wait_for holds external/Late value
        [[ $(kvpctl dump --json external | grep -c "\"Late\"") == 1 ]]
        wait_for test "$(status_field registrations)" = 2
        kvp-host status --wait 60 > /dev/null
        grep -q "write failed; error: 22" "$KVP_HOST_LOG"
        [[ $(grep -c "KVP LIC Version: 3.1" "$KVP_HOST_LOG") == 2 ]]
        kvp-host add external AfterStop ok
        shown holds external/AfterStop ok
        absent external/Second
        [[ $(kvpctl list external | sort | tr "\n" " ") == "AfterStop Late " ]]
    '
}

@test "the device: one opener (EBUSY), registration answered with 3.1, kill -9 of a blocked reader" {
    host_sandbox '
        dev=$(status_field device)
        size=$(status_field message_size)
        [[ $size == $(status_field daemon_message_size) ]]
        ! python3 -c "import os, sys; os.open(sys.argv[1], os.O_RDWR)" "$dev" 2>err
        grep -q "Device or resource busy" err
        kvp-host daemon stop
        while [[ $(status_field device_open) == True ]]; do sleep 0.01; done
        # A requester before any registration: failed without reaching anyone.
        rc=0; kvp-host list guest 2>err || rc=$?
        [[ $rc == 1 ]] && grep -q "no hv_kvp_daemon is registered" err
        mkfifo parked
        python3 - "$dev" "$size" <<PY &
import os, select, sys
fd = os.open(sys.argv[1], os.O_RDWR)
size = int(sys.argv[2])
msg = bytearray(size)
msg[0] = 100  # KVP_OP_REGISTER1
assert os.write(fd, bytes(msg)) == size
p = select.poll()
p.register(fd, select.POLLIN)
assert p.poll(5000), "no registration answer"
reply = os.read(fd, size)
assert reply[0] == 100 and reply[4:8] == b"3.1\0", reply[:8]
assert p.poll(0) == [], "readable without a message"
open("parked", "w").write("parked\n")
os.read(fd, size)  # blocks: nothing is queued
PY
        reader=$!
        read -r line < parked
        [[ $line == parked ]]
        kvp-host status --wait 10 > /dev/null
        sleep 0.2  # let it enter read(); the kill must work wherever it is
        kill -KILL $reader
        # A read the daemon parked must not outlive kill -9 (FUSE interrupt answered).
        for ((i = 0; i < 1000; i++)); do kill -0 $reader 2>/dev/null || break; sleep 0.01; done
        ! kill -0 $reader 2>/dev/null
        kvp-host daemon start
        kvp-host status --wait 60 > /dev/null
        kvp-host add external Back yes
        shown holds external/Back yes
    '
}

@test "bad input on the host side: a clear error, exit 2, nothing sent" {
    host_sandbox '
        before=$(status_field transactions)
        expect_refusal() {  # PATTERN ARGS...
            local pattern=$1 rc=0
            shift
            kvp-host "$@" >out 2>err || rc=$?
            say "kvp-host $*: $rc: $(cat err)"
            [[ $rc == 2 ]] && grep -q -- "$pattern" err
        }
        expect_refusal "crashes it" add 5 Key Value
        expect_refusal "crashes it" list 5
        expect_refusal "crashes it" get 200 Key
        expect_refusal "unknown pool" add nowhere Key Value
        expect_refusal "only in pool 0 (external) and pool 3 (parameter)" add guest Key Value
        expect_refusal "only in pool 0 (external) and pool 3 (parameter)" remove auto Key
        expect_refusal "unpaired UTF-16 surrogate (U+D800)" add external $(printf "a\xed\xa0\x80") Value
        expect_refusal "unpaired UTF-16 surrogate (U+DC00)" add external Key $(printf "\xed\xb0\x80")
        expect_refusal "not UTF-8" add external $(printf "\xff") Value
        expect_refusal "empty key" add external "" Value
        expect_refusal "empty key" remove parameter ""
        expect_refusal "at most 255" add external "$(repeat k 256)" Value
        expect_refusal "at most 1023" add external Key "$(repeat v 1024)"
        expect_refusal "frobnicate" frobnicate
        expect_refusal "" add external OnlyKey
        [[ $(status_field transactions) == "$before" ]]
        [[ $(status_field daemon_running) == True && $(status_field registered) == True ]]
        [[ ! -s $KVP_POOL_DIR/.kvp_pool_0 ]]
    '
}
