#include "pool_open.hpp"

#include <fcntl.h>

#include <cerrno>

#include "error.hpp"
#include "log.hpp"

namespace kvp {

void require_pool_file(const struct stat& st, const std::string& path) {
    if (S_ISDIR(st.st_mode)) {
        throw Error(EISDIR, path + " is a directory, not a pool file");
    }
    if (!S_ISREG(st.st_mode)) {
        throw Error(EINVAL, path + " is not a regular file, so not a pool file");
    }
    if (static_cast<std::uint64_t>(st.st_size) > kMaxPoolFileSize) {
        throw Error(EFBIG, path + " is " + std::to_string(st.st_size) +
                               " bytes, more than any pool file can be (" +
                               std::to_string(kMaxPoolFileSize) + "): not read");
    }
}

OpenedPool open_pool_file(const std::string& path, PoolAccess access, bool check) {
    // A directory opened for writing fails with EISDIR before fstat could say so.
    const int base = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
    const int flags = base | (access == PoolAccess::read ? O_RDONLY : O_RDWR);
    OpenedPool opened;
    for (;;) {
        opened.fd.reset(::open(path.c_str(), flags));
        if (opened.fd) {
            break;
        }
        if (errno == EISDIR) {
            throw Error(EISDIR, path + " is a directory, not a pool file");
        }
        if (errno == ELOOP) {
            throw Error(ELOOP, path + " is a symbolic link; pool files are never followed");
        }
        if (errno != ENOENT) {
            throw_errno("open " + path);
        }
        if (access != PoolAccess::create) {
            return opened;
        }
        opened.fd.reset(::open(path.c_str(), flags | O_CREAT | O_EXCL, 0644));
        if (opened.fd) {
            // The mode is part of the contract, whatever the process's umask.
            if (::fchmod(opened.fd.get(), 0644) != 0) {
                throw_errno("chmod " + path);
            }
            opened.created = true;
            log(LogLevel::info, "created " + path);
            break;
        }
        if (errno != EEXIST) {
            throw_errno("create " + path);
        }
    }
    if (!check) {
        return opened;
    }
    if (::fstat(opened.fd.get(), &opened.st) != 0) {
        throw_errno("fstat " + path);
    }
    require_pool_file(opened.st, path);
    return opened;
}

}  // namespace kvp
