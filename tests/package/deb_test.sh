#!/usr/bin/env bash
# The Debian package for real: cpack -G DEB, dpkg -i on this machine, the programs, man pages
# and unit in place, mount -t fuse.kvpfs and the documented fstab line through mount.fuse3 with
# the installed /usr/bin/kvpfs, then dpkg -r and nothing of the package left.
# Usage: deb_test.sh BUILD_DIR SOURCE_DIR   (root; a kvpfs package already installed is
# replaced by this build's and removed at the end)
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/package/lib.sh"

[[ $(id -u) -eq 0 ]] || skip "needs root (dpkg -i, mount)"
[[ -c /dev/fuse ]] || skip "no /dev/fuse"
for tool in cpack dpkg dpkg-deb mountpoint findmnt setpriv; do
    command -v "$tool" >/dev/null || skip "no $tool"
done
[[ -x /sbin/mount.fuse3 || -x /usr/sbin/mount.fuse3 ]] || skip "no mount.fuse3 (package fuse3)"

work=$(mktemp -d /tmp/kvpfs-deb.XXXXXX)
chmod 755 "$work"
installed_by_us=no
cleanup() {
    local pid
    umount_tree "$work"
    for pid in $(pids_of_exe /usr/bin/kvpfs "$work"); do kill -TERM "$pid" 2>/dev/null; done
    if [[ $installed_by_us == yes ]] && dpkg-query -W kvpfs >/dev/null 2>&1; then
        dpkg --purge kvpfs >/dev/null 2>&1 || say "cleanup: dpkg --purge kvpfs failed"
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [[ $(dpkg-query -W -f='${Status}' kvpfs 2>/dev/null) == "install ok installed" ]]; then
    say "note: kvpfs $(dpkg-query -W -f='${Version}' kvpfs) was installed; replacing it"
fi

# --- cmake --install into a scratch prefix --------------------------------------------------
prefix=$work/prefix
if cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1; then
    ok "cmake --install --prefix PREFIX"
    for f in bin/kvpfs bin/kvpctl bin/kvp-host bin/kvp-sandbox share/man/man8/kvpfs.8.gz share/man/man1/kvpctl.1.gz \
        share/man/man1/kvp-host.1.gz share/man/man1/kvp-sandbox.1.gz \
        lib/systemd/system/kvpfs.service lib/systemd/system/kvpfs-share@.service \
        share/doc/kvpfs/install.md share/doc/kvpfs/containers.md share/doc/kvpfs/behaviour.md \
        share/doc/kvpfs/copyright; do
        check "cmake --install: PREFIX/$f" test -s "$prefix/$f"
    done
    # The man pages carry the real version, and their FILES section the prefix used.
    check "cmake --install: kvpfs(8) names the version" \
        bash -c "zcat '$prefix/share/man/man8/kvpfs.8.gz' | grep -q '\"kvpfs [0-9][0-9.]*\"'"
    check "cmake --install: kvpfs(8) has no @placeholder@" \
        bash -c "! zcat '$prefix/share/man/man8/kvpfs.8.gz' '$prefix/share/man/man1/kvpctl.1.gz' | grep -q '@[A-Z_]*@'"
    check "cmake --install: kvpfs(8) FILES names PREFIX/lib/systemd/system" \
        bash -c "zcat '$prefix/share/man/man8/kvpfs.8.gz' | grep -qF '$prefix/lib/systemd/system/kvpfs.service'"
    expect_eq "cmake --install: kvpfs found on PATH=PREFIX/bin" "$prefix/bin/kvpfs" \
        "$(PATH="$prefix/bin" command -v kvpfs)"
    check "cmake --install: man finds kvpfs(8) under PREFIX" \
        bash -c "MANPATH='$prefix/share/man' man -w 8 kvpfs | grep -q '^$prefix/'"
else
    cat "$work/install.log"
    fail "cmake --install --prefix PREFIX"
fi

# --- Build the package -------------------------------------------------------------------
if ! (cd "$build" && cpack -G DEB -B "$work/cpack") >"$work/cpack.log" 2>&1; then
    cat "$work/cpack.log"
    fail "cpack -G DEB"
    finish
fi
deb=$(echo "$work"/cpack/kvpfs_*.deb)
check "cpack made $(basename "$deb")" test -f "$deb"
version=$(dpkg-deb -f "$deb" Version)
upstream_version=${version%-*}  # the programs print the upstream part of 0.1.0-1
depends=$(dpkg-deb -f "$deb" Depends)
say "Depends: $depends"
for dep in fuse3 libfuse3-3; do
    check "package depends on $dep" grep -Eq "(^|, )$dep[^,]*" <<<"$depends"
done
# Boost.Filesystem is linked statically (CMakeLists.txt) unless the build says otherwise.
if static_boost "$build"; then
    check "package does not depend on a Boost library" bash -c "! grep -q libboost <<<'$depends'"
else
    check "package depends on libboost-filesystem" grep -q libboost-filesystem <<<"$depends"
fi
contents=$(dpkg-deb -c "$deb")
for f in usr/bin/kvpfs usr/bin/kvpctl usr/bin/kvp-host usr/bin/kvp-sandbox usr/share/man/man8/kvpfs.8.gz \
    usr/share/man/man1/kvp-host.1.gz usr/share/man/man1/kvp-sandbox.1.gz \
    usr/share/man/man1/kvpctl.1.gz usr/lib/systemd/system/kvpfs.service \
    usr/lib/systemd/system/kvpfs-share@.service \
    usr/share/doc/kvpfs/install.md usr/share/doc/kvpfs/containers.md usr/share/doc/kvpfs/behaviour.md \
    usr/share/doc/kvpfs/copyright usr/share/doc/kvpfs/changelog.Debian.gz; do
    check "package holds /$f" grep -q " \./$f\$" <<<"$contents"
done

# --- lintian: no error, and no warning without a written override -------------------------------
if command -v lintian >/dev/null; then
    lintian --tag-display-limit 0 "$deb" >"$work/lintian.log" 2>/dev/null
    cat "$work/lintian.log"
    expect_eq "lintian: no E: tags" "" "$(grep '^E:' "$work/lintian.log")"
    expect_eq "lintian: no W: tags" "" "$(grep '^W:' "$work/lintian.log")"
else
    say "note: no lintian (scripts/setup.sh installs it); not checked"
fi

# --- Install -------------------------------------------------------------------------------
installed_by_us=yes
if ! DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$work/dpkg.log" 2>&1; then
    cat "$work/dpkg.log"
    fail "dpkg -i"
    finish
fi
ok "dpkg -i $(basename "$deb")"
expect_eq "dpkg status" "install ok installed" "$(dpkg-query -W -f='${Status}' kvpfs)"
check "dpkg --verify kvpfs" dpkg --verify kvpfs
expect_eq "kvpfs --version" "kvpfs $upstream_version" "$(/usr/bin/kvpfs --version | awk '{print $1, $2}')"
expect_eq "kvpctl --version" "kvpctl $upstream_version" "$(/usr/bin/kvpctl --version | awk '{print $1, $2}')"
expect_eq "kvpfs on PATH" /usr/bin/kvpfs "$(PATH=/usr/bin:/bin command -v kvpfs)"
if command -v man >/dev/null; then
    expect_eq "man -w kvpfs" /usr/share/man/man8/kvpfs.8.gz "$(man -w 8 kvpfs 2>&1)"
    expect_eq "man -w kvpctl" /usr/share/man/man1/kvpctl.1.gz "$(man -w 1 kvpctl 2>&1)"
    check "man kvpfs renders" bash -c "MANWIDTH=80 man 8 kvpfs 2>&1 | grep -q 'kvpfs - FUSE file system'"
fi
# The installed sandbox runs the installed programs, with kvpctl on its command's PATH.
expect_eq "kvp-sandbox from the package" "kvpfs-demo-vm /usr/bin/kvpfs" \
    "$(cd / && PATH=/usr/bin:/bin /usr/bin/kvp-sandbox --quiet --sample -- \
        sh -c 'echo "$(kvpctl get parameter VirtualMachineName) $(readlink -f "$(command -v kvpfs)")"' 2>&1)"
unit=/usr/lib/systemd/system/kvpfs.service
check "unit installed" test -f "$unit"
if command -v systemd-analyze >/dev/null; then
    check "systemd-analyze verify kvpfs.service" systemd-analyze verify "$unit"
fi

# --- Mount through mount.fuse3 -------------------------------------------------------------
pool=$work/pool
mnt=$work/mnt
mkdir -p "$pool" "$mnt"
mount -t tmpfs -o size=4m,mode=0755 kvpfs-deb-pool "$pool"
/usr/bin/kvpctl --pool-dir "$pool" init "$pool" --sample >/dev/null
/usr/bin/kvpctl --pool-dir "$pool" set guest FromPackageTest yes
host=$(/usr/bin/kvpctl --pool-dir "$pool" get parameter HostName)

# mounted_checks HOW: the mount at $mnt is kvpfs served by /usr/bin/kvpfs, readable by anyone.
mounted_checks() {
    local how=$1 pid
    check "$how: mounted" wait_until 30 is_mounted "$mnt"
    expect_eq "$how: fstype" fuse.kvpfs "$(findmnt -n -o FSTYPE --mountpoint "$mnt")"
    check "$how: allow_other, default_permissions" bash -c \
        "findmnt -n -o OPTIONS --mountpoint '$mnt' | grep allow_other | grep -q default_permissions"
    pid=$(pids_of_exe /usr/bin/kvpfs "$mnt" | head -n1)
    check "$how: served by /usr/bin/kvpfs (pid ${pid:-none})" test -n "$pid"
    expect_eq "$how: root reads parameter/HostName" "$host" "$(cat "$mnt/parameter/HostName")"
    expect_eq "$how: nobody reads guest/FromPackageTest" yes \
        "$(setpriv --reuid=65534 --regid=65534 --clear-groups cat "$mnt/guest/FromPackageTest")"
    check "$how: root writes guest/" bash -c "echo '$how' > '$mnt/guest/Via'"
    expect_eq "$how: the write is in the pool" "$how" \
        "$(/usr/bin/kvpctl --pool-dir "$pool" get guest Via)"
    check "$how: umount" umount "$mnt"
    check "$how: unmounted" wait_until 30 is_not_mounted "$mnt"
    [[ -z $pid ]] || check "$how: kvpfs exited after umount" wait_until 30 pid_gone "$pid"
}

if mount -t fuse.kvpfs "$pool" "$mnt" -o allow_other 2>"$work/mount.err"; then
    ok "mount -t fuse.kvpfs POOL MNT -o allow_other"
    mounted_checks "mount -t"
else
    fail "mount -t fuse.kvpfs: $(cat "$work/mount.err")"
fi

# The fstab line as docs/install.md gives it, with this test's paths.
line=$(grep -E '^/var/lib/hyperv[[:space:]]+/kvp[[:space:]]+fuse\.kvpfs' "$src/docs/install.md" | head -n1)
check "docs/install.md gives the fstab line" test -n "$line"
if [[ -n $line ]]; then
    say "fstab line: $line"
    read -r _ _ fstype opts rest <<<"$line"
    printf '%s %s %s %s %s\n' "$pool" "$mnt" "$fstype" "$opts" "$rest" >"$work/fstab"
    if mount --fstab "$work/fstab" "$mnt" 2>"$work/mount.err"; then
        ok "mount --fstab FILE MNT"
        mounted_checks "fstab"
    else
        fail "mount --fstab: $(cat "$work/mount.err")"
    fi
fi
# The boot-time variant: nofail and x-systemd.* options are mount(8)'s, kvpfs never sees them.
printf '%s %s fuse.kvpfs allow_other,nofail,x-systemd.after=hv-kvp-daemon.service 0 0\n' \
    "$pool" "$mnt" >"$work/fstab2"
if mount --fstab "$work/fstab2" "$mnt" 2>"$work/mount.err"; then
    ok "mount --fstab with nofail,x-systemd.after"
    mounted_checks "fstab nofail"
else
    fail "mount --fstab with nofail,x-systemd.after: $(cat "$work/mount.err")"
fi
umount "$pool"

# --- Remove --------------------------------------------------------------------------------
files=$(dpkg-query -L kvpfs | while read -r f; do [[ -f $f ]] && echo "$f"; done)
if dpkg -r kvpfs >"$work/dpkg.log" 2>&1; then
    ok "dpkg -r kvpfs"
else
    cat "$work/dpkg.log"
    fail "dpkg -r kvpfs"
fi
# A package with a postrm stays known to dpkg as "config-files" until purged, even without
# conffiles; it must hold no conffile, and the purge must clear it.
status=$(dpkg-query -W -f='${Status}' kvpfs 2>/dev/null)
say "status after dpkg -r: ${status:-unknown}"
expect_eq "no conffiles" "" "$(dpkg-query -W -f='${Conffiles}' kvpfs 2>/dev/null)"
check "dpkg --purge kvpfs" dpkg --purge kvpfs && installed_by_us=no
status=$(dpkg-query -W -f='${Status}' kvpfs 2>/dev/null)
check "package gone (status: ${status:-unknown})" \
    bash -c "[[ -z '$status' || '$status' == *not-installed ]]"
left=$(for f in $files; do [[ -e $f ]] && echo "$f"; done)
expect_eq "no file of the package left ($(wc -w <<<"$files") files installed)" "" "$left"
check "no /usr/share/doc/kvpfs left" test ! -e /usr/share/doc/kvpfs
finish
