#!/usr/bin/env bats
# What the host pushes (pools 0 and 3) through the real hv_kvp_daemon shows in external/
# and parameter/: at the first read after the host's request returned (default mode), or
# within the staleness window (-o cache, -o cache=all).

load host_helpers

@test "host add, modify and remove in external and parameter show through the mount" {
    host_sandbox '
        for pool in external parameter; do
            kvp-host add $pool Greeting "hello from the host"
            shown holds $pool/Greeting "hello from the host"
            kvp-host modify $pool Greeting changed
            shown holds $pool/Greeting changed
            kvp-host add $pool Other "second item"
            shown holds $pool/Other "second item"
            kvp-host remove $pool Greeting
            shown absent $pool/Greeting
            shown holds $pool/Other "second item"
        done
        # Pool numbers work as names do.
        kvp-host add 0 ByNumber zero
        kvp-host add 3 ByNumber three
        shown holds external/ByNumber zero
        shown holds parameter/ByNumber three
        # One record per key in the pool files, whatever the host did.
        [[ $(kvpctl list external | sort | tr "\n" " ") == "ByNumber Other " ]]
        [[ $(kvpctl dump --json parameter | grep -o "\"key\"" | wc -l) == 2 ]]
        # Removing what is not there: the daemon answers HV_S_CONT, kvp-host exits 1.
        rc=0; kvp-host remove external Nope 2>err || rc=$?
        [[ $rc == 1 ]] && grep -q "no such item (HV_S_CONT)" err
        # The host reads pool 0 back by enumeration too.
        [[ $(kvp-host get external Other) == "second item" ]]
    '
}

@test "host text reaches the guest as the driver converts it (UTF-8, cut at 511/2047 bytes)" {
    host_sandbox '
        kvp-host add external "Grüße €" "Wert ✓ 𝄞"
        shown holds "external/Grüße €" "Wert ✓ 𝄞"
        # 1,023 UTF-16 units of € (3 bytes each): the driver keeps 2,047 bytes, 682 of them.
        kvp-host add external Long "$(repeat € 1023)"
        shown holds external/Long "$(repeat € 682)"
        # A character that no longer fits is skipped, and a shorter one after it still fits.
        kvp-host add external Skip "$(repeat € 682)€a"
        shown holds external/Skip "$(repeat € 682)a"
        # A key of 255 € becomes 170 of them (510 bytes; the 171st would pass 511).
        kvp-host add external "$(repeat € 255)" key-cut
        shown holds "external/$(repeat € 170)" key-cut
        # ASCII at the host message limits passes whole.
        kvp-host add parameter "$(repeat k 255)" "$(repeat v 1023)"
        shown holds "parameter/$(repeat k 255)" "$(repeat v 1023)"
        # The value the pool holds is what the mount shows (no bytes after the NUL shown).
        [[ $(kvpctl get external Long) == "$(repeat € 682)" ]]
    '
}

@test "kvp-sandbox --host: kvp-host and kvpctl on PATH, and nothing left behind afterwards" {
    where=$BATS_TEST_TMPDIR/where
    host_sandbox '
        [[ $(command -v kvp-host) == */bin/kvp-host && $(command -v kvpctl) == */bin/kvpctl ]]
        [[ -S $KVP_HOST_SOCKET && -f $KVP_HOST_LOG ]]
        printf "%s\n" "$(dirname "$KVP_MOUNT")" "$(daemon_pid)" "$KVP_HOST_PID" > '"$where"'
    '
    { read -r root; read -r daemon; read -r server; } < "$where"
    [[ ! -e $root ]]
    ! grep -qF "$root" /proc/self/mounts
    ! kill -0 "$daemon" 2>/dev/null
    ! kill -0 "$server" 2>/dev/null
}

@test "kvpctl wait returns the value the host pushes, and --changed sees the host's modify" {
    host_sandbox '
        armed() { for ((i = 0; i < 6000; i++)); do grep -q "kvpctl: waiting for" "$1" && return; sleep 0.01; done; return 1; }
        kvp-host add parameter Setting before
        shown holds parameter/Setting before
        kvpctl wait external Pushed --timeout 120 --verbose >out 2>err &
        waiter=$!
        kvpctl wait parameter Setting --changed --timeout 120 --verbose >changed 2>cerr &
        changer=$!
        # Both waits are armed before the host acts: what ends them is the push.
        armed err
        armed cerr
        kvp-host add external Pushed "from the host"
        wait $waiter
        [[ $(cat out) == "from the host" ]]
        kvp-host modify parameter Setting after
        wait $changer
        [[ $(cat changed) == after ]]
    '
}
