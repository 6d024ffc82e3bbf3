#!/usr/bin/env bash
# The RPM package, as built: cpack -G RPM next to cpack -G DEB of the same tree, then rpmlint
# (no error, no warning but the filtered ones of scripts/systemd/rpm/rpmlint.toml, each with
# its reason there), the files (`rpm -qpl` against the .deb's, path by path, and the same
# bytes), the dependencies (`rpm -qpR`: fuse3 by name, libraries by soname, no Boost and no
# Debian package name; the glibc, libstdc++ and libfuse versions docs/install.md states) and
# the scriptlets. Installing it under systemd: rpm_systemd_test.sh.
# Usage: rpm_test.sh BUILD_DIR SOURCE_DIR   (installs nothing; cpack writes into BUILD_DIR)
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/package/lib.sh"

for tool in cpack rpm rpmbuild rpmlint rpm2cpio cpio dpkg-deb; do
    command -v "$tool" >/dev/null || skip "no $tool (scripts/setup.sh installs it)"
done

work=$(mktemp -d /tmp/kvpfs-rpm.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM

# --- Both packages of this build --------------------------------------------------------------
for generator in RPM DEB; do
    if ! (cd "$build" && cpack -G "$generator" -B "$work/cpack") >"$work/cpack.log" 2>&1; then
        cat "$work/cpack.log"
        fail "cpack -G $generator"
        finish
    fi
    # CPack's own warnings (a tag it drops, say) are worth a look.
    expect_eq "cpack -G $generator: no warning" "" "$(grep -i -A3 'warning' "$work/cpack.log")"
done
rpm=$(echo "$work"/cpack/kvpfs-*.rpm)
deb=$(echo "$work"/cpack/kvpfs_*.deb)
check "cpack made $(basename "$rpm")" test -f "$rpm"
check "cpack made $(basename "$deb")" test -f "$deb"
rpm -qpi "$rpm" 2>&1 | sed 's/^/  /'
version=$(dpkg-deb -f "$deb" Version)
expect_eq "rpm version-release as the .deb's version-revision" "$version" \
    "$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$rpm")"
expect_eq "rpm name, license" "kvpfs MIT" "$(rpm -qp --qf '%{NAME} %{LICENSE}' "$rpm")"
expect_eq "not relocatable (no Prefix: tag)" "(none)" "$(rpm -qp --qf '%{PREFIXES}' "$rpm")"

# --- rpmlint -----------------------------------------------------------------------------------
rpmlint -c "$src/scripts/systemd/rpm/rpmlint.toml" "$rpm" >"$work/rpmlint.log" 2>&1
sed 's/^/  /' "$work/rpmlint.log"
summary=$(grep -E '[0-9]+ errors, [0-9]+ warnings' "$work/rpmlint.log")
check "rpmlint ran (${summary:-no summary line})" test -n "$summary"
check "rpmlint: 0 errors" grep -q ' 0 errors,' <<<"$summary"
check "rpmlint: 0 warnings (but the filtered ones)" grep -q ' 0 warnings,' <<<"$summary"
# The release is set at cpack time too (rpm_systemd_test.sh's upgrade builds release 2 so): the
# changelog's entry in the header names the package's own version-release
# (rpmlint's incoherent-version-in-changelog otherwise).
expect_eq "%changelog: the entry of $version" "- $version" \
    "$(rpm -qp --qf '%{CHANGELOGNAME}' "$rpm" | grep -o -- '- [^ ]*$')"
if (cd "$build" && cpack -G RPM -B "$work/cpack-r7" -D CPACK_RPM_PACKAGE_RELEASE=7) >"$work/cpack.log" 2>&1; then
    rpm7=$(echo "$work"/cpack-r7/kvpfs-*.rpm)
    expect_eq "cpack -D CPACK_RPM_PACKAGE_RELEASE=7: version-release" "${version%-*}-7" \
        "$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$rpm7")"
    expect_eq "release 7: the changelog's entry of ${version%-*}-7" "- ${version%-*}-7" \
        "$(rpm -qp --qf '%{CHANGELOGNAME}' "$rpm7" | grep -o -- '- [^ ]*$')"
    rpmlint -c "$src/scripts/systemd/rpm/rpmlint.toml" "$rpm7" >"$work/rpmlint7.log" 2>&1
    expect_eq "release 7: rpmlint finds nothing" "" "$(grep -E '^kvpfs[^ ]*: [EW]: ' "$work/rpmlint7.log")"
else
    cat "$work/cpack.log"
    fail "cpack -G RPM -D CPACK_RPM_PACKAGE_RELEASE=7"
fi

# --- The files, path by path ------------------------------------------------------------------
# deb_to_rpm PATH: where the .deb's file PATH is in the .rpm ("" for none, with the reason).
deb_to_rpm() {
    case $1 in
    # The license where RPM distributions keep it (%license); the Debian copyright file is the
    # same MIT text in Debian's machine-readable format.
    /usr/share/doc/kvpfs/copyright) echo /usr/share/licenses/kvpfs/LICENSE ;;
    # The changelog is in the rpm's header (%changelog).
    /usr/share/doc/kvpfs/changelog.Debian.gz) ;;
    # lintian's overrides; rpmlint's stay in the source tree.
    /usr/share/lintian/overrides/kvpfs) ;;
    *) echo "$1" ;;
    esac
}
# Files and symbolic links (not directories) of each package.
deb_files=$(dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort)
rpm_files=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm" | awk '$1 !~ /^d/ { print $2 }' | sort)
rpm_dirs=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]' "$rpm" | awk '$1 ~ /^d/ { print $2 }' | sort)
mapped=$(for f in $deb_files; do deb_to_rpm "$f"; done | sort)
say "the .deb's files, mapped: $(wc -l <<<"$mapped"); the .rpm's: $(wc -l <<<"$rpm_files")"
expect_eq "rpm -qpl: the .deb's files, mapped path by path" "$mapped" "$rpm_files"
# The package owns its own directories, none of the file system's.
expect_eq "rpm -qpl: the directories it owns" \
    "/usr/share/doc/kvpfs /usr/share/licenses/kvpfs" "$(paste -sd' ' - <<<"$rpm_dirs")"
expect_eq "every file root:root" "" \
    "$(rpm -qp --qf '[%{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm" | grep -v '^root:root ')"
expect_eq "rpm -qpL: the license" /usr/share/licenses/kvpfs/LICENSE "$(rpm -qpL "$rpm")"
expect_eq "rpm -qpd: the docs and man pages" \
    "/usr/share/doc/kvpfs/behaviour.md /usr/share/doc/kvpfs/containers.md /usr/share/doc/kvpfs/install.md /usr/share/man/man1/kvp-host.1.gz /usr/share/man/man1/kvp-sandbox.1.gz /usr/share/man/man1/kvpctl.1.gz /usr/share/man/man8/kvpfs.8.gz" \
    "$(rpm -qpd "$rpm" | sort | paste -sd' ' -)"
# The same bytes, but for the programs (rpmbuild strips them again) and the license files.
mkdir -p "$work/deb" "$work/rpm"
dpkg-deb -x "$deb" "$work/deb"
(cd "$work/rpm" && rpm2cpio "$rpm" | cpio -idm --quiet)
for f in $rpm_files; do
    case $f in
    /usr/bin/*) check "$f: an executable program" test -x "$work/rpm$f" ;;
    /usr/share/licenses/kvpfs/LICENSE) check "$f: the LICENSE file" cmp "$src/LICENSE" "$work/rpm$f" ;;
    *) check "$f: the same bytes as in the .deb" cmp "$work/deb$f" "$work/rpm$f" ;;
    esac
done

# --- What it requires -------------------------------------------------------------------------
requires=$(rpm -qpR "$rpm" | sort -u)
say "rpm -qpR:"
sed 's/^/  /' <<<"$requires"
check "requires fuse3 (mount.fuse3, fusermount3)" grep -qx fuse3 <<<"$requires"
check "requires libfuse3.so.3 by soname" grep -qx 'libfuse3.so.3()(64bit)' <<<"$requires"
if static_boost "$build"; then
    expect_eq "no Boost library" "" "$(grep -i boost <<<"$requires")"
fi
# The .deb's dependencies but fuse3 are Debian's package names (libc6, libfuse3-3, ...).
debian_names=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -e 's/(.*)//' -e 's/[[:space:]]//g' |
    grep -v -x -e '' -e fuse3)
say "Debian names in the .deb's Depends: $(paste -sd' ' - <<<"$debian_names")"
expect_eq "no Debian package name" "" "$(grep -x -F -f <(printf '%s\n' "$debian_names") <<<"$requires")"
expect_eq "only sonames, fuse3, /bin/sh (scriptlets), /bin/bash (kvp-sandbox), rpmlib() and rtld()" "" \
    "$(grep -v -E '^(fuse3|/bin/sh|/bin/bash|rpmlib\(.*|rtld\(GNU_HASH\)|lib[a-z0-9_+]+\.so\.[0-9]+\(.*\)\(64bit\))$' <<<"$requires")"
# highest SONAME PREFIX: the highest symbol version PREFIX_x.y required of library SONAME.
highest() {
    sed -n "s/^$1(${2}_\([0-9.]*\))(64bit)\$/\1/p" <<<"$requires" | sort -V | tail -n1
}
glibc=$(highest 'libc\.so\.6' GLIBC)
glibcxx=$(highest 'libstdc++\.so\.6' GLIBCXX)
fuse=$(highest 'libfuse3\.so\.3' FUSE)
say "needs glibc $glibc, libstdc++ GLIBCXX_$glibcxx, libfuse FUSE_$fuse"
# docs/install.md names these minimums and the distributions that meet them: a build that
# needs more must say so there.
for need in "glibc $glibc" "GLIBCXX_$glibcxx" "libfuse $fuse"; do
    check "docs/install.md states '$need'" grep -qF "$need" "$src/docs/install.md"
done

# --- The scriptlets ---------------------------------------------------------------------------
rpm -qp --scripts "$rpm" >"$work/scripts"
for s in postinstall preuninstall postuninstall; do
    check "a $s scriptlet" grep -q "^$s scriptlet" "$work/scripts"
done
check "no pre-install scriptlet" bash -c "! grep -q '^preinstall scriptlet' '$work/scripts'"
for f in post preun postun; do
    check "the scriptlet of scripts/systemd/rpm/$f is in the package" \
        grep -qF "$(grep -m1 '^# kvpfs %' "$src/scripts/systemd/rpm/$f")" "$work/scripts"
done
check "sh -n: the scriptlets parse" bash -c "for f in '$src'/scripts/systemd/rpm/{post,preun,postun}; do sh -n \"\$f\" || exit 1; done"
finish
