#!/usr/bin/env bash
# The inside of container_test.sh: runs as PID 1 of a new PID namespace, in a new mount
# namespace whose mounts are slaves of the host's. Environment: HOST, CTR, WORK,
# HOSTNAME_VALUE. Usage: container_inside.sh LIB_SH
set -uo pipefail
source "$1"

nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
denied='Permission denied'
erofs='Read-only file system'
enotconn='Transport endpoint is not connected'

expect_eq "PID namespace: this shell is PID 1" 1 "$$"
kvpfs_seen=$(for p in /proc/[0-9]*; do
    [[ $(readlink "$p/exe" 2>/dev/null) == */kvpfs ]] && echo "${p#/proc/}"; done)
expect_eq "PID namespace: no kvpfs process visible" "" "$kvpfs_seen"

# What docker -v does: bind, then remount read-only; rbind the parent with rslave.
mount --bind "$HOST/kvp" "$CTR/bind"
mount --bind "$HOST/kvp" "$CTR/robind"
mount -o remount,bind,ro "$CTR/robind"
mount --rbind "$HOST" "$CTR/share"
mount --make-rslave "$CTR/share"
mount --rbind "$HOST" "$CTR/share-ro"
mount --make-rslave "$CTR/share-ro"
mount -o remount,bind,ro "$CTR/share-ro"

# ro_not_inherited WHEN: a read-only bind of the parent does not make the kvpfs mounts below
# it read-only (what the docs warn about): the container's root still writes guest/.
ro_not_inherited() {
    check "$1: share-ro itself is read-only" \
        bash -c "findmnt -n -o OPTIONS --mountpoint '$CTR/share-ro' | grep -q '^ro'"
    check "$1: share-ro/kvp is not: container root writes guest/ there" \
        bash -c "echo x > '$CTR/share-ro/kvp/guest/NotReadOnly' && rm '$CTR/share-ro/kvp/guest/NotReadOnly'"
}

# reads VIEW: anyone reads every pool.
reads() {
    local v=$1
    local n=${v#"$CTR"/}
    expect_eq "$n: nobody reads parameter/HostName" "$HOSTNAME_VALUE" \
        "$(nobody cat "$v/parameter/HostName" 2>&1)"
    check "$n: nobody lists parameter/" bash -c "[[ \$(ls '$v/parameter' | wc -l) -gt 5 ]]"
    expect_eq "$n: nobody reads guest/Existing" hello "$(nobody cat "$v/guest/Existing" 2>&1)"
}
# user_refused VIEW PATTERN: nobody changes nothing.
user_refused() {
    local v=$1 p=$2
    local n=${v#"$CTR"/}
    expect_refused "$n: nobody creates guest/New" "$p" nobody bash -c "echo x > '$v/guest/New'"
    expect_refused "$n: nobody overwrites guest/Existing" "$p" \
        nobody bash -c "echo x > '$v/guest/Existing'"
    expect_refused "$n: nobody removes guest/Existing" "$p" nobody rm -f "$v/guest/Existing"
    expect_refused "$n: nobody writes parameter/HostName" "$p|$denied" \
        nobody bash -c "echo x > '$v/parameter/HostName'"
}
# root_refused VIEW: a read-only view refuses even the container's root, with EROFS.
root_refused() {
    local v=$1
    local n=${v#"$CTR"/}
    expect_refused "$n: root creates guest/New" "$erofs" bash -c "echo x > '$v/guest/New'"
    expect_refused "$n: root overwrites guest/Existing" "$erofs" \
        bash -c "echo x > '$v/guest/Existing'"
    expect_refused "$n: root removes guest/Existing" "$erofs" rm "$v/guest/Existing"
    expect_refused "$n: root touches guest/New" "$erofs" touch "$v/guest/New"
    expect_refused "$n: root renames guest/Existing" "$erofs" mv "$v/guest/Existing" "$v/guest/B"
    expect_refused "$n: root truncates guest/Existing" "$erofs" truncate -s 0 "$v/guest/Existing"
}
rw_views=("$CTR/bind" "$CTR/share/kvp")
ro_views=("$CTR/robind" "$CTR/share/kvp-ro")

say "--- first round"
for v in "${rw_views[@]}"; do reads "$v"; user_refused "$v" "$denied"; done
for v in "${ro_views[@]}"; do reads "$v"; user_refused "$v" "$erofs|$denied"; root_refused "$v"; done
ro_not_inherited "first round"
dev_before=$(stat -c %d "$CTR/share/kvp")
touch "$WORK/phase1.done"

if ! wait_until 60 test -e "$WORK/restarted"; then
    fail "the host did not restart kvpfs in 60 s"
    finish
fi

say "--- after the host restarted kvpfs"
check "share/kvp: the new mount propagated (device $dev_before before)" \
    bash -c "[[ \$(stat -c %d '$CTR/share/kvp') != $dev_before ]]"
reads "$CTR/share/kvp"
user_refused "$CTR/share/kvp" "$denied"
reads "$CTR/share/kvp-ro"
user_refused "$CTR/share/kvp-ro" "$erofs|$denied"
root_refused "$CTR/share/kvp-ro"
ro_not_inherited "after the restart"
# What the docs warn about: a bind of the mountpoint itself keeps the dead mount.
expect_refused "bind: left on the dead mount" "$enotconn|No such file" cat "$CTR/bind/parameter/HostName"
expect_refused "robind: left on the dead mount" "$enotconn|No such file" cat "$CTR/robind/parameter/HostName"
finish
