#pragma once
// What /proc says about a process, for tests that must know that another thread or process
// has reached a step (instead of sleeping and hoping it has). The engine opens a pool file
// for each operation and closes it after, so a descriptor on the pool means "that operation
// has started" (it may be waiting for the lock: locks are taken by polling, which leaves no
// waiter in /proc/locks).

#include <sys/types.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace kvptest {

// How many descriptors process `pid` holds open on `path`.
inline int descriptors_on(pid_t pid, const std::string& path) {
    int n = 0;
    std::error_code ec;
    for (const auto& entry :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
        std::error_code link_ec;
        if (std::filesystem::read_symlink(entry.path(), link_ec) == path) {
            ++n;
        }
    }
    return n;
}

inline int descriptors_on(const std::string& path) {
    return descriptors_on(::getpid(), path);
}

}  // namespace kvptest
