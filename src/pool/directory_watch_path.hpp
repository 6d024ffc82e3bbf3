#pragma once
// What DirectoryWatch needs to follow the pool directory by its path (directory_watch_path.cpp).

#include <sys/stat.h>

#include <string>

#include "unique_fd.hpp"

namespace kvp {

// stat() of `path`, true only when it is a directory.
bool stat_directory(const std::string& path, struct stat& st);

// The mount-info file of this process's mount namespace, open for poll(): it reports POLLPRI
// once after each mount or unmount. Empty when it cannot be opened (no /proc).
UniqueFd open_mount_table();

}  // namespace kvp
