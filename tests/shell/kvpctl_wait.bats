#!/usr/bin/env bats
# kvpctl wait as a program, against real pool files on tmpfs (/dev/shm) changed by real
# writers: kvpctl, shell tools without locks, renames of files and directories, a store
# through a shared mapping. Needs KVPCTL (the binary); no mount (kvpctl_wait_mount.bats).
# No test bounds the time a wakeup takes: each waits for the outcome (kvpctl_wait_helpers).

load kvpctl_wait_helpers
bats_require_minimum_version 1.5.0

setup() {
    : "${KVPCTL:?set KVPCTL to the kvpctl binary}"
    tmp=$(mktemp -d /dev/shm/kvpctl_wait.XXXXXX)
    export KVP_POOL_DIR=$tmp/pools
    "$KVPCTL" init "$KVP_POOL_DIR" >/dev/null
    pool1=$KVP_POOL_DIR/.kvp_pool_1
}

teardown() {
    wait_cleanup
    rm -rf "$tmp"
}

@test "wait is satisfied by a later kvpctl set and prints the value and one newline" {
    wait_start guest Status
    wait_running
    "$KVPCTL" set guest Status 'Ready now'
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = 'Ready now' ]
    [ "$(od -An -c "$WAIT_OUT" | tr -s ' ')" = " R e a d y n o w \n" ]
}

@test "wait for a key already there returns at once, also with --timeout 0" {
    "$KVPCTL" set external Id 42
    run "$KVPCTL" wait external Id
    [ "$status" -eq 0 ]
    [ "$output" = 42 ]
    run "$KVPCTL" wait 0 Id --timeout 0
    [ "$status" -eq 0 ]
    [ "$output" = 42 ]
}

@test "wait on a pool file that does not exist yet" {
    rm "$pool1"
    wait_start guest Status
    "$KVPCTL" set guest Status Ready
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = Ready ]
}

@test "wait on a pool directory that does not exist yet says so and waits for it" {
    wait_start --pool-dir "$tmp/later" guest Status
    [[ $(cat "$WAIT_ERR") == *"$tmp/later does not exist (yet); waiting for it"* ]]
    "$KVPCTL" init "$tmp/later" >/dev/null
    "$KVPCTL" --pool-dir "$tmp/later" set guest Status Ready
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = Ready ]
}

@test "wait --value waits for exactly that value" {
    "$KVPCTL" set guest Status Booting
    wait_start guest Status --value Ready
    "$KVPCTL" set guest Status Ready2
    "$KVPCTL" set guest Other Ready
    sleep 0.3
    wait_running
    "$KVPCTL" set guest Status Ready
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = Ready ]
    [[ $WAIT_STDERR == *'waiting for guest key "Status" to be "Ready" (now "Booting")'* ]]
}

@test "wait --value '' waits for an empty value" {
    "$KVPCTL" set guest Flag x
    wait_start guest Flag --value ''
    "$KVPCTL" set guest Flag ''
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$(od -An -c "$WAIT_OUT" | tr -s ' ')" = " \n" ]
}

@test "wait --changed: the same value rewritten is no change, another value is" {
    "$KVPCTL" set guest Status one
    wait_start guest Status --changed
    "$KVPCTL" set guest Status one
    "$KVPCTL" set guest Other two
    sleep 0.3
    wait_running
    "$KVPCTL" set guest Status two
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = two ]
}

@test "wait --changed counts absent as a value: appearing and removal are changes" {
    wait_start guest New --changed
    "$KVPCTL" set guest New ''
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$(od -An -c "$WAIT_OUT" | tr -s ' ')" = " \n" ]

    wait_start guest New --changed
    "$KVPCTL" delete guest New
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ ! -s "$WAIT_OUT" ]
    [[ $WAIT_STDERR == *'guest: key "New" was removed'* ]]
}

@test "timeouts exit 1 with a message naming what was waited for and what is there" {
    "$KVPCTL" set guest Status Booting
    run --separate-stderr "$KVPCTL" wait guest Missing --timeout 0.3
    [ "$status" -eq 1 ]
    [ -z "$output" ]
    [ "$stderr" = 'kvpctl: timed out after 0.3 s waiting for guest key "Missing" to exist (still absent)' ]
    run --separate-stderr "$KVPCTL" wait guest Status --value Ready --timeout 0.2
    [ "$status" -eq 1 ]
    [ "$stderr" = 'kvpctl: timed out after 0.2 s waiting for guest key "Status" to be "Ready" (it is "Booting")' ]
    run --separate-stderr "$KVPCTL" wait guest Status --changed --timeout 0
    [ "$status" -eq 1 ]
    [ "$stderr" = 'kvpctl: timed out after 0 s waiting for guest key "Status" to change (still "Booting")' ]
}

@test "bad use exits 2 with a reason" {
    run "$KVPCTL" wait guest K --value a --changed
    [ "$status" -eq 2 ]
    [[ $output == *"excludes"* ]]
    for t in -1 abc nan inf 1e10 '' 5s; do
        run "$KVPCTL" wait guest K --timeout "$t"
        [ "$status" -eq 2 ]
        [[ $output == *"bad timeout"* ]]
    done
    run "$KVPCTL" wait nosuchpool K
    [ "$status" -eq 2 ]
    [[ $output == *"unknown pool 'nosuchpool'"* ]]
    run "$KVPCTL" wait guest
    [ "$status" -eq 2 ]
    run "$KVPCTL" wait guest ''
    [ "$status" -eq 2 ]
    [[ $output == *"the key is empty"* ]]
    run "$KVPCTL" wait guest "$(head -c 512 /dev/zero | tr '\0' k)"
    [ "$status" -eq 2 ]
    [[ $output == *"longer than the pool format allows"* ]]
    run "$KVPCTL" wait guest K --value "$(head -c 2048 /dev/zero | tr '\0' v)"
    [ "$status" -eq 2 ]
    : >"$tmp/file"
    run "$KVPCTL" --pool-dir "$tmp/file" wait guest K
    [ "$status" -eq 2 ]
    [[ $output == *"Not a directory"* ]]
}

@test "wait across a pool file replaced by rename" {
    "$KVPCTL" set guest Other x
    wait_start guest Status
    mkdir "$tmp/next"
    "$KVPCTL" --pool-dir "$tmp/next" set guest Status Ready
    mv "$tmp/next/.kvp_pool_1" "$pool1"
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = Ready ]
}

@test "wait across a pool directory removed and made again" {
    wait_start guest Status
    rm -rf "$KVP_POOL_DIR"
    sleep 0.5  # long enough for the wait to find no directory to watch
    mkdir "$KVP_POOL_DIR"
    "$KVPCTL" set guest Status Ready
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = Ready ]
}

@test "wait across a pool directory renamed away and replaced" {
    "$KVPCTL" set guest Status Booting
    # --value, not --changed: between the two renames the key is absent, which is a change.
    wait_start guest Status --value Ready
    "$KVPCTL" init "$tmp/new" >/dev/null
    "$KVPCTL" --pool-dir "$tmp/new" set guest Status Ready
    mv "$KVP_POOL_DIR" "$tmp/old"
    mv "$tmp/new" "$KVP_POOL_DIR"
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = Ready ]
}

@test "wait sees an unlocked truncation and rewrite (cloud-init at boot)" {
    "$KVPCTL" set guest Other x
    wait_start guest Status
    : >"$pool1"
    { wait_pool_record Other x; wait_pool_record Status Ready; } >>"$pool1"
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = Ready ]
}

@test "wait --changed sees a same-size rewrite in place without a lock" {
    "$KVPCTL" set guest Status aaaa
    wait_start guest Status --changed
    wait_pool_record Status bbbb | dd of="$pool1" conv=notrunc status=none
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = bbbb ]
}

# A store through a shared mapping sends no inotify event; the wait's once-a-second stat sees
# it when the store moves the file's mtime or ctime. Disk file systems do on the store's page
# fault; tmpfs (Linux 6.18) moved neither for a page already in memory, so the pool lives
# under BATS_TEST_TMPDIR, and the test is skipped where the store moved nothing.
@test "wait --changed sees a locked store through a shared mapping (no inotify event)" {
    command -v python3 >/dev/null || skip "no python3"
    local dir=$BATS_TEST_TMPDIR/disk_pools
    "$KVPCTL" init "$dir" >/dev/null
    "$KVPCTL" --pool-dir "$dir" set guest Status aaaa
    sleep 0.1  # the store's timestamp must fall in a later tick than the set's
    local before
    before=$(stat -c '%i %s %y %z' "$dir/.kvp_pool_1")
    wait_start --pool-dir "$dir" guest Status --changed
    python3 - "$dir/.kvp_pool_1" Status bbbb "$BATS_TEST_DIRNAME/../common" <<'PY'
import fcntl, mmap, os, sys
path, key, value = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
sys.path.insert(0, sys.argv[4])
from kvp_pool import KEY_FIELD, RECORD, VALUE_FIELD, encode_field, field
fd = os.open(path, os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
fcntl.lockf(fd, fcntl.LOCK_EX)
with mmap.mmap(fd, 0) as m:
    for off in range(0, len(m) - (RECORD - 1), RECORD):
        if field(m[off:off + KEY_FIELD]) == key:
            m[off + KEY_FIELD:off + RECORD] = encode_field(value, VALUE_FIELD)
fcntl.lockf(fd, fcntl.LOCK_UN)
fcntl.flock(fd, fcntl.LOCK_UN)
os.close(fd)
PY
    [ "$("$KVPCTL" --pool-dir "$dir" get guest Status)" = bbbb ]
    if [ "$(stat -c '%i %s %y %z' "$dir/.kvp_pool_1")" = "$before" ]; then
        skip "$(stat -f -c %T "$dir"): a store through a mapping moved no timestamp"
    fi
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = bbbb ]
}

@test "SIGINT and SIGTERM end a wait cleanly: a message, 130 and 143" {
    wait_start guest Status
    kill -INT "$WAIT_PID"
    wait_finish
    [ "$WAIT_STATUS" -eq 130 ]
    [[ $WAIT_STDERR == *"kvpctl: wait ended by Interrupt"* ]]
    [ ! -s "$WAIT_OUT" ]
    wait_start guest Status
    kill -TERM "$WAIT_PID"
    wait_finish
    [ "$WAIT_STATUS" -eq 143 ]
    [[ $WAIT_STDERR == *"kvpctl: wait ended by Terminated"* ]]
}

@test "a 5 s wait uses under 5 CPU ticks" {
    "$KVPCTL" set guest Other x
    wait_start guest Status
    local before after
    before=$(wait_cpu_ticks)
    sleep 5
    wait_running
    after=$(wait_cpu_ticks)
    echo "CPU ticks while waiting 5 s: $((after - before)) (clock ticks of 1/$(getconf CLK_TCK) s)"
    [ $((after - before)) -lt 5 ]
    "$KVPCTL" set guest Status Ready
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
}

@test "wait --help names its options" {
    run "$KVPCTL" wait --help
    [ "$status" -eq 0 ]
    [[ $output == *"--value"* && $output == *"--changed"* && $output == *"--timeout"* ]]
}

@test "a value that cannot be written to stdout is an error, not exit 0" {
    # `kvpctl wait ... > /run/provision.json || exit 1` on a full /run must not go on with
    # an empty file.
    "$KVPCTL" set guest Status Ready
    run --separate-stderr bash -c '"$KVPCTL" wait guest Status >/dev/full'
    [ "$status" -eq 2 ]
    [[ $stderr == *"kvpctl: cannot write to standard output"* ]]
    run --separate-stderr bash -c '"$KVPCTL" get guest Status >/dev/full'
    [ "$status" -eq 2 ]
    [[ $stderr == *"kvpctl: cannot write to standard output"* ]]
}

@test "a wait that cannot watch the pool directory says so once, not at every look" {
    # A user who may search the pool directory but not read it (mode 0711): inotify refuses
    # the directory (EACCES) and the wait falls back to one stat a second. The warning is
    # worth one line, not one per look for as long as the wait lasts.
    [ "$(id -u)" -eq 0 ] || skip "needs root to run kvpctl as nobody"
    command -v setpriv >/dev/null || skip "needs setpriv"
    chmod 0711 "$tmp" "$KVP_POOL_DIR"
    run --separate-stderr setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$KVPCTL" wait guest Never --timeout 3.5
    echo "$stderr"
    [ "$status" -eq 1 ]
    [[ $stderr == *'timed out after 3.5 s waiting for guest key "Never" to exist'* ]]
    [ "$(grep -c "cannot watch $KVP_POOL_DIR " <<<"$stderr")" -eq 1 ]
    # ... and it still sees the key come (by the stat fallback).
    wait_start_as_nobody() {
        setpriv --reuid=nobody --regid=nogroup --clear-groups "$KVPCTL" wait guest Status \
            --timeout 60 >"$tmp/out" 2>"$tmp/err"
    }
    wait_start_as_nobody &
    local pid=$! i
    sleep 0.5
    "$KVPCTL" set guest Status Ready
    for ((i = 0; i < 6000; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    wait "$pid"
    [ "$(cat "$tmp/out")" = Ready ]
}
