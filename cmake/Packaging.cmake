# Install rules for what is not a program (man pages, the systemd unit, the docs) and the
# CPack configuration of the Debian package. The programs' own install(TARGETS ...) rules
# live next to their targets (src/fuse, src/kvpctl).
#
#   cmake --install build [--prefix /usr/local]   # programs, man pages, unit, docs
#   cpack --config build/CPackConfig.cmake -G DEB # kvpfs_<version>_<arch>.deb
include(GNUInstallDirs)

# cpack (and `make install`) install what is built and do not build "all" first: the .deb
# test packages the tree the suite is testing, without rebuilding every test target.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

# --- Man pages ------------------------------------------------------------------------------
# The version in their header comes from project(); they are compressed with gzip -9n at
# build time, as Debian installs them.
find_program(KVPFS_GZIP gzip REQUIRED)
set(_kvpfs_man_dir ${CMAKE_BINARY_DIR}/man)
set(_kvpfs_man_pages "")
foreach(_page IN ITEMS kvpfs.8 kvpctl.1)
  configure_file(${PROJECT_SOURCE_DIR}/docs/man/${_page} ${_kvpfs_man_dir}/${_page} @ONLY)
  set(_gz ${_kvpfs_man_dir}/${_page}.gz)
  add_custom_command(
    OUTPUT ${_gz}
    COMMAND ${KVPFS_GZIP} -9 -n -c ${_kvpfs_man_dir}/${_page} > ${_gz}
    DEPENDS ${_kvpfs_man_dir}/${_page}
    COMMENT "Compressing man page ${_page}")
  list(APPEND _kvpfs_man_pages ${_gz})
  string(REGEX MATCH "[0-9]+$" _section ${_page})
  install(FILES ${_gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${_section})
endforeach()
add_custom_target(kvpfs_man_pages ALL DEPENDS ${_kvpfs_man_pages})

# --- systemd unit ----------------------------------------------------------------------------
# <prefix>/lib/systemd/system: /usr/lib/systemd/system in the package, and
# /usr/local/lib/systemd/system for the default prefix; systemd reads both.
install(FILES ${PROJECT_SOURCE_DIR}/scripts/systemd/kvpfs.service
              ${PROJECT_SOURCE_DIR}/scripts/systemd/kvpfs-share@.service
        DESTINATION lib/systemd/system)

# --- Docs ------------------------------------------------------------------------------------
install(FILES ${PROJECT_SOURCE_DIR}/docs/install.md ${PROJECT_SOURCE_DIR}/docs/containers.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

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
