# Install rules for what is not a program (man pages, the systemd unit, the docs) and the
# CPack configuration of the Debian package. The programs' own install(TARGETS ...) rules
# live next to their targets (src/fuse, src/kvpctl, src/hostsim).
#
#   cmake --install build [--prefix /usr/local]   # programs, man pages, unit, docs
#   cpack --config build/CPackConfig.cmake -G DEB # kvpfs_<version>_<arch>.deb
include(GNUInstallDirs)

# cpack (and `make install`) install what is built and do not build "all" first: the .deb
# test packages the tree the suite is testing, without rebuilding every test target.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

# --- Man pages ------------------------------------------------------------------------------
# Made at install time (cmake/InstallManPage.cmake): the version from project(), and in FILES
# the prefix the install really uses; compressed with gzip -9n, as Debian installs them.
find_program(KVPFS_GZIP gzip REQUIRED)
foreach(_page IN ITEMS kvpfs.8 kvpctl.1 kvp-host.1)
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
install(FILES ${PROJECT_SOURCE_DIR}/docs/install.md ${PROJECT_SOURCE_DIR}/docs/containers.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

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
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
# Lintian's tags that do not apply, each with its reason in the file.
install(FILES ${PROJECT_SOURCE_DIR}/scripts/systemd/debian/lintian-overrides
        DESTINATION ${CMAKE_INSTALL_DATADIR}/lintian/overrides RENAME kvpfs)

# --- The Debian package ----------------------------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "kvpfs")
set(CPACK_PACKAGE_VENDOR "kvpfs maintainers")
set(CPACK_PACKAGE_CONTACT "kvpfs maintainers <kvpfs@example.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "FUSE file system for Hyper-V KVP pool files")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "kvpfs shows the Hyper-V key-value pair exchange pools of /var/lib/hyperv as\n\
files under /kvp/{external,guest,auto,parameter}/KEY. kvpctl lists, reads and\n\
edits the pool files directly, with the same locks as hv_kvp_daemon.")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${KVPFS_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# The libraries (libfuse3-3, libboost-filesystem1.xx, libstdc++6, libc6) come from
# dpkg-shlibdeps with their real minimum versions. fuse3 is named by hand: it brings
# mount.fuse3 (for mount -t fuse.kvpfs and the fstab line) and fusermount3.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fuse3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "hyperv-daemons")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/scripts/systemd/debian/postinst
    ${PROJECT_SOURCE_DIR}/scripts/systemd/debian/prerm
    ${PROJECT_SOURCE_DIR}/scripts/systemd/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
