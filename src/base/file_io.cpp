#include "file_io.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "error.hpp"

namespace kvp {
namespace {

std::atomic<int> injected_errno{0};
std::atomic<int> writes_left{0};

// True when an injected failure applies to this write (errno set).
bool injected_failure() {
    if (injected_errno.load(std::memory_order_relaxed) == 0) {
        return false;
    }
    if (writes_left.fetch_sub(1, std::memory_order_relaxed) > 0) {
        return false;
    }
    errno = injected_errno.exchange(0, std::memory_order_relaxed);
    return errno != 0;
}

}  // namespace

void inject_write_failure(int successes, int errno_value) {
    writes_left.store(successes, std::memory_order_relaxed);
    injected_errno.store(errno_value, std::memory_order_relaxed);
}

void pwrite_all(int fd, const char* data, std::size_t size, off_t offset, const std::string& what) {
    while (size > 0) {
        const ssize_t n = injected_failure() ? -1 : ::pwrite(fd, data, size, offset);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("write to " + what);
        }
        data += n;
        size -= static_cast<std::size_t>(n);
        offset += n;
    }
}

void pread_all(int fd, char* data, std::size_t size, off_t offset, const std::string& what) {
    while (size > 0) {
        const ssize_t n = ::pread(fd, data, size, offset);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            throw Error(n < 0 ? errno : EIO, "read of " + what + " came up short");
        }
        data += n;
        size -= static_cast<std::size_t>(n);
        offset += n;
    }
}

void ftruncate_or_throw(int fd, std::uint64_t size, const std::string& what) {
    while (injected_failure() || ::ftruncate(fd, static_cast<off_t>(size)) != 0) {
        if (errno != EINTR) {
            throw_errno("truncate " + what);
        }
    }
}

}  // namespace kvp
