#include "test_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/filesystem/operations.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>

namespace kvptest {
namespace {

[[noreturn]] void fail_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

std::mutex& log_mutex() {
    static std::mutex m;
    return m;
}

std::vector<LogLine>& log_lines() {
    static std::vector<LogLine> lines;
    return lines;
}

class LogEnvironment : public ::testing::Environment {
  public:
    void SetUp() override {
        kvp::set_log_debug(true);
        kvp::set_log_sink([](kvp::LogLevel level, const std::string& text) {
            std::lock_guard lock(log_mutex());
            log_lines().push_back({level, text});
        });
    }
};

[[maybe_unused]] ::testing::Environment* const kLogEnvironment =
    ::testing::AddGlobalTestEnvironment(new LogEnvironment);

void write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail_errno("write");
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

}  // namespace

std::string read_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail_errno("open " + path);
    }
    std::string bytes;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            ::close(fd);
            fail_errno("read " + path);
        }
        if (n == 0) {
            break;
        }
        bytes.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return bytes;
}

void write_file(const std::string& path, std::string_view bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        fail_errno("open " + path);
    }
    write_all(fd, bytes.data(), bytes.size());
    ::close(fd);
}

struct stat stat_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        fail_errno("stat " + path);
    }
    return st;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

void set_mtime(const std::string& path, struct timespec mtime) {
    const struct timespec times[2] = {{0, UTIME_OMIT}, mtime};
    if (::utimensat(AT_FDCWD, path.c_str(), times, 0) != 0) {
        fail_errno("utimensat " + path);
    }
}

bool same_time(struct timespec a, struct timespec b) {
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

std::string to_string(struct timespec t) {
    char nsec[16];
    std::snprintf(nsec, sizeof nsec, "%09ld", static_cast<long>(t.tv_nsec));
    return std::to_string(t.tv_sec) + "." + nsec;
}

std::string repeat(std::string_view unit, std::size_t n) {
    std::string s;
    s.reserve(unit.size() * n);
    for (std::size_t i = 0; i < n; ++i) {
        s.append(unit);
    }
    return s;
}

pid_t fork_child(const std::function<int()>& body) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        fail_errno("fork");
    }
    if (pid == 0) {
        int status = 99;
        try {
            status = body();
        } catch (...) {
            status = 98;
        }
        ::_exit(status);
    }
    return pid;
}

int wait_child(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fail_errno("waitpid");
        }
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

int run_in_child(const std::function<int()>& body) {
    return wait_child(fork_child(body));
}

LockHolder::LockHolder(const std::string& path, LockKind kind,
                       std::function<void(int fd)> while_locked,
                       std::function<void(int fd)> once_locked) {
    int ready[2];
    int release[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) {
        fail_errno("pipe2");
    }
    if (::pipe2(release, O_CLOEXEC) != 0) {
        fail_errno("pipe2");
    }
    pid_ = fork_child([&]() -> int {
        ::close(ready[0]);
        ::close(release[1]);
        const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            return 10;
        }
        struct flock fl {};
        fl.l_whence = SEEK_SET;
        switch (kind) {
            case LockKind::fcntl_read:
            case LockKind::fcntl_write:
                fl.l_type = kind == LockKind::fcntl_read ? F_RDLCK : F_WRLCK;
                if (::fcntl(fd, F_SETLKW, &fl) != 0) {
                    return 11;
                }
                break;
            case LockKind::flock_shared:
                if (::flock(fd, LOCK_SH) != 0) {
                    return 12;
                }
                break;
            case LockKind::flock_exclusive:
                if (::flock(fd, LOCK_EX) != 0) {
                    return 12;
                }
                break;
        }
        if (once_locked) {
            once_locked(fd);
        }
        const char byte = 'L';
        if (::write(ready[1], &byte, 1) != 1) {
            return 13;
        }
        char got = 0;
        while (::read(release[0], &got, 1) < 0 && errno == EINTR) {
        }
        if (while_locked) {
            while_locked(fd);
        }
        // Unlock explicitly before closing, as the writers being imitated do.
        if (kind == LockKind::fcntl_read || kind == LockKind::fcntl_write) {
            fl.l_type = F_UNLCK;
            ::fcntl(fd, F_SETLK, &fl);
        } else {
            ::flock(fd, LOCK_UN);
        }
        ::close(fd);
        return 0;
    });
    ::close(ready[1]);
    ::close(release[0]);
    release_fd_ = release[1];
    char byte = 0;
    ssize_t n;
    while ((n = ::read(ready[0], &byte, 1)) < 0 && errno == EINTR) {
    }
    ::close(ready[0]);
    if (n != 1) {
        ::close(release_fd_);
        const int status = wait_child(pid_);
        released_ = true;
        throw std::runtime_error("lock holder failed to lock, status " + std::to_string(status));
    }
}

int LockHolder::release() {
    if (released_) {
        return -1;
    }
    released_ = true;
    const char byte = 'R';
    (void)!::write(release_fd_, &byte, 1);
    ::close(release_fd_);
    return wait_child(pid_);
}

LockHolder::~LockHolder() {
    if (!released_) {
        release();
    }
}

std::vector<std::string> dir_entries(const std::string& dir) {
    std::vector<std::string> names;
    for (const auto& entry : boost::filesystem::directory_iterator(dir)) {
        names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<LogLine> captured_log() {
    std::lock_guard lock(log_mutex());
    return log_lines();
}

void clear_captured_log() {
    std::lock_guard lock(log_mutex());
    log_lines().clear();
}

void PoolDirTest::SetUp() {
    char tmpl[] = "/dev/shm/kvp-engine-test-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        fail_errno("mkdtemp");
    }
    dir_ = tmpl;
    clear_captured_log();
}

void PoolDirTest::TearDown() {
    boost::system::error_code ec;
    boost::filesystem::remove_all(dir_, ec);
}

}  // namespace kvptest
