#!/usr/bin/env bash
# The package under a real systemd as PID 1: a Debian rootfs made by debootstrap (cached),
# booted with `chroot ROOT /lib/systemd/systemd --system` in new PID, mount, UTS, IPC and
# cgroup namespaces, with this build's .deb installed inside by dpkg -i. Checks, each against
# the pool files of the seeded /var/lib/hyperv: kvpfs.service enable --now / stop / start,
# kill -9 and Restart=on-failure, restart under an open file, kvpfs-share@.service, boots
# with the service enabled, with the fstab line, with both, then dpkg -r and dpkg --purge.
# Usage: systemd_test.sh BUILD_DIR SOURCE_DIR   (root)
# The rootfs is cached in $KVPFS_ROOTFS_CACHE (default /var/cache/kvpfs-tests); every run
# boots an overlay of it (or a copy on a tmpfs), so the cache is never changed. It is made
# from the Debian mirror of the host's apt sources ($KVPFS_DEBIAN_MIRROR overrides it); where
# that mirror cannot be reached, the test is skipped.
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/package/lib.sh"

[[ $(id -u) -eq 0 ]] || skip "needs root (debootstrap, mounts, namespaces)"
[[ -c /dev/fuse ]] || skip "no /dev/fuse"
for tool in cpack dpkg-deb debootstrap unshare nsenter chroot setpriv flock mountpoint findmnt timeout; do
    command -v "$tool" >/dev/null || skip "no $tool (scripts/setup.sh installs it)"
done
# The run gets a cgroup of its own in the host's hybrid hierarchies (v1 name=systemd, and
# cgroup2 on unified), as on these machines.
for h in systemd unified; do
    mountpoint -q "/sys/fs/cgroup/$h" || skip "no cgroup hierarchy on /sys/fs/cgroup/$h"
done

# Everything below runs in a mount namespace of its own: whatever is mounted here vanishes
# with the test, even when it is killed before its trap runs.
if [[ ${KVPFS_SYSTEMD_TEST_NS:-} != 1 ]]; then
    KVPFS_SYSTEMD_TEST_NS=1 exec unshare --mount --propagation private -- "$BASH" "$0" "$@"
fi

cache=${KVPFS_ROOTFS_CACHE:-/var/cache/kvpfs-tests}
# What a run killed by SIGKILL left (its mounts and processes died with its namespaces): its
# work directory and empty cgroups, named after its PID.
for stale in /tmp/kvpfs-systemd.*.* /sys/fs/cgroup/{systemd,unified}/kvpfs-systemd-test.*; do
    [[ -d $stale ]] || continue
    stale_pid=${stale#*/kvpfs-systemd}
    stale_pid=${stale_pid#-test}
    stale_pid=${stale_pid#.}
    stale_pid=${stale_pid%%.*}
    [[ $stale_pid =~ ^[0-9]+$ ]] && ! kill -0 "$stale_pid" 2>/dev/null || continue
    if [[ $stale == /sys/* ]]; then
        find "$stale" -depth -type d -exec rmdir {} + 2>/dev/null
    elif ! grep -qF " $stale/" /proc/self/mountinfo; then
        rm -rf "$stale"
    fi
done
work=$(mktemp -d "/tmp/kvpfs-systemd.$$.XXXXXX")
chmod 755 "$work"
root=$work/root   # the booted rootfs (an overlay on the cached one)
cgroup_name=kvpfs-systemd-test.$$
unshare_pid=      # the unshare(1) process of the running boot
sd_pid=           # its child: systemd, PID 1 of the new PID namespace
t_start=$SECONDS

# The cgroups systemd made under this run's own: removed once the last (killed) process has
# left them (rmdir says EBUSY until then).
rmdir_tree() {
    find "$1" -depth -type d -exec rmdir {} + 2>/dev/null
    [[ ! -d $1 ]]
}
remove_cgroups() {
    local h
    for h in systemd unified; do
        [[ -d /sys/fs/cgroup/$h/$cgroup_name ]] || continue
        wait_until 30 rmdir_tree "/sys/fs/cgroup/$h/$cgroup_name" ||
            say "could not remove /sys/fs/cgroup/$h/$cgroup_name"
    done
}
cleanup() {
    if [[ -n $unshare_pid ]]; then
        # SIGKILL to PID 1 of the namespace kills every process in it.
        [[ -z $sd_pid ]] || kill -KILL "$sd_pid" 2>/dev/null
        kill -KILL "$unshare_pid" 2>/dev/null
        wait "$unshare_pid" 2>/dev/null
    fi
    umount_tree "$work"
    remove_cgroups
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- The package -----------------------------------------------------------------------------
if ! (cd "$build" && cpack -G DEB -B "$work/cpack") >"$work/cpack.log" 2>&1; then
    cat "$work/cpack.log"
    fail "cpack -G DEB"
    finish
fi
deb=$(echo "$work"/cpack/kvpfs_*.deb)
check "cpack made $(basename "$deb")" test -f "$deb"
# The rootfs gets the package's run-time dependencies from debootstrap (no apt inside).
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -e 's/(.*)//' -e 's/[[:space:]]//g' |
    grep -v '^$')
include=$(printf '%s\n' systemd systemd-sysv dbus fuse3 $deps | sort -u | paste -sd, -)

# --- The cached rootfs -----------------------------------------------------------------------
# The host's Debian mirror and release (from its apt sources), so the package's library
# versions match.
suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
mirror=$(
    {
        cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk -v s="$suite" '$1 == "deb" && $3 == s { print $2 }'
        for f in /etc/apt/sources.list.d/*.sources; do
            [[ -f $f ]] || continue
            awk -v s="$suite" '
                /^[[:space:]]*$/ { if (ok && uri) print uri; uri = ""; ok = 0; next }
                $1 == "URIs:" { uri = $2 }
                $1 == "Suites:" { for (i = 2; i <= NF; i++) if ($i == s) ok = 1 }
                END { if (ok && uri) print uri }' "$f"
        done
    } | grep -m1 -E '^https?://'
)
mirror=${KVPFS_DEBIAN_MIRROR:-$mirror}
[[ -n $suite && -n $mirror ]] || skip "no Debian mirror for '${suite:-?}' in /etc/apt/sources.list(.d)"
rootfs=$cache/systemd-rootfs
recipe="debootstrap --variant=minbase --include=$include $suite $mirror"
mkdir -p "$cache"
exec 9>"$cache/systemd-rootfs.lock"
if ! flock -w 600 9; then
    fail "lock $cache/systemd-rootfs.lock held for 10 minutes"
    finish
fi
if [[ -f $rootfs/.kvpfs-recipe && $(cat "$rootfs/.kvpfs-recipe") == "$recipe" ]]; then
    ok "cached rootfs $rootfs ($recipe)"
else
    # Built in a temporary directory and renamed into place: an interrupted build is never
    # mistaken for a rootfs.
    rm -rf "$cache"/systemd-rootfs.tmp.* "$cache/systemd-rootfs.old"
    tmp=$(mktemp -d "$cache/systemd-rootfs.tmp.XXXXXX")
    say "building $rootfs: $recipe (a few minutes)"
    t0=$SECONDS
    if ! timeout 720 debootstrap --variant=minbase --include="$include" "$suite" "$tmp/root" \
        "$mirror" >"$work/debootstrap.log" 2>&1; then
        tail -n 15 "$work/debootstrap.log"
        rm -rf "$tmp"
        if grep -Eq 'Failed getting release file|Couldn.t download|unable to resolve|Temporary failure in name resolution|Connection (refused|timed out)|Network is unreachable' \
            "$work/debootstrap.log"; then
            skip "debootstrap cannot reach the package mirror $mirror"
        fi
        fail "debootstrap"
        finish
    fi
    printf '%s\n' "$recipe" >"$tmp/root/.kvpfs-recipe"
    [[ ! -e $rootfs ]] || mv -T "$rootfs" "$cache/systemd-rootfs.old"
    mv -T "$tmp/root" "$rootfs"
    rm -rf "$tmp" "$cache/systemd-rootfs.old"
    ok "built $rootfs in $((SECONDS - t0)) s"
fi
flock -s 9   # others may use it now, nobody rebuilds it under this run

# --- This run's copy -------------------------------------------------------------------------
# The root is a file system of its own (an overlay with its upper layer on a tmpfs, or a
# copy on a tmpfs): systemd's shutdown remounts it read-only, which must not reach the
# host's disk.
mkdir -p "$work/rw" "$root"
mount -t tmpfs -o size=1g,mode=0755 kvpfs-systemd-rw "$work/rw"
mkdir -p "$work/rw/upper" "$work/rw/work"
if ! mount -t overlay overlay \
    -o "lowerdir=$rootfs,upperdir=$work/rw/upper,workdir=$work/rw/work" "$root" 2>/dev/null; then
    say "no overlayfs: copying the rootfs"
    mkdir -p "$work/rw/root"
    cp -a "$rootfs/." "$work/rw/root/"
    mount --bind "$work/rw/root" "$root"
fi
# No login prompts on the host's console, no change to the host's sysctls, and journald
# logging about itself to its console (our file), not to the host's kernel log.
for unit in getty.target serial-getty@.service console-getty.service systemd-sysctl.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
mkdir -p "$root/etc/systemd/system/systemd-journald.service.d"
printf '[Service]\nEnvironment=SYSTEMD_LOG_TARGET=console\n' \
    >"$root/etc/systemd/system/systemd-journald.service.d/no-kmsg.conf"
: >"$work/console"
cp "$deb" "$root/root/kvpfs.deb" # (/tmp is emptied at boot)

# inside COMMAND...: runs COMMAND in the booted system (its namespaces and root).
inside() {
    timeout 60 nsenter -t "$sd_pid" -m -p -u -i -C chroot "$root" \
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 "$@"
}
# The script run in the new namespaces: the mounts systemd expects, then systemd itself.
boot_script='
set -e
r=$1
mount --bind "$r" "$r"
mount --make-private "$r"
mount -t proc proc "$r/proc"
mount -t sysfs sysfs "$r/sys"
mount -t tmpfs -o mode=0755 tmpfs "$r/run"
mount -t tmpfs -o mode=0755 tmpfs "$r/sys/fs/cgroup"
mkdir "$r/sys/fs/cgroup/unified" "$r/sys/fs/cgroup/systemd"
mount -t cgroup2 cgroup2 "$r/sys/fs/cgroup/unified"
mount -t cgroup -o none,name=systemd cgroup "$r/sys/fs/cgroup/systemd"
mount --rbind /dev "$r/dev"
mount --bind "$2" "$r/dev/console"
exec chroot "$r" /lib/systemd/systemd --system --show-status=false --log-target=journal
'
child_of() { awk '{print $1}' "/proc/$1/task/$1/children" 2>/dev/null; }
systemd_started() {
    local child
    child=$(child_of "$unshare_pid")
    [[ -n $child && $(cat "/proc/$child/comm" 2>/dev/null) == systemd ]]
}
system_up() { [[ $(inside systemctl is-system-running 2>/dev/null) =~ ^(running|degraded)$ ]]; }
# boot WHAT: starts systemd on the rootfs and waits (60 s at most) until it is up.
boot() {
    local h
    # A cgroup of this run in the host's hierarchies, seen as the root inside (--cgroup).
    # unshare dies with this test (even by SIGKILL), and systemd with unshare (--kill-child).
    for h in systemd unified; do mkdir -p "/sys/fs/cgroup/$h/$cgroup_name"; done
    "$BASH" -c 'for h in systemd unified; do echo $$ >"/sys/fs/cgroup/$h/$1/cgroup.procs"; done
        exec setpriv --pdeathsig KILL unshare --pid --fork --kill-child --mount --uts --ipc --cgroup \
            -- bash -c "$2" _ "$3" "$4"' \
        _ "$cgroup_name" "$boot_script" "$root" "$work/console" </dev/null >>"$work/boot.log" 2>&1 &
    unshare_pid=$!
    if ! wait_until 30 systemd_started; then
        cat "$work/boot.log"
        fail "$1: systemd did not start"
        finish
    fi
    sd_pid=$(child_of "$unshare_pid")
    local t0=$SECONDS
    if wait_until 60 system_up; then
        ok "$1: booted in $((SECONDS - t0)) s ($(inside systemctl is-system-running))"
    else
        inside systemctl list-jobs --no-pager
        fail "$1: not up after 60 s: $(inside systemctl is-system-running)"
    fi
}
# poweroff WHAT: a clean shutdown; systemd leaves the namespace, the rootfs stays.
poweroff() {
    inside systemctl poweroff >/dev/null 2>&1
    if wait_until 60 pid_gone "$unshare_pid"; then
        ok "$1: powered off"
    else
        fail "$1: still running 60 s after systemctl poweroff"
        kill -KILL "$sd_pid" 2>/dev/null
    fi
    wait "$unshare_pid" 2>/dev/null
    unshare_pid=''
    sd_pid=''
    remove_cgroups
    # systemd's shutdown made the rootfs read-only; the next boot starts as a real one does.
    mount -o remount,rw "$root"
}

failed_units() { inside systemctl list-units --failed --plain --no-legend | awk '{print $1}' | paste -sd' ' -; }
# Host-side view of the pool files: kvpctl of this build on the rootfs' /var/lib/hyperv.
pool=$root/var/lib/hyperv
pool_get() { "$build/kvpctl" --pool-dir "$pool" get "$1" "$2" 2>&1; }
kvpfs_pids() {
    inside sh -c 'for p in /proc/[0-9]*; do [ "$(readlink $p/exe)" = /usr/bin/kvpfs ] && echo ${p#/proc/}; done' 2>/dev/null
}
mounted() { inside mountpoint -q "$1"; }
not_mounted() { ! inside mountpoint -q "$1"; }
fstype_of() { inside findmnt -n -o FSTYPE --mountpoint "$1" | paste -sd' ' -; }
main_pid() { inside systemctl show -p MainPID --value "$1"; }
# reads_back WHAT MOUNTPOINT: a parameter/ value and a guest/ write, each against the pools.
reads_back() {
    local what=$1 mnt=$2 value
    expect_eq "$what: parameter/HostName as in the pool" "$(pool_get parameter HostName)" \
        "$(inside cat "$mnt/parameter/HostName" 2>&1)"
    value="$what at $SECONDS"
    check "$what: write guest/FromSystemd" inside sh -c "printf '%s' '$value' >'$mnt/guest/FromSystemd'"
    expect_eq "$what: the write is in the pool" "$value" "$(pool_get guest FromSystemd)"
}

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

# Seed the pools with the installed kvpctl, as an administrator would.
inside mkdir -p /var/lib/hyperv
check "seed /var/lib/hyperv (kvpctl init --sample)" \
    inside kvpctl --pool-dir /var/lib/hyperv init /var/lib/hyperv --sample
check "seed guest/Seeded" inside kvpctl --pool-dir /var/lib/hyperv set guest Seeded from-seed

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
# journal_has UNIT TEXT: TEXT in the unit's journal (journald is asynchronous: polled). Not
# grep -q: journalctl killed by SIGPIPE would fail the pipeline (pipefail).
journal_has() { inside journalctl -u "$1" --no-pager -o cat | grep -F "$2" >/dev/null; }
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

# kill -9: the dead mount is lifted and Restart=on-failure (RestartSec=2) mounts again.
pid=$(main_pid kvpfs)
t0=$SECONDS
check "kill -9 $pid (the daemon)" inside sh -c "kill -KILL $pid"
back_again() { [[ $(main_pid kvpfs) != "$pid" && $(main_pid kvpfs) != 0 ]] && mounted /kvp &&
    inside cat /kvp/parameter/HostName; }
if wait_until 30 back_again; then
    ok "kill -9: /kvp back by itself in $((SECONDS - t0)) s"
else
    fail "kill -9: /kvp not back after 15 s ($(inside systemctl is-active kvpfs))"
fi
expect_eq "kill -9: NRestarts" 1 "$(inside systemctl show -p NRestarts --value kvpfs)"
expect_eq "kill -9: one mount on /kvp" fuse.kvpfs "$(fstype_of /kvp)"
reads_back "after kill -9" /kvp

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
pools_before=$(cd "$pool" && cat .kvp_pool_* | md5sum)
if inside dpkg -r kvpfs >"$work/dpkg.log" 2>&1; then ok "dpkg -r kvpfs"; else
    cat "$work/dpkg.log"
    fail "dpkg -r kvpfs"
fi
expect_eq "dpkg -r: no kvpfs mount left" "" "$(inside findmnt -n -t fuse.kvpfs -o TARGET | paste -sd' ' -)"
expect_eq "dpkg -r: no kvpfs process left" "" "$(kvpfs_pids)"
expect_eq "dpkg -r: kvpfs.service unknown to systemd" not-found \
    "$(inside systemctl show -p LoadState --value kvpfs.service)"
expect_eq "dpkg -r: no link left in /etc/systemd" "" \
    "$(find "$root/etc/systemd" -name '*kvpfs*' | sed "s#^$root##" | paste -sd' ' -)"
expect_eq "dpkg -r: no failed unit" "" "$(failed_units)"
expect_eq "dpkg -r: pool files unchanged" "$pools_before" "$(cd "$pool" && cat .kvp_pool_* | md5sum)"
check "dpkg --purge kvpfs" inside dpkg --purge kvpfs
expect_eq "dpkg --purge: package unknown" "" "$(inside dpkg-query -W -f='${Status}' kvpfs 2>/dev/null)"
left=$(for f in $files; do [[ -e $root$f ]] && echo "$f"; done)
expect_eq "dpkg --purge: no file of the package left ($(wc -w <<<"$files") files)" "" "$left"
expect_eq "dpkg --purge: nothing named kvpfs under /etc /usr /var /run" "" \
    "$(inside find /etc /usr /var /run -name '*kvpfs*' | paste -sd' ' -)"
check "dpkg --purge: the mount point /kvp removed" inside test ! -e /kvp
poweroff "after removal"
say "total $((SECONDS - t_start)) s"
finish
