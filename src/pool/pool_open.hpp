#pragma once
// The one way a pool file is opened, by the daemon and by every kvpctl command:
// O_NOFOLLOW (a symlink in a pool file's place is ELOOP, never followed), O_NONBLOCK (a FIFO
// there can never hang the open), then fstat: anything but a regular file is refused with the
// same errno and sentence everywhere, and so is a file larger than any pool could be.

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "unique_fd.hpp"

namespace kvp {

// No real pool comes near this (hv_kvp_daemon's pools hold a few hundred records); past it a
// file is refused rather than read (a 20 GB sparse file costs no disk and would be 8 million
// records).
inline constexpr std::uint64_t kMaxPoolFileSize = 1ULL << 30;  // 1 GiB, 419,430 records

enum class PoolAccess { read, write, create };

struct OpenedPool {
    UniqueFd fd;  // empty when the file does not exist (and `create` was not asked)
    struct stat st {};
    bool created = false;
};

// Opens `path` for `access`. `create` makes a missing file with mode 0644 (whatever the
// umask). ENOENT is not an error (an empty OpenedPool); every other failure throws kvp::Error.
// With `check`, `st` is filled and the file checked by require_pool_file; without it the
// caller does both itself (a change does, under its lock: one fstat instead of two).
[[nodiscard]] OpenedPool open_pool_file(const std::string& path, PoolAccess access,
                                        bool check = true);

// Throws unless `st` is a regular file of at most kMaxPoolFileSize bytes.
void require_pool_file(const struct stat& st, const std::string& path);

}  // namespace kvp
