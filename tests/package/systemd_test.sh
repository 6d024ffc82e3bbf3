#!/usr/bin/env bash
# The package under a real systemd as PID 1: a Debian rootfs made by debootstrap (cached),
# booted with `chroot ROOT /lib/systemd/systemd --system` in new PID, mount, UTS, IPC and
# cgroup namespaces, with this build's .deb installed inside by dpkg -i. Checks, each against
# the pool files of the seeded /var/lib/hyperv: kvpfs.service enable --now / stop / start,
# kill -9 and Restart=on-failure, restart under an open file, kvpfs-share@.service, boots
# with the service enabled, with the fstab line, with both, then dpkg -r and dpkg --purge.
# Usage: systemd_test.sh BUILD_DIR SOURCE_DIR   (root)
# The rootfs, its cache and the boots: systemd_lib.sh.
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/package/lib.sh"
command -v dpkg-deb >/dev/null || skip "no dpkg-deb"
source "$src/tests/package/systemd_lib.sh"

# --- The package -----------------------------------------------------------------------------
if ! (cd "$build" && cpack -G DEB -B "$work/cpack") >"$work/cpack.log" 2>&1; then
    cat "$work/cpack.log"
    fail "cpack -G DEB"
    finish
fi
deb=$(echo "$work"/cpack/kvpfs_*.deb)
check "cpack made $(basename "$deb")" test -f "$deb"

prepare_root
cp "$deb" "$root/root/kvpfs.deb" # (/tmp is emptied at boot)

# --- Boot 1: install, the service's life ----------------------------------------------------
boot "boot 1"
say "systemd in the rootfs: $(inside systemctl --version | head -n1)"
expect_eq "boot 1: no failed unit" "" "$(failed_units)"

if inside dpkg -i /root/kvpfs.deb >"$work/dpkg.log" 2>&1; then
    ok "dpkg -i $(basename "$deb") under systemd"
else
    cat "$work/dpkg.log"
    fail "dpkg -i"
    finish
fi
expect_eq "postinst reloaded systemd: kvpfs.service loaded" loaded \
    "$(inside systemctl show -p LoadState --value kvpfs.service)"
expect_eq "kvpfs.service not enabled by the package" disabled "$(inside systemctl is-enabled kvpfs.service)"
check "kvpfs-share@.service installed" inside test -f /usr/lib/systemd/system/kvpfs-share@.service

seed_pools

check "systemctl enable --now kvpfs" inside systemctl enable --now kvpfs
check "enable --now: /kvp mounted" mounted /kvp
expect_eq "enable --now: fstype" fuse.kvpfs "$(fstype_of /kvp)"
check "enable --now: allow_other" grep -q allow_other <(inside findmnt -n -o OPTIONS --mountpoint /kvp)
expect_eq "enable --now: guest/Seeded" "$(pool_get guest Seeded)" "$(inside cat /kvp/guest/Seeded 2>&1)"
reads_back "enable --now" /kvp
expect_eq "systemctl is-active" active "$(inside systemctl is-active kvpfs)"
check "systemctl status (exit 0)" inside systemctl status --no-pager kvpfs
pid=$(main_pid kvpfs)
expect_eq "MainPID is the kvpfs process" "$pid" "$(kvpfs_pids)"
check "journalctl -u kvpfs: the daemon's 'mounted' line" \
    wait_until 30 journal_has kvpfs 'mounted /var/lib/hyperv on /kvp'

check "systemctl stop kvpfs" inside systemctl stop kvpfs
check "stop: /kvp unmounted" not_mounted /kvp
expect_eq "stop: no kvpfs process" "" "$(kvpfs_pids)"
expect_eq "stop: inactive" inactive "$(inside systemctl is-active kvpfs)"
check "journalctl -u kvpfs: the daemon's 'unmounted' line" \
    wait_until 30 journal_has kvpfs 'unmounted /kvp'
check "systemctl start kvpfs" inside systemctl start kvpfs
reads_back "start again" /kvp

check_kill9

# restart under an open file: the holder gets an error, not a hang; new opens work.
inside mkfifo /root/go
inside rm -f /root/holder.ready /root/holder.status
timeout 60 nsenter -t "$sd_pid" -m -p -u -i -C chroot "$root" sh -c '
    exec 3</kvp/guest/Seeded 4>>/kvp/guest/FromSystemd
    : >/root/holder.ready
    read go </root/go
    if cat <&3 >/dev/null 2>/root/holder.read; then echo read=ok; else echo read=error; fi >/root/holder.status
    if echo more >&4 2>/root/holder.write; then echo write=ok; else echo write=error; fi >>/root/holder.status
' &
holder=$!
check "restart: holder has a key open for reading and one for writing" \
    wait_until 30 test -e "$root/root/holder.ready"
t0=$SECONDS
check "systemctl restart kvpfs with the files open" inside systemctl restart kvpfs
check "restart: returned within 20 s ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -le 20
inside sh -c 'echo go >/root/go'
check "restart: the holder finished" wait_until 30 pid_gone "$holder"
wait "$holder" 2>/dev/null
expect_eq "restart: the holder's read and write failed" "read=error write=error" \
    "$(paste -sd' ' "$root/root/holder.status" 2>&1)"
say "restart: holder's errors: $(cat "$root/root/holder.read" "$root/root/holder.write" 2>&1 | paste -sd'|' -)"
reads_back "after restart" /kvp

# The template of docs/containers.md, two instances.
check "systemctl enable --now kvpfs-share@rw kvpfs-share@ro" \
    inside systemctl enable --now kvpfs-share@rw kvpfs-share@ro
for i in rw ro; do
    expect_eq "kvpfs-share@$i active" active "$(inside systemctl is-active "kvpfs-share@$i")"
    expect_eq "kvpfs-share@$i: /run/kvpfs/kvp-$i is kvpfs" fuse.kvpfs "$(fstype_of "/run/kvpfs/kvp-$i")"
done
reads_back "kvpfs-share@rw" /run/kvpfs/kvp-rw
expect_eq "kvpfs-share@ro: reads guest/FromSystemd" "$(pool_get guest FromSystemd)" \
    "$(inside cat /run/kvpfs/kvp-ro/guest/FromSystemd 2>&1)"
expect_refused "kvpfs-share@ro: writes refused" "Read-only file system" \
    inside sh -c "echo x >/run/kvpfs/kvp-ro/guest/FromSystemd"
expect_eq "three kvpfs processes (kvpfs.service, two instances)" 3 "$(kvpfs_pids | wc -l)"
poweroff "boot 1"

# --- Boot 2: kvpfs.service and the instances enabled ----------------------------------------
boot "boot 2 (kvpfs.service enabled)"
expect_eq "boot 2: no failed unit" "" "$(failed_units)"
expect_eq "boot 2: kvpfs.service active" active "$(inside systemctl is-active kvpfs)"
expect_eq "boot 2: /kvp is kvpfs" fuse.kvpfs "$(fstype_of /kvp)"
reads_back "boot 2" /kvp
for i in rw ro; do
    expect_eq "boot 2: kvpfs-share@$i mounted" fuse.kvpfs "$(fstype_of "/run/kvpfs/kvp-$i")"
done
check "disable kvpfs and the instances" \
    inside systemctl disable --now kvpfs kvpfs-share@rw kvpfs-share@ro
# (all boots share the host's boot ID: a cursor marks where the next one starts)
cursor=$(inside journalctl -n 1 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
poweroff "boot 2"

# --- Boot 3: the fstab line alone -----------------------------------------------------------
fstab_line='/var/lib/hyperv /kvp fuse.kvpfs allow_other,nofail 0 0'
printf '%s\n' "$fstab_line" >>"$root/etc/fstab"
boot "boot 3 (fstab line)"
expect_eq "boot 3: no failed unit" "" "$(failed_units)"
expect_eq "boot 3: kvp.mount active" active "$(inside systemctl is-active kvp.mount)"
expect_eq "boot 3: kvpfs.service inactive" inactive "$(inside systemctl is-active kvpfs)"
expect_eq "boot 3: /kvp is kvpfs" fuse.kvpfs "$(fstype_of /kvp)"
reads_back "boot 3" /kvp
# kvpfs logs it before it detaches, so the sender may be gone before journald can tell its
# unit: looked for among all the lines of this boot (systemd 252's journalctl finds nothing
# when --after-cursor is combined with a match such as -t).
logged_since() { inside journalctl --after-cursor="$1" --no-pager -o cat | grep -F "$2" >/dev/null; }
check "boot 3: the daemon's 'mounted' line, in the journal (syslog)" \
    wait_until 30 logged_since "$cursor" 'mounted /var/lib/hyperv on /kvp'
check "enable kvpfs.service too" inside systemctl enable kvpfs
cursor=$(inside journalctl -n 1 --show-cursor --no-pager | sed -n 's/^-- cursor: //p')
poweroff "boot 3"

# --- Boot 4: both ---------------------------------------------------------------------------
boot "boot 4 (fstab line and kvpfs.service)"
say "boot 4: failed units: [$(failed_units)]; kvp.mount $(inside systemctl is-active kvp.mount), kvpfs.service $(inside systemctl is-active kvpfs), mounts on /kvp: [$(fstype_of /kvp)]"
expect_eq "boot 4: one kvpfs mount on /kvp" fuse.kvpfs "$(fstype_of /kvp)"
# kvpfs.service starts after kvp.mount (After=local-fs.target) and its ExecStartPre lifts
# that mount (fusermount3 -u -z); the kvpfs that mount.fuse3 started then exits, most of the
# time at once, but in some boots it stays, serving the lifted mount no path reaches.
expect_eq "boot 4: no failed unit" "" "$(failed_units)"
service_pid=$(main_pid kvpfs)
check "boot 4: kvpfs.service's kvpfs ($service_pid) runs" grep -qx "$service_pid" <(kvpfs_pids)
one_kvpfs() { [[ $(kvpfs_pids | wc -l) == 1 ]]; }
if wait_until 30 one_kvpfs; then
    say "boot 4: the kvpfs of the fstab line has exited"
else
    say "boot 4: note: the kvpfs of the fstab line still runs 10 s after the boot ($(kvpfs_pids | paste -sd' ' -))"
    inside sh -c 'for p in /proc/[0-9]*; do grep -q fuse.kvpfs $p/mountinfo 2>/dev/null && echo "${p#/proc/} $(cat $p/comm) $(readlink $p/ns/mnt) $(grep fuse.kvpfs $p/mountinfo | cut -d" " -f5 | paste -sd" " -)"; done' | sort -u -k3,3 | sed 's/^/  kvpfs mount seen by: /'
fi
reads_back "boot 4" /kvp
inside journalctl --after-cursor="$cursor" --no-pager -o short-monotonic -u kvp.mount -u kvpfs.service >"$work/boot4.journal" 2>&1
sed 's/^/  boot 4 journal: /' "$work/boot4.journal"
# kvp.mount names whatever is mounted on /kvp: stopping it unmounts the service's mount, and
# kvpfs, unmounted from outside, exits 0: no restart. (This also shows that the mount on
# /kvp was the service's.)
check "boot 4: systemctl stop kvp.mount" inside systemctl stop kvp.mount
check "boot 4: /kvp unmounted" wait_until 30 not_mounted /kvp
service_ended() { [[ $(inside systemctl is-active kvpfs) == inactive ]]; }
check "boot 4: kvpfs.service ended, not restarted" wait_until 30 service_ended
check "boot 4: kvpfs.service's kvpfs exited" bash -c "! grep -qx '$service_pid' <<<'$(kvpfs_pids)'"
check "boot 4: enable kvpfs-share@rw" inside systemctl enable kvpfs-share@rw
poweroff "boot 4"

# --- Boot 5: the service alone again, and an instance, for the removal -----------------------
grep -vF "$fstab_line" "$root/etc/fstab" >"$work/fstab"
cat "$work/fstab" >"$root/etc/fstab"
boot "boot 5 (kvpfs.service and kvpfs-share@rw enabled)"
expect_eq "boot 5: no failed unit" "" "$(failed_units)"
expect_eq "boot 5: /kvp is kvpfs" fuse.kvpfs "$(fstype_of /kvp)"
expect_eq "boot 5: kvpfs-share@rw mounted" fuse.kvpfs "$(fstype_of /run/kvpfs/kvp-rw)"
expect_eq "boot 5: two kvpfs processes" 2 "$(kvpfs_pids | wc -l)"

# --- Removal --------------------------------------------------------------------------------
files=$(inside dpkg-query -L kvpfs | while read -r f; do [[ -f $root$f ]] && echo "$f"; done)
pools_before=$(pools_digest)
if inside dpkg -r kvpfs >"$work/dpkg.log" 2>&1; then ok "dpkg -r kvpfs"; else
    cat "$work/dpkg.log"
    fail "dpkg -r kvpfs"
fi
check_services_gone "dpkg -r" "$pools_before"
check "dpkg --purge kvpfs" inside dpkg --purge kvpfs
expect_eq "dpkg --purge: package unknown" "" "$(inside dpkg-query -W -f='${Status}' kvpfs 2>/dev/null)"
# shellcheck disable=SC2086 # one path a word
check_files_gone "dpkg --purge" $files
poweroff "after removal"
say "total $((SECONDS - t_start)) s"
finish
