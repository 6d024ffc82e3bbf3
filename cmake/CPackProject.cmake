# Read by cpack once per generator (CPACK_PROJECT_CONFIG_FILE, cmake/Packaging.cmake): each
# package takes the common install component and its own, never the other's.
#   DEB: + "debian" (/usr/share/doc/kvpfs/copyright, changelog.Debian.gz, lintian overrides)
#   RPM: + "rpm"    (/usr/share/licenses/kvpfs/LICENSE), and the %changelog of its release
if(CPACK_GENERATOR STREQUAL "DEB")
  set(_kvpfs_own debian)
elseif(CPACK_GENERATOR STREQUAL "RPM")
  set(_kvpfs_own rpm)
  # %changelog: its entry names this package's version-release, the release as cpack has it
  # (a -D CPACK_RPM_PACKAGE_RELEASE=N included; rpmlint's incoherent-version-in-changelog
  # otherwise). In the build directory, one file per version-release.
  set(PROJECT_VERSION ${CPACK_PACKAGE_VERSION})
  set(KVPFS_RPM_RELEASE ${CPACK_RPM_PACKAGE_RELEASE})
  set(CPACK_RPM_CHANGELOG_FILE
      ${CPACK_KVPFS_BINARY_DIR}/rpm/changelog-${CPACK_PACKAGE_VERSION}-${CPACK_RPM_PACKAGE_RELEASE})
  configure_file(${CPACK_KVPFS_RPM_CHANGELOG_IN} ${CPACK_RPM_CHANGELOG_FILE} @ONLY)
else()
  set(_kvpfs_own "")
endif()
set(CPACK_INSTALL_CMAKE_PROJECTS "${CPACK_KVPFS_BINARY_DIR};kvpfs;Unspecified;/")
if(_kvpfs_own)
  list(APPEND CPACK_INSTALL_CMAKE_PROJECTS "${CPACK_KVPFS_BINARY_DIR};kvpfs;${_kvpfs_own};/")
endif()
