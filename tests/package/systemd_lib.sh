# A real systemd as PID 1 for the package tests (sourced by systemd_test.sh and
# rpm_systemd_test.sh, after lib.sh, with $build and $src set and the script's own arguments
# still in "$@"). Sourcing it checks what the machine must have (exit 77 otherwise), moves the
# test into a mount namespace of its own, makes $work (removed at exit) and names $root, the
# rootfs each boot runs on. Then:
#   prepare_root        the cached Debian rootfs (debootstrap, built on first use), an
#                       overlay of it on $root
#   boot WHAT           systemd --system on $root in new PID, mount, UTS, IPC and cgroup
#                       namespaces, waited for until it is up
#   poweroff WHAT       a clean shutdown; the rootfs stays for the next boot
#   inside COMMAND...   COMMAND in the booted system
# and checks made of them (seed_pools, reads_back, check_kill9, check_nothing_left, ...).
#
# The rootfs is cached in $KVPFS_ROOTFS_CACHE (default /var/cache/kvpfs-tests); every run
# boots an overlay of it (or a copy on a tmpfs), so the cache is never changed. It is made
# from the Debian mirror of the host's apt sources ($KVPFS_DEBIAN_MIRROR overrides it); where
# that mirror cannot be reached, the test is skipped.

[[ $(id -u) -eq 0 ]] || skip "needs root (debootstrap, mounts, namespaces)"
[[ -c /dev/fuse ]] || skip "no /dev/fuse"
for tool in cpack debootstrap unshare nsenter chroot setpriv flock mountpoint findmnt timeout; do
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

# --- The cached rootfs and this run's overlay of it -------------------------------------------
# What the rootfs holds besides Debian's minbase: systemd; fuse3 (with libfuse3-3, what the
# packages need at run time with libstdc++6 and libc6, both in minbase); rpm, which installs
# the .rpm. The packages' own run-time dependencies are checked when they are installed.
rootfs_packages=systemd,systemd-sysv,dbus,fuse3,rpm
prepare_root() {
    # The host's Debian mirror and release (from its apt sources), so the library versions
    # match the build's.
    local suite mirror rootfs recipe tmp t0 unit
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
    recipe="debootstrap --variant=minbase --include=$rootfs_packages $suite $mirror"
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
        if ! timeout 720 debootstrap --variant=minbase --include="$rootfs_packages" "$suite" \
            "$tmp/root" "$mirror" >"$work/debootstrap.log" 2>&1; then
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
    flock -s 9 # others may use it now, nobody rebuilds it under this run

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
}

# --- Booting ---------------------------------------------------------------------------------
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

# --- Looking at the booted system -----------------------------------------------------------
failed_units() { inside systemctl list-units --failed --plain --no-legend | awk '{print $1}' | paste -sd' ' -; }
# Host-side view of the pool files: kvpctl of this build on the rootfs' /var/lib/hyperv.
pool=$root/var/lib/hyperv
pool_get() { "$build/kvpctl" --pool-dir "$pool" get "$1" "$2" 2>&1; }
pools_digest() { (cd "$pool" && cat .kvp_pool_* | md5sum); }
kvpfs_pids() {
    inside sh -c 'for p in /proc/[0-9]*; do [ "$(readlink $p/exe)" = /usr/bin/kvpfs ] && echo ${p#/proc/}; done' 2>/dev/null
}
mounted() { inside mountpoint -q "$1"; }
not_mounted() { ! inside mountpoint -q "$1"; }
fstype_of() { inside findmnt -n -o FSTYPE --mountpoint "$1" | paste -sd' ' -; }
main_pid() { inside systemctl show -p MainPID --value "$1"; }
# journal_has UNIT TEXT: TEXT in the unit's journal (journald is asynchronous: polled). Not
# grep -q: journalctl killed by SIGPIPE would fail the pipeline (pipefail).
journal_has() { inside journalctl -u "$1" --no-pager -o cat | grep -F "$2" >/dev/null; }

# seed_pools: /var/lib/hyperv made with the installed kvpctl, as an administrator would.
seed_pools() {
    inside mkdir -p /var/lib/hyperv
    check "seed /var/lib/hyperv (kvpctl init --sample)" \
        inside kvpctl --pool-dir /var/lib/hyperv init /var/lib/hyperv --sample
    check "seed guest/Seeded" inside kvpctl --pool-dir /var/lib/hyperv set guest Seeded from-seed
}
# reads_back WHAT MOUNTPOINT: a parameter/ value and a guest/ write, each against the pools.
reads_back() {
    local what=$1 mnt=$2 value
    expect_eq "$what: parameter/HostName as in the pool" "$(pool_get parameter HostName)" \
        "$(inside cat "$mnt/parameter/HostName" 2>&1)"
    value="$what at $SECONDS"
    check "$what: write guest/FromSystemd" inside sh -c "printf '%s' '$value' >'$mnt/guest/FromSystemd'"
    expect_eq "$what: the write is in the pool" "$value" "$(pool_get guest FromSystemd)"
}
# check_kill9: kill -9 of kvpfs.service's daemon; the dead mount is lifted and
# Restart=on-failure (RestartSec=2) mounts /kvp again. NRestarts counts from the unit's start.
check_kill9() {
    local pid t0 restarts
    pid=$(main_pid kvpfs)
    restarts=$(inside systemctl show -p NRestarts --value kvpfs)
    t0=$SECONDS
    check "kill -9 $pid (the daemon)" inside sh -c "kill -KILL $pid"
    back_again() { [[ $(main_pid kvpfs) != "$pid" && $(main_pid kvpfs) != 0 ]] && mounted /kvp &&
        inside cat /kvp/parameter/HostName; }
    if wait_until 30 back_again; then
        ok "kill -9: /kvp back by itself in $((SECONDS - t0)) s"
    else
        fail "kill -9: /kvp not back after 15 s ($(inside systemctl is-active kvpfs))"
    fi
    expect_eq "kill -9: NRestarts" $((restarts + 1)) "$(inside systemctl show -p NRestarts --value kvpfs)"
    expect_eq "kill -9: one mount on /kvp" fuse.kvpfs "$(fstype_of /kvp)"
    reads_back "after kill -9" /kvp
}
# check_services_gone WHAT POOLS_DIGEST: after the package's removal, with services of it
# enabled and running: no kvpfs mount, process, unit, link or failed unit, and the pool files
# as POOLS_DIGEST (pools_digest before the removal).
check_services_gone() {
    expect_eq "$1: no kvpfs mount left" "" "$(inside findmnt -n -t fuse.kvpfs -o TARGET | paste -sd' ' -)"
    expect_eq "$1: no kvpfs process left" "" "$(kvpfs_pids)"
    expect_eq "$1: kvpfs.service unknown to systemd" not-found \
        "$(inside systemctl show -p LoadState --value kvpfs.service)"
    expect_eq "$1: no link left in /etc/systemd" "" \
        "$(find "$root/etc/systemd" -name '*kvpfs*' | sed "s#^$root##" | paste -sd' ' -)"
    expect_eq "$1: no failed unit" "" "$(failed_units)"
    expect_eq "$1: pool files unchanged" "$2" "$(pools_digest)"
}
# check_files_gone WHAT FILES...: none of FILES (the package's files, as paths inside the
# root) left, nothing named kvpfs under /etc /usr /var /run, and no mount point /kvp.
check_files_gone() {
    local what=$1 f left=''
    shift
    for f in "$@"; do [[ ! -e $root$f ]] || left+=" $f"; done
    expect_eq "$what: no file of the package left ($# files)" "" "${left# }"
    expect_eq "$what: nothing named kvpfs under /etc /usr /var /run" "" \
        "$(inside find /etc /usr /var /run -name '*kvpfs*' | paste -sd' ' -)"
    check "$what: the mount point /kvp removed" inside test ! -e /kvp
}
