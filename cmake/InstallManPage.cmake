# Installs one man page at install time (cmake --install, cpack): fills in the version and the
# install prefix actually used (so FILES names /usr/local/... after `cmake --install build`
# and /usr/... in the package) and compresses it with gzip -9n, as Debian installs them.
# Nothing has to be built first: installing works after any build that made the programs.
#   -D SOURCE=docs/man/kvpfs.8.in -D VERSION=0.1.0 -D PREFIX=/usr -D DEST=/abs/dir -D GZIP=gzip
foreach(_var SOURCE VERSION PREFIX DEST GZIP)
  if(NOT DEFINED ${_var})
    message(FATAL_ERROR "InstallManPage.cmake: ${_var} is not set")
  endif()
endforeach()
get_filename_component(_name ${SOURCE} NAME_WE)
get_filename_component(_ext ${SOURCE} EXT)      # ".8.in"
string(REGEX REPLACE "\\.in$" "" _ext ${_ext})   # ".8"
file(READ ${SOURCE} _text)
string(REPLACE "@PROJECT_VERSION@" "${VERSION}" _text "${_text}")
string(REPLACE "@KVPFS_PREFIX@" "${PREFIX}" _text "${_text}")
file(MAKE_DIRECTORY ${DEST})
set(_page ${DEST}/${_name}${_ext})
file(WRITE ${_page} "${_text}")
execute_process(COMMAND ${GZIP} -9 -n -f ${_page} RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "gzip ${_page} failed")
endif()
message(STATUS "Installing: ${_page}.gz")
