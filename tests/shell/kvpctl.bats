#!/usr/bin/env bats
# kvpctl as a program: exit codes, output into pipes, watch and its signals, damaged pools
# made with shell tools. Needs KVPCTL (the binary); no mount.

load kvpctl_helpers

setup() {
    : "${KVPCTL:?set KVPCTL to the kvpctl binary}"
    tmp=$(mktemp -d /dev/shm/kvpctl_bats.XXXXXX)
    export KVP_POOL_DIR=$tmp/pools
    "$KVPCTL" init "$KVP_POOL_DIR" >/dev/null
    watch_pid=
    reader_pid=
}

teardown() {
    [[ -n $watch_pid ]] && kill -KILL "$watch_pid" 2>/dev/null
    [[ -n $reader_pid ]] && kill -KILL "$reader_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}

# Starts `kvpctl watch ARGS` writing into a FIFO read by cat (so stdout is a pipe), and
# waits for its readiness line.
start_watch() {
    mkfifo "$tmp/pipe"
    cat "$tmp/pipe" >"$tmp/out" &
    reader_pid=$!
    "$KVPCTL" watch "$@" >"$tmp/pipe" 2>"$tmp/err" &
    watch_pid=$!
    kvpctl_wait_text "$tmp/err" "kvpctl: watching"
}

@test "--version and --help exit 0; every command has --help" {
    run "$KVPCTL" --version
    [ "$status" -eq 0 ]
    [[ $output == "kvpctl "[0-9]* ]]
    run "$KVPCTL" --help
    [ "$status" -eq 0 ]
    [[ $output == *"Exit status"* ]]
    for cmd in list get set delete dump check compact init watch; do
        run "$KVPCTL" "$cmd" --help
        [ "$status" -eq 0 ]
        [[ $output == *"$cmd"* ]]
    done
}

@test "bad use exits 2 with a reason on stderr" {
    run "$KVPCTL"
    [ "$status" -eq 2 ]
    run "$KVPCTL" list nosuchpool
    [ "$status" -eq 2 ]
    [[ $output == *"unknown pool 'nosuchpool'"* ]]
    run "$KVPCTL" get guest
    [ "$status" -eq 2 ]
    run "$KVPCTL" --pool-dir "$tmp/missing" list guest
    [ "$status" -eq 2 ]
    [[ $output == *"$tmp/missing"* ]]
}

@test "set, get, list, delete and their exit codes" {
    "$KVPCTL" set guest Status Ready
    "$KVPCTL" set 1 'Key with spaces' 'v a l'
    run "$KVPCTL" get guest Status
    [ "$status" -eq 0 ]
    [ "$output" = Ready ]
    run "$KVPCTL" list guest
    [ "$output" = $'Status\nKey with spaces' ]
    [ "$(stat -c %s "$KVP_POOL_DIR/.kvp_pool_1")" -eq 5120 ]
    "$KVPCTL" delete guest Status
    run "$KVPCTL" get guest Status
    [ "$status" -eq 1 ]
    [[ $output == *'no key "Status"'* ]]
    run "$KVPCTL" delete guest Status
    [ "$status" -eq 1 ]
}

@test "get prints the value and one newline" {
    "$KVPCTL" set guest K 'two words'
    [ "$("$KVPCTL" get guest K | od -An -c | tr -s ' ')" = " t w o w o r d s \n" ]
}

@test "dump shows a hand-made damaged pool as it is, in file order" {
    f=$KVP_POOL_DIR/.kvp_pool_0
    kvpctl_record "$f" A 1
    kvpctl_record "$f" '' orphan
    kvpctl_record "$f" A old
    kvpctl_record "$f" T tail
    truncate -s $((3 * KVP_RECORD + 600)) "$f"
    run "$KVPCTL" dump external
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "# external: $f, 3 records, 8280 bytes" ]
    [ "${lines[1]}" = 'external #0 "A" = "1"' ]
    [ "${lines[2]}" = 'external #1 "" = "orphan"  (empty key: not listed)' ]
    [ "${lines[3]}" = 'external #2 "A" = "old"  (duplicate of #0)' ]
    [ "${lines[4]}" = 'external #3 "T" = "tail"  (partial record: 600 of 2560 bytes)' ]
}

@test "dump --json is a JSON array with pool, index, key and value" {
    "$KVPCTL" set guest Status Ready
    "$KVPCTL" set parameter HostName host1
    run "$KVPCTL" dump --json
    [ "$status" -eq 0 ]
    # (tests/kvpctl parses it with nlohmann-json; here: its shape, without python or jq)
    [ "${lines[0]}" = "[" ]
    [ "${lines[${#lines[@]} - 1]}" = "]" ]
    [[ $output == *$'"pool": "guest",\n    "index": 0,\n    "offset": 0,\n    "key": "Status",\n    "value": "Ready",'* ]]
    [[ $output == *$'"pool": "parameter",\n    "index": 0,\n    "offset": 0,\n    "key": "HostName",\n    "value": "host1",'* ]]
}

@test "check names problems with record indexes and exits 1; compact repairs and says what" {
    f=$KVP_POOL_DIR/.kvp_pool_1
    kvpctl_record "$f" A 1
    kvpctl_record "$f" B 2
    kvpctl_record "$f" A old
    head -c 100 /dev/urandom >>"$f"
    run "$KVPCTL" check guest
    [ "$status" -eq 1 ]
    [[ $output == *'guest #2: duplicate of key "A" (first record #0'* ]]
    [[ $output == *"guest #3: partial record at offset 7680: 100 of 2560 bytes"* ]]
    run "$KVPCTL" compact guest
    [ "$status" -eq 0 ]
    [[ $output == *'guest: dropped #2 "A" = "old" (duplicate of #0)'* ]]
    [[ $output == *"guest: cut a partial record of 100 bytes at offset 7680"* ]]
    [[ $output == *"guest: compacted: 3 -> 2 records, 7780 -> 5120 bytes"* ]]
    run "$KVPCTL" check guest
    [ "$status" -eq 0 ]
    [ "$output" = "guest: ok, 2 records" ]
    [ "$("$KVPCTL" get guest A)" = 1 ]
}

@test "check of all pools exits 0 on a fresh sample" {
    "$KVPCTL" init "$KVP_POOL_DIR" --sample >/dev/null
    run "$KVPCTL" check
    [ "$status" -eq 0 ]
    [[ $output == *"parameter: ok, 16 records"* ]]
    [[ $output == *"auto: ok, 0 records"* ]]
    [ "$("$KVPCTL" get auto ProcessorArchitecture --intrinsic)" = "$(uname -m)" ]
    [ "$("$KVPCTL" get auto OSBuildNumber --intrinsic)" = "$(uname -r)" ]
    [ "$("$KVPCTL" list auto --intrinsic | wc -l)" -eq 10 ]
    [ "$(stat -c %a "$KVP_POOL_DIR/.kvp_pool_3")" = 644 ]
}

@test "watch prints one line per added, changed and removed key into a pipe, at once" {
    "$KVPCTL" set guest Old x
    start_watch guest
    "$KVPCTL" set guest Status Ready
    kvpctl_wait_line "$tmp/out" "guest added Status=Ready"
    "$KVPCTL" set guest Status Done
    kvpctl_wait_line "$tmp/out" "guest changed Status=Done"
    "$KVPCTL" delete guest Old
    kvpctl_wait_line "$tmp/out" "guest removed Old"
    "$KVPCTL" set guest Status Done  # the same value: no line
    "$KVPCTL" set guest Last 1
    kvpctl_wait_line "$tmp/out" "guest added Last=1"
    [ "$(cat "$tmp/out")" = $'guest added Status=Ready\nguest changed Status=Done\nguest removed Old\nguest added Last=1' ]
    kill -INT "$watch_pid"
    kvpctl_wait_exit "$watch_pid"
    [ "$kvpctl_status" -eq 0 ]
    watch_pid=
}

@test "watch sees a same-size change within one timestamp tick" {
    "$KVPCTL" set guest K aaaa
    start_watch
    "$KVPCTL" set guest K bbbb
    "$KVPCTL" set guest K cccc
    kvpctl_wait_line "$tmp/out" "guest changed K=cccc"
}

@test "watch of all pools names the pool; a change by another tool shows too" {
    start_watch
    "$KVPCTL" set parameter HostName h1
    kvpctl_wait_line "$tmp/out" "parameter added HostName=h1"
    kvpctl_record "$KVP_POOL_DIR/.kvp_pool_0" Pushed yes  # no lock, plain append
    kvpctl_wait_line "$tmp/out" "external added Pushed=yes"
    "$KVPCTL" set 4 Internal 'a
b'
    kvpctl_wait_line "$tmp/out" 'internal added Internal=a\nb'
}

@test "watch ends cleanly on SIGTERM, exit 0" {
    start_watch guest
    kill -TERM "$watch_pid"
    kvpctl_wait_exit "$watch_pid"
    [ "$kvpctl_status" -eq 0 ]
    watch_pid=
    [[ $(cat "$tmp/err") == *"watch ended by"* ]]
}

@test "lock held by another process: fails after --lock-timeout with exit 2" {
    "$KVPCTL" set guest K v
    # cloud-init's kind of lock, held by a process that is only `sleep` (killed below).
    bash -c 'exec 9<"$1"; flock -x 9; echo locked; exec sleep 30' _ "$KVP_POOL_DIR/.kvp_pool_1" \
        >"$tmp/holder" 2>&1 &
    holder=$!
    kvpctl_wait_line "$tmp/holder" locked
    run "$KVPCTL" --lock-timeout 1 get guest K
    kill "$holder"
    wait "$holder" || true
    [ "$status" -eq 2 ]
    [[ $output == *"Resource temporarily unavailable"* ]]
}

@test "--lock-timeout takes fractions of a second" {
    "$KVPCTL" set guest K v
    bash -c 'exec 9<"$1"; flock -x 9; echo locked; exec sleep 30' _ "$KVP_POOL_DIR/.kvp_pool_1" \
        >"$tmp/holder" 2>&1 &
    holder=$!
    kvpctl_wait_line "$tmp/holder" locked
    local start=$SECONDS
    run "$KVPCTL" --lock-timeout 0.5 get guest K
    kill "$holder"
    wait "$holder" || true
    [ "$status" -eq 2 ]
    [[ $output == *"Resource temporarily unavailable"* ]]
    [ $((SECONDS - start)) -le 5 ]  # the holder sleeps 30 s: a wait past the 0.5 s would show
    run "$KVPCTL" --lock-timeout 0.25 get guest K
    [ "$status" -eq 0 ]
    run "$KVPCTL" --lock-timeout -1 get guest K
    [ "$status" -eq 2 ]
}

@test "set KEY - reads stdin: exactly one trailing newline dropped, --raw keeps it" {
    printf 'line 1\nline 2\n\n' | "$KVPCTL" set guest K -
    [ "$("$KVPCTL" get guest K | od -c | head -1)" = "$(printf 'line 1\nline 2\n\n' | od -c | head -1)" ]
    "$KVPCTL" dump --json guest | grep -qF '"value": "line 1\nline 2\n"'
    printf 'v\n' | "$KVPCTL" set guest R - --raw
    "$KVPCTL" dump --json guest | grep -qF '"value": "v\n"'
    printf 'no newline' | "$KVPCTL" set guest N -
    [ "$("$KVPCTL" get guest N)" = "no newline" ]
}

@test "set --file F takes the value from a file, one trailing newline dropped" {
    printf 'a\n\n' >"$tmp/value"
    "$KVPCTL" set guest F --file "$tmp/value"
    "$KVPCTL" dump --json guest | grep -qF '"value": "a\n"'
    "$KVPCTL" set guest G --file "$tmp/value" --raw
    "$KVPCTL" dump --json guest | grep -qF '"value": "a\n\n"'
    run "$KVPCTL" set guest H --file "$tmp/missing"
    [ "$status" -eq 2 ]
    [[ $output == *"No such file or directory"* ]]
    run "$KVPCTL" set guest H v --file "$tmp/value"
    [ "$status" -eq 2 ]
    run "$KVPCTL" set guest H
    [ "$status" -eq 2 ]
    head -c 5000 /dev/zero | tr '\0' v >"$tmp/big"
    run "$KVPCTL" set guest H --file "$tmp/big"
    [ "$status" -eq 2 ]
    [ -z "$("$KVPCTL" list guest | grep -x H)" ]
}

@test "set's default limits are the host's for every pool; --limits pool relaxes them" {
    local v2000
    v2000=$(head -c 2000 /dev/zero | tr '\0' a)
    for pool in external guest auto parameter internal; do
        run "$KVPCTL" set "$pool" K "$v2000"
        [ "$status" -eq 2 ]
        [[ $output == *"value"* ]]
        "$KVPCTL" set "$pool" K "$v2000" --limits pool
    done
}
