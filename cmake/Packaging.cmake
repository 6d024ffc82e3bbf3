# Install rules for what is not a program (man pages, the systemd unit, the docs) and the
# CPack configuration of the Debian and RPM packages. The programs' own install(TARGETS ...)
# rules live next to their targets (src/fuse, src/kvpctl, src/hostsim).
#
#   cmake --install build [--prefix /usr/local]   # programs, man pages, unit, docs, license
#   cpack --config build/CPackConfig.cmake -G DEB # kvpfs_<version>_<arch>.deb
#   cpack --config build/CPackConfig.cmake -G RPM # kvpfs-<version>-<release>.<arch>.rpm
#
# Install components: what both packages hold has none (CMake's "Unspecified"); the Debian
# license files and lintian overrides are "debian", the license as RPM distributions place it
# is "rpm". `cmake --install` installs all three; each package takes its own
# (cmake/CPackProject.cmake).
include(GNUInstallDirs)

# cpack (and `make install`) install what is built and do not build "all" first: the .deb
# test packages the tree the suite is testing, without rebuilding every test target.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

# --- Man pages ------------------------------------------------------------------------------
# Made at install time (cmake/InstallManPage.cmake): the version from project(), and in FILES
# the prefix the install really uses; compressed with gzip -9n, as Debian installs them.
find_program(KVPFS_GZIP gzip REQUIRED)
foreach(_page IN ITEMS kvpfs.8 kvpctl.1 kvp-host.1 kvp-sandbox.1)
  string(REGEX MATCH "[0-9]+$" _section ${_page})
  install(CODE "
    set(_dest \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_MANDIR}/man${_section}\")
    if(DEFINED ENV{DESTDIR})
      set(_dest \"\$ENV{DESTDIR}\${_dest}\")
    endif()
    execute_process(
      COMMAND \"${CMAKE_COMMAND}\"
              -D SOURCE=${PROJECT_SOURCE_DIR}/docs/man/${_page}.in
              -D VERSION=${PROJECT_VERSION}
              -D \"PREFIX=\${CMAKE_INSTALL_PREFIX}\"
              -D \"DEST=\${_dest}\"
              -D GZIP=${KVPFS_GZIP}
              -P ${PROJECT_SOURCE_DIR}/cmake/InstallManPage.cmake
      RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR \"installing the man page ${_page} failed\")
    endif()
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${_dest}/${_page}.gz\")
  ")
endforeach()

# --- systemd unit ----------------------------------------------------------------------------
# <prefix>/lib/systemd/system: /usr/lib/systemd/system in the package, and
# /usr/local/lib/systemd/system for the default prefix; systemd reads both.
install(FILES ${PROJECT_SOURCE_DIR}/scripts/systemd/kvpfs.service
              ${PROJECT_SOURCE_DIR}/scripts/systemd/kvpfs-share@.service
        DESTINATION lib/systemd/system)

# --- Docs ------------------------------------------------------------------------------------
# behaviour.md is what the man pages point at for the full rules.
install(FILES ${PROJECT_SOURCE_DIR}/docs/install.md ${PROJECT_SOURCE_DIR}/docs/containers.md
              ${PROJECT_SOURCE_DIR}/docs/behaviour.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# --- The sandbox for test authors --------------------------------------------------------------
# kvp-sandbox runs a command against a throw-away kvpfs; installed, it uses the installed
# kvpfs and kvpctl (found on PATH).
install(PROGRAMS ${PROJECT_SOURCE_DIR}/scripts/kvp-sandbox DESTINATION bin)

# --- License, and what Debian wants beside it -------------------------------------------------
# /usr/share/doc/kvpfs/copyright (machine-readable, the MIT text of LICENSE) and
# changelog.Debian.gz: lintian's no-copyright-file and no-changelog otherwise.
set(KVPFS_DEB_RELEASE 1)
set(KVPFS_DEB_VERSION ${PROJECT_VERSION}-${KVPFS_DEB_RELEASE})
set(_kvpfs_deb_dir ${CMAKE_BINARY_DIR}/debian)
file(READ ${PROJECT_SOURCE_DIR}/LICENSE _kvpfs_license)
string(REGEX REPLACE "^MIT License\n\n" "" _kvpfs_license "${_kvpfs_license}")
string(REGEX MATCH "Copyright \\(c\\) [^\n]*" _kvpfs_copyright_line "${_kvpfs_license}")
string(REGEX REPLACE "^Copyright \\(c\\) " "" _kvpfs_copyright_holder "${_kvpfs_copyright_line}")
# The license text as a DEP-5 paragraph: each line indented, empty lines as " .".
string(REGEX REPLACE "\n\n" "\n.\n" _kvpfs_license_body "${_kvpfs_license}")
string(REGEX REPLACE "\n" "\n " _kvpfs_license_body "${_kvpfs_license_body}")
string(STRIP "${_kvpfs_license_body}" _kvpfs_license_body)
file(WRITE ${_kvpfs_deb_dir}/copyright
"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: kvpfs

Files: *
Copyright: ${_kvpfs_copyright_holder}
License: Expat
 ${_kvpfs_license_body}
")
configure_file(${PROJECT_SOURCE_DIR}/scripts/systemd/debian/changelog.in
               ${_kvpfs_deb_dir}/changelog.Debian @ONLY)
execute_process(COMMAND ${KVPFS_GZIP} -9 -n -c ${_kvpfs_deb_dir}/changelog.Debian
                OUTPUT_FILE ${_kvpfs_deb_dir}/changelog.Debian.gz RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "gzip of the Debian changelog failed")
endif()
install(FILES ${_kvpfs_deb_dir}/copyright ${_kvpfs_deb_dir}/changelog.Debian.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT debian)
# Lintian's tags that do not apply, each with its reason in the file.
install(FILES ${PROJECT_SOURCE_DIR}/scripts/systemd/debian/lintian-overrides
        DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME kvpfs COMPONENT debian)

# --- License and changelog, the RPM way --------------------------------------------------------
# RPM distributions keep a package's license in /usr/share/licenses/NAME (%license), and its
# changelog in the package header (%changelog), not in a file.
install(FILES ${PROJECT_SOURCE_DIR}/LICENSE
        DESTINATION ${CMAKE_INSTALL_DATADIR}/licenses/kvpfs COMPONENT rpm)
# The changelog's entry names the version-release packaged: made at cpack time
# (cmake/CPackProject.cmake), so that a release set there (cpack -D
# CPACK_RPM_PACKAGE_RELEASE=2, as the upgrade test does) is the one it names.
set(KVPFS_RPM_RELEASE 1)
set(CPACK_KVPFS_RPM_CHANGELOG_IN ${PROJECT_SOURCE_DIR}/scripts/systemd/rpm/changelog.in)

# --- Both packages ---------------------------------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "kvpfs")
set(CPACK_PACKAGE_VENDOR "kvpfs maintainers")
set(CPACK_PACKAGE_CONTACT "kvpfs maintainers <kvpfs@example.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "FUSE file system for Hyper-V KVP pool files")
set(_kvpfs_description
    "kvpfs shows the Hyper-V key-value pair exchange pools of /var/lib/hyperv as\n\
files under /kvp/{external,guest,auto,parameter}/KEY. kvpctl lists, reads and\n\
edits the pool files directly, with the same locks as hv_kvp_daemon.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
# Which install components each generator packages (read by cpack, once per generator).
set(CPACK_KVPFS_BINARY_DIR ${CMAKE_BINARY_DIR})
set(CPACK_PROJECT_CONFIG_FILE ${PROJECT_SOURCE_DIR}/cmake/CPackProject.cmake)

# --- The Debian package ----------------------------------------------------------------------
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "${_kvpfs_description}")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${KVPFS_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# The libraries (libfuse3-3, libstdc++6, libgcc-s1, libc6; Boost is linked statically) come
# from dpkg-shlibdeps with their real minimum versions. fuse3 is named by hand: it brings
# mount.fuse3 (for mount -t fuse.kvpfs and the fstab line) and fusermount3.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "hyperv-daemons")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/scripts/systemd/debian/postinst
    ${PROJECT_SOURCE_DIR}/scripts/systemd/debian/prerm
    ${PROJECT_SOURCE_DIR}/scripts/systemd/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# --- The RPM package -------------------------------------------------------------------------
# kvpfs-<version>-<release>.<arch>.rpm, built by rpmbuild (Debian's package rpm has it). The
# same files as the .deb at the same paths (RPM distributions also keep units in
# /usr/lib/systemd/system), but the license in /usr/share/licenses/kvpfs and no Debian files.
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_RELEASE ${KVPFS_RPM_RELEASE})
set(CPACK_RPM_PACKAGE_LICENSE "MIT")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_DESCRIPTION "${_kvpfs_description}")
# rpmbuild adds the libraries by soname and symbol version (AutoReq), which every RPM
# distribution's library packages provide under their own names: libfuse3.so.3(FUSE_3.12)
# (fuse3-libs on Azure Linux, Fedora and RHEL, libfuse3-3 on openSUSE),
# libstdc++.so.6(GLIBCXX_3.4.30), libc.so.6(GLIBC_2.34). No Boost library: it is linked
# statically (CMakeLists.txt). fuse3 is named by hand, as in the .deb: it brings mount.fuse3
# and fusermount3 (package fuse3 on all of them).
set(CPACK_RPM_PACKAGE_REQUIRES "fuse3")
# Not relocatable (no Prefix: tag): the package installs under /usr only, where the units
# and the man pages expect the programs. (CPack makes an RPM relocatable when either is set.)
set(CPACK_PACKAGE_RELOCATABLE OFF)
set(CPACK_RPM_PACKAGE_RELOCATABLE OFF)
# - no /usr/lib/.build-id links: the package holds the .deb's files and no others;
# - the Packager tag (rpmlint's no-packager-tag);
# - Suggests written here: CPack 3.25 drops CPACK_RPM_PACKAGE_SUGGESTS with the rpmbuild of
#   Debian 12 (4.18), which does support it. hyperv-daemons is the name on Azure Linux and
#   Fedora too.
set(CPACK_RPM_SPEC_MORE_DEFINE "%define _build_id_links none
%define packager ${CPACK_PACKAGE_CONTACT}
Suggests: hyperv-daemons")
# The directories of the file system (systemd's, man's, licenses) belong to other packages.
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
    /usr/lib/systemd /usr/lib/systemd/system /usr/share/man /usr/share/man/man1
    /usr/share/man/man8 /usr/share/licenses)
set(CPACK_RPM_USER_FILELIST
    "%license /usr/share/licenses/kvpfs/LICENSE"
    "%doc /usr/share/doc/kvpfs/install.md"
    "%doc /usr/share/doc/kvpfs/containers.md")
# What the Debian maintainer scripts do, with rpm's $1 (scripts/systemd/rpm).
set(CPACK_RPM_POST_INSTALL_SCRIPT_FILE ${PROJECT_SOURCE_DIR}/scripts/systemd/rpm/post)
set(CPACK_RPM_PRE_UNINSTALL_SCRIPT_FILE ${PROJECT_SOURCE_DIR}/scripts/systemd/rpm/preun)
set(CPACK_RPM_POST_UNINSTALL_SCRIPT_FILE ${PROJECT_SOURCE_DIR}/scripts/systemd/rpm/postun)
include(CPack)
