#!/usr/bin/env bats
# What the host receives from the guest: its enumeration of pool 1 after writes through
# the mount, and of pool 2 (auto/), compared byte for byte with the guest's side.

load host_helpers

@test "guest writes through the mount equal the host's enumeration byte for byte" {
    host_sandbox '
        g=$KVP_MOUNT/guest
        echo ready > $g/Status
        printf "no newline" > $g/Printf
        echo one > $g/Lines
        echo two >> $g/Lines
        echo gone > $g/Gone
        rm $g/Gone
        echo moved > $g/Old
        mv $g/Old $g/New
        echo "Grüße ✓ 𝄞" > "$g/Ünïcödé 𝄞"
        # At the host limits (limits=host): 1,022 units of é (2,044 bytes), a key of 254
        # units, a value ending in a surrogate pair at exactly 1,022 units.
        printf "%s" "$(repeat é 1022)" > $g/AtLimit
        echo v > "$g/$(repeat k 254)"
        printf "%s" "$(repeat a 1020)𝄞" > $g/PairAtLimit
        # Past them: refused, so nothing the host would receive cut is ever stored.
        ! printf "%s" "$(repeat a 1023)" 2>/dev/null > $g/PastLimit
        ! printf "%s" "$(repeat a 1021)𝄞" 2>/dev/null > $g/PastPair
        ! (echo v > "$g/$(repeat k 255)") 2>/dev/null
        python3 - "$PWD/expected.json" "${KVPFS_TEST_MOUNT_OPTIONS:-}" <<PY
import json, sys
e = {"Status": "ready", "Printf": "no newline", "Lines": "one\ntwo", "New": "moved",
     "Ünïcödé 𝄞": "Grüße ✓ 𝄞", "AtLimit": "é" * 1022, "k" * 254: "v",
     "PairAtLimit": "a" * 1020 + "𝄞"}
json.dump(e, open(sys.argv[1], "w"))
PY
        kvp-host --json list guest > host.json
        "$HOST_VIEW" pool "$KVP_POOL_DIR/.kvp_pool_1" host.json expected.json
        # The guest reads back what the host received.
        [[ $(kvp-host get guest Lines) == "$(cat $g/Lines)" ]]
    '
}

@test "auto/ equals the host's enumeration of pool 2, with .kvp_pool_2 empty" {
    host_sandbox '
        [[ ! -s $KVP_POOL_DIR/.kvp_pool_2 ]]
        kvp-host --json list auto > auto.json
        shown "$HOST_VIEW" auto "$KVP_MOUNT" auto.json
        [[ $(kvp-host get auto IntegrationServicesVersion) == 3.1 ]]
        [[ $(kvp-host list auto | wc -l) == 10 ]]
    '
}

@test "auto/ equals the host's enumeration in a network namespace with several addresses" {
    command -v ip >/dev/null || skip "no ip (iproute2)"
    unshare --net true 2>/dev/null || skip "cannot make a network namespace here"
    host_sandbox '
        v4=$(kvp-host get auto NetworkAddressIPv4)
        v6=$(kvp-host get auto NetworkAddressIPv6)
        say "IPv4: $v4"
        say "IPv6: $v6"
        # Every address of the two interfaces, in getifaddrs order (both sides use it).
        [[ $(tr ";" "\n" <<<"$v4" | sort | tr "\n" " ") == "192.0.2.10 198.51.100.7 203.0.113.5 " ]]
        [[ $(tr ";" "\n" <<<"$v6" | grep -c "^2001:db8") == 3 ]]
        [[ $(tr ";" "\n" <<<"$v6" | grep -c "^fe80::") == 2 ]]
        kvp-host --json list auto > auto.json
        shown "$HOST_VIEW" auto "$KVP_MOUNT" auto.json
    ' unshare --net bash -c '
        set -e
        ip link set lo up
        ip link add kvp0 type veth peer name kvp1
        ip link set kvp0 up
        ip link set kvp1 up
        ip addr add 192.0.2.10/24 dev kvp0
        ip addr add 198.51.100.7/24 dev kvp0
        ip addr add 203.0.113.5/24 dev kvp1
        ip -6 addr add 2001:db8::10/64 dev kvp0 nodad
        ip -6 addr add 2001:db8::11/64 dev kvp0 nodad
        ip -6 addr add 2001:db8:1::5/64 dev kvp1 nodad
        exec "$@"' netns
}

@test "8 shell writers in guest/ while the host changes pool 0 and reads pool 1: no key lost" {
    host_sandbox '
        g=$KVP_MOUNT/guest
        writer() {
            local w=$1 i
            for ((i = 0; i < 40; i++)); do echo "value $w.$i" > "$g/w$w.$i"; done
        }
        host() {
            local i
            for ((i = 0; i < 30; i++)); do
                kvp-host add external "H$i" "v$i"
                ((i % 2 == 0)) || kvp-host remove external "H$((i - 1))"
                ((i % 3 != 0)) || kvp-host list guest > /dev/null
            done
        }
        pids=()
        for w in 1 2 3 4 5 6 7 8; do writer $w & pids+=($!); done
        host & hostpid=$!
        for p in "${pids[@]}"; do wait $p; done
        wait $hostpid
        python3 - "$PWD/expected.json" <<PY
import json, sys
json.dump({"w%d.%d" % (w, i): "value %d.%d" % (w, i) for w in range(1, 9) for i in range(40)},
          open(sys.argv[1], "w"))
PY
        # Every one of the 320 keys, once, with its value: hv_kvp_daemon rewrote only pool 0
        # (the host changed nothing else), so nothing can fall into its reread/rewrite gap.
        kvp-host --json list guest > host.json
        "$HOST_VIEW" pool "$KVP_POOL_DIR/.kvp_pool_1" host.json expected.json
        [[ $(kvpctl list external | sort -V | tr "\n" " ") == "H1 H3 H5 H7 H9 H11 H13 H15 H17 H19 H21 H23 H25 H27 H29 " ]]
    '
}
