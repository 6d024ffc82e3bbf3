#!/usr/bin/env bats
# The everyday experience of a kvpfs mount with ordinary shell tools (docs/behaviour.md §4-§7).

load kvpfs_helpers

setup() {
    kvpfs_setup
    set_pool 3 HostName host-01 VirtualMachineName vm-7
    set_pool 1 existing "old value"
    start_kvpfs
    cd "$MNT"
}

teardown() {
    cd /
    kvpfs_teardown
}

@test "ls shows the four pools and their keys" {
    run ls "$MNT"
    [ "$status" -eq 0 ]
    [ "$output" = "$(printf 'auto\nexternal\nguest\nparameter')" ]
    run ls parameter
    [ "$output" = "$(printf 'HostName\nVirtualMachineName')" ]
    run ls -l parameter/HostName
    [[ "$output" == "-r--r--r-- 1 root root 8 "* ]]
}

@test "cat prints the value and one newline" {
    run cat parameter/HostName
    [ "$status" -eq 0 ]
    [ "$output" = "host-01" ]
    [ "$(wc -c <parameter/HostName)" -eq 8 ]
}

@test "echo > creates and replaces a key" {
    echo hello >guest/greeting
    [ "$(cat guest/greeting)" = hello ]
    echo bye >guest/greeting
    [ "$(cat guest/greeting)" = bye ]
    [ "$(ls guest)" = "$(printf 'existing\ngreeting')" ]
}

@test "echo >> appends a line" {
    echo "line 2" >>guest/existing
    [ "$(cat guest/existing)" = "$(printf 'old value\nline 2')" ]
}

@test "rm deletes a key" {
    rm guest/existing
    [ -z "$(ls guest)" ]
    [ ! -s "$POOL/.kvp_pool_1" ]
}

@test "mv renames a key; to another pool it fails" {
    mv guest/existing guest/renamed
    [ "$(ls guest)" = renamed ]
    [ "$(cat guest/renamed)" = "old value" ]
    run mv guest/renamed parameter/
    [ "$status" -ne 0 ]
    [[ "$output" == *"Permission denied"* ]]
    [ "$(cat guest/renamed)" = "old value" ]
}

@test "touch creates an empty key and leaves an existing one alone" {
    cp "$POOL/.kvp_pool_1" "$BATS_TEST_TMPDIR/before"
    touch guest/existing
    cmp "$POOL/.kvp_pool_1" "$BATS_TEST_TMPDIR/before"
    touch guest/flag
    [ -f guest/flag ]
    [ "$(wc -c <guest/flag)" -eq 1 ]
    [ "$(stat -c %s "$POOL/.kvp_pool_1")" -eq 5120 ]
}

@test "cp of a file copies the value exactly" {
    printf 'two\nlines\n' >"$BATS_TEST_TMPDIR/src"
    cp "$BATS_TEST_TMPDIR/src" guest/copied
    cp guest/copied guest/again
    cmp guest/again "$BATS_TEST_TMPDIR/src"
}

@test "a write to a read-only pool says Permission denied" {
    cp "$POOL/.kvp_pool_3" "$BATS_TEST_TMPDIR/before"
    run bash -c 'echo x > parameter/HostName'
    [ "$status" -ne 0 ]
    [[ "$output" == *"parameter/HostName: Permission denied"* ]]
    run rm -f parameter/HostName
    [[ "$output" == *"Permission denied"* ]]
    run mkdir guest/dir
    [[ "$output" == *"Operation not permitted"* ]]
    cmp "$POOL/.kvp_pool_3" "$BATS_TEST_TMPDIR/before"
    grep -q "parameter/HostName" "$BATS_TEST_TMPDIR/kvpfs.log"
}

@test "an oversized value says File too large and stores nothing" {
    cp "$POOL/.kvp_pool_1" "$BATS_TEST_TMPDIR/before"
    run bash -c 'head -c 1500 /dev/zero | tr "\0" a > guest/existing'
    [ "$status" -ne 0 ]
    [[ "$output" == *"File too large"* ]]
    cmp "$POOL/.kvp_pool_1" "$BATS_TEST_TMPDIR/before"
    [ "$(cat guest/existing)" = "old value" ]
}

@test "bad names say Invalid argument or File name too long" {
    run bash -c 'echo x > guest/100%'
    [[ "$output" == *"Invalid argument"* ]]
    run bash -c "echo x > guest/$(printf 'k%.0s' {1..300})"
    [[ "$output" == *"File name too long"* ]]
    [ "$(ls guest)" = existing ]
}

@test "-o ro refuses every change with Read-only file system" {
    cd /
    stop_kvpfs
    start_kvpfs -o ro
    run bash -c "echo x > '$MNT/guest/existing'"
    [[ "$output" == *"Read-only file system"* ]]
    run touch "$MNT/guest/new"
    [[ "$output" == *"Read-only file system"* ]]
    [ "$(cat "$MNT/guest/existing")" = "old value" ]
}

@test "-o raw shows exactly the stored bytes" {
    cd /
    stop_kvpfs
    start_kvpfs -o raw
    [ "$(wc -c <"$MNT/parameter/HostName")" -eq 7 ]
    printf 'no newline' >"$MNT/guest/r"
    [ "$(cat "$MNT/guest/r")" = "no newline" ]
}
