#!/usr/bin/env bash
# The RPM package under a real systemd as PID 1 (systemd_lib.sh: the Debian rootfs of
# package_systemd, which has rpm): rpm -i, the service started, kill -9 and Restart=on-failure,
# rpm -U to a package with the release bumped (the running services and the enabled links
# left alone), rpm -e with kvpfs.service and a kvpfs-share@ instance enabled and running, and
# nothing of the package left, each against the pool files of the seeded /var/lib/hyperv.
# Usage: rpm_systemd_test.sh BUILD_DIR SOURCE_DIR   (root)
#
# rpm -i/-U run with --nodeps: the rootfs is Debian's, whose packages rpm does not know, and no
# RPM repository is reachable here to install fuse3 and the libraries the RPM way. What the
# package requires is checked by package_rpm (rpm -qpR); the rootfs has it as Debian
# packages (fuse3, libfuse3-3, libstdc++6, libc6), so the programs run.
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/package/lib.sh"
command -v rpm >/dev/null || skip "no rpm (scripts/setup.sh installs it)"
source "$src/tests/package/systemd_lib.sh"

# --- The packages: this build's, and the same with the release bumped for the upgrade ---------
for release in 1 2; do
    if ! (cd "$build" && cpack -G RPM -B "$work/cpack$release" -D CPACK_RPM_PACKAGE_RELEASE=$release) \
        >"$work/cpack.log" 2>&1; then
        cat "$work/cpack.log"
        fail "cpack -G RPM (release $release)"
        finish
    fi
done
rpm1=$(echo "$work"/cpack1/kvpfs-*.rpm)
rpm2=$(echo "$work"/cpack2/kvpfs-*.rpm)
nvr1=$(rpm -qp --qf '%{NAME}-%{VERSION}-%{RELEASE}' "$rpm1")
nvr2=$(rpm -qp --qf '%{NAME}-%{VERSION}-%{RELEASE}' "$rpm2")
check "cpack made $(basename "$rpm1")" test -f "$rpm1"
check "cpack made $(basename "$rpm2") (release bumped)" test "$nvr1" != "$nvr2"

prepare_root
cp "$rpm1" "$root/root/kvpfs-1.rpm" # (/tmp is emptied at boot)
cp "$rpm2" "$root/root/kvpfs-2.rpm"

# rpm_in ARGS...: rpm in the booted system, with the database where RPM distributions keep
# it (Debian's rpm would use $HOME/.rpmdb). --force-debian below silences Debian's rpm's
# warning that packages should be installed with alien.
rpm_in() { inside rpm --dbpath /var/lib/rpm "$@"; }
# rpm_change WHAT ARGS...: an rpm -i/-U/-e, its output shown when it fails.
rpm_change() {
    local what=$1
    shift
    if rpm_in "$@" >"$work/rpm.log" 2>&1; then
        ok "$what"
    else
        cat "$work/rpm.log"
        fail "$what"
        finish
    fi
}

# --- Install --------------------------------------------------------------------------------
boot "boot"
expect_eq "boot: no failed unit" "" "$(failed_units)"
check "rpm --initdb (/var/lib/rpm)" rpm_in --initdb
rpm_change "rpm -i --nodeps $nvr1 under systemd" -i --nodeps --force-debian /root/kvpfs-1.rpm
# rpm_q: NAME-VERSION-RELEASE of the installed kvpfs.
rpm_q() { rpm_in -q --qf '%{NAME}-%{VERSION}-%{RELEASE}' kvpfs 2>&1; }
expect_eq "rpm -q kvpfs" "$nvr1" "$(rpm_q)"
# (--nodeps: the dependencies are Debian packages here, see above)
check "rpm -V --nodeps kvpfs (every file as packaged)" rpm_in -V --nodeps kvpfs
expect_eq "%post reloaded systemd: kvpfs.service loaded" loaded \
    "$(inside systemctl show -p LoadState --value kvpfs.service)"
expect_eq "kvpfs.service not enabled by the package" disabled "$(inside systemctl is-enabled kvpfs.service)"
check "kvpfs-share@.service installed" inside test -f /usr/lib/systemd/system/kvpfs-share@.service
expect_eq "kvpfs --version" "kvpfs $(rpm -qp --qf '%{VERSION}' "$rpm1")" \
    "$(inside kvpfs --version | awk '{print $1, $2}')"

# --- The service ----------------------------------------------------------------------------
seed_pools
check "systemctl enable --now kvpfs" inside systemctl enable --now kvpfs
check "enable --now: /kvp mounted" mounted /kvp
expect_eq "enable --now: fstype" fuse.kvpfs "$(fstype_of /kvp)"
expect_eq "enable --now: guest/Seeded" "$(pool_get guest Seeded)" "$(inside cat /kvp/guest/Seeded 2>&1)"
reads_back "enable --now" /kvp
expect_eq "MainPID is the kvpfs process" "$(main_pid kvpfs)" "$(kvpfs_pids)"
check "journalctl -u kvpfs: the daemon's 'mounted' line" \
    wait_until 30 journal_has kvpfs 'mounted /var/lib/hyperv on /kvp'
check_kill9
check "systemctl enable --now kvpfs-share@rw" inside systemctl enable --now kvpfs-share@rw
expect_eq "kvpfs-share@rw: /run/kvpfs/kvp-rw is kvpfs" fuse.kvpfs "$(fstype_of /run/kvpfs/kvp-rw)"

# --- Upgrade: %post of the new package, %preun and %postun of the old one with $1 = 1 ------------
service_pid=$(main_pid kvpfs)
share_pid=$(main_pid kvpfs-share@rw)
rpm_change "rpm -U --nodeps $nvr2" -U --nodeps --force-debian /root/kvpfs-2.rpm
expect_eq "upgrade: rpm -q kvpfs" "$nvr2" "$(rpm_q)"
check "upgrade: rpm -V --nodeps kvpfs" rpm_in -V --nodeps kvpfs
expect_eq "upgrade: kvpfs.service still enabled" enabled "$(inside systemctl is-enabled kvpfs)"
expect_eq "upgrade: kvpfs-share@rw still enabled" enabled "$(inside systemctl is-enabled kvpfs-share@rw)"
expect_eq "upgrade: kvpfs.service not restarted (same main PID)" "$service_pid" "$(main_pid kvpfs)"
expect_eq "upgrade: kvpfs-share@rw not restarted (same main PID)" "$share_pid" "$(main_pid kvpfs-share@rw)"
expect_eq "upgrade: systemd does not need a reload" no \
    "$(inside systemctl show -p NeedDaemonReload --value kvpfs.service)"
reads_back "after the upgrade" /kvp
expect_eq "upgrade: no failed unit" "" "$(failed_units)"

# --- Erase: %preun and %postun with $1 = 0 ------------------------------------------------------
files=$(rpm_in -ql kvpfs)
pools_before=$(pools_digest)
rpm_change "rpm -e kvpfs" -e kvpfs
expect_eq "rpm -e: package unknown" "package kvpfs is not installed" "$(rpm_in -q kvpfs 2>&1)"
check_services_gone "rpm -e" "$pools_before"
# shellcheck disable=SC2086 # one path a word
check_files_gone "rpm -e" $files
poweroff "after removal"
say "total $((SECONDS - t_start)) s"
finish
