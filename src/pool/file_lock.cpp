#include "file_lock.hpp"
#include "ranked_mutex.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "error.hpp"

namespace kvp {
namespace {

using Clock = std::chrono::steady_clock;

bool try_flock(int fd, LockMode mode) {
    const int op = (mode == LockMode::shared ? LOCK_SH : LOCK_EX) | LOCK_NB;
    while (::flock(fd, op) != 0) {
        if (errno == EWOULDBLOCK) {
            return false;
        }
        if (errno != EINTR) {
            throw_errno("flock");
        }
    }
    return true;
}

struct flock whole_file(short type) {
    struct flock fl {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0;  // to the end, however the file grows
    return fl;
}

bool try_record_lock(int fd, LockMode mode) {
    struct flock fl = whole_file(mode == LockMode::shared ? F_RDLCK : F_WRLCK);
    while (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
        if (errno == EAGAIN || errno == EACCES) {
            return false;
        }
        if (errno != EINTR) {
            throw_errno("fcntl(F_OFD_SETLK)");
        }
    }
    return true;
}

// Polls a non-blocking attempt with a growing pause: the kernel has no timed lock wait, and a
// timer signal would disturb the daemon's other threads. The first pauses are short: most
// waits are for a change that is being finished (a writer's unlock after its last write,
// the mount's own change), and a reader woken by that write should not oversleep it.
template <typename Attempt>
bool wait_for(Attempt attempt, Clock::time_point deadline) {
    auto pause = std::chrono::microseconds(10);
    while (!attempt()) {
        const auto now = Clock::now();
        if (now >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::min<Clock::duration>(pause, deadline - now));
        pause = std::min(pause * 2, std::chrono::microseconds(5000));
    }
    return true;
}

long flock_holder_from_proc(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return 0;
    }
    std::ifstream locks("/proc/locks");
    std::string line;
    char wanted[64];
    std::snprintf(wanted, sizeof wanted, "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev),
                  static_cast<unsigned long long>(st.st_ino));
    while (std::getline(locks, line)) {
        // "1: FLOCK  ADVISORY  WRITE 1234 00:2f:5678 0 EOF"
        std::istringstream fields(line);
        std::string id, kind, advisory, access, device;
        long pid = 0;
        if (!(fields >> id >> kind >> advisory >> access >> pid >> device)) {
            continue;
        }
        if (kind == "FLOCK" && device == wanted && pid > 0) {
            return pid;
        }
    }
    return 0;
}

}  // namespace

long lock_holder_pid(int fd, LockMode wanted) {
    struct flock fl = whole_file(wanted == LockMode::shared ? F_RDLCK : F_WRLCK);
    if (::fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK && fl.l_pid > 0) {
        return fl.l_pid;
    }
    return flock_holder_from_proc(fd);
}

FileLock::FileLock(int fd, LockMode mode, std::chrono::milliseconds timeout,
                   const std::string& what)
    : FileLock(fd, mode, Clock::now() + timeout, what) {}

FileLock::FileLock(int fd, LockMode mode, Clock::time_point deadline, const std::string& what)
    : fd_(fd) {
    if constexpr (lock_order::kChecked) {
        lock_order::check(LockRank::pool_file_lock);
    }
    const auto started = Clock::now();
    const auto fail = [&](const char* family) {
        const long holder = lock_holder_pid(fd, mode);
        const auto waited =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
        std::string message = "timed out after " + std::to_string(waited.count()) +
                              " ms waiting for the " + family + " lock on " + what;
        message += holder > 0 ? " (held by PID " + std::to_string(holder) + ")"
                              : " (holder's PID not reported by the kernel)";
        throw Error(EAGAIN, message);  // the caller logs it, once, naming what it was doing
    };
    if (!wait_for([&] { return try_flock(fd, mode); }, deadline)) {
        fail("flock");
    }
    have_flock_ = true;
    try {
        if (!wait_for([&] { return try_record_lock(fd, mode); }, deadline)) {
            fail("fcntl record");
        }
    } catch (...) {
        ::flock(fd_, LOCK_UN);
        throw;
    }
    have_record_lock_ = true;
    if constexpr (lock_order::kChecked) {
        lock_order::acquired(LockRank::pool_file_lock);
    }
}

FileLock::~FileLock() {
    if constexpr (lock_order::kChecked) {
        if (have_record_lock_) {
            lock_order::released(LockRank::pool_file_lock);
        }
    }
    if (have_record_lock_) {
        struct flock fl = whole_file(F_UNLCK);
        ::fcntl(fd_, F_OFD_SETLK, &fl);
    }
    if (have_flock_) {
        ::flock(fd_, LOCK_UN);
    }
}

}  // namespace kvp
