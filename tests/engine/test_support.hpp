#pragma once
// Shared helpers of the engine tests: a fresh pool directory on tmpfs per test, pool
// bytes built and decoded independently of the engine (pool_codec.hpp), forked processes that hold
// locks the way other KVP writers do, and a capture of the engine's log lines.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <cstddef>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "error.hpp"
#include "log.hpp"
#include "pool_codec.hpp"
#include "process_probes.hpp"
#include "wait_bounds.hpp"

namespace kvptest {

std::string read_file(const std::string& path);
// Creates or truncates `path` (mode 0644) and writes `bytes` with plain syscalls.
void write_file(const std::string& path, std::string_view bytes);
struct stat stat_of(const std::string& path);
bool exists(const std::string& path);
void set_mtime(const std::string& path, struct timespec mtime);
bool same_time(struct timespec a, struct timespec b);
std::string to_string(struct timespec t);

// A string of `n` copies of `unit`.
std::string repeat(std::string_view unit, std::size_t n);

// Runs `body` in a forked child; its return value becomes the exit status. The child never
// returns into the test framework (it leaves with _exit).
pid_t fork_child(const std::function<int()>& body);
// Waits for the child; its exit status, or 128 + signal number when it was killed.
int wait_child(pid_t pid);
// fork_child + wait_child.
int run_in_child(const std::function<int()>& body);

enum class LockKind { fcntl_read, fcntl_write, flock_shared, flock_exclusive };

// A forked process that opens `path` read-write, takes one lock of `kind` (blocking, the
// way hv_kvp_daemon, the seed samples or cloud-init take it), tells the parent through a
// pipe that it holds it, and keeps it until `release()`. `while_locked`, if given, runs in
// the child with the lock still held, right before it unlocks (it gets the child's fd).
class LockHolder {
  public:
    // `once_locked`, if given, runs in the child right after it took the lock, before it
    // tells the parent (a writer's first half of a change).
    LockHolder(const std::string& path, LockKind kind,
               std::function<void(int fd)> while_locked = {},
               std::function<void(int fd)> once_locked = {});
    LockHolder(const LockHolder&) = delete;
    LockHolder& operator=(const LockHolder&) = delete;
    ~LockHolder();

    [[nodiscard]] pid_t pid() const { return pid_; }
    // Lets the child run `while_locked`, unlock and exit; returns its exit status.
    int release();

  private:
    pid_t pid_ = -1;
    int release_fd_ = -1;
    bool released_ = false;
};

// The engine's log lines, captured for the whole test program (installed once at start).
struct LogLine {
    kvp::LogLevel level;
    std::string text;
};
std::vector<LogLine> captured_log();
void clear_captured_log();

// The errno of the kvp::Error `f` throws, or 0 when it returns. Other exceptions propagate.
template <typename F>
int errno_of(F&& f) {
    try {
        std::forward<F>(f)();
    } catch (const kvp::Error& e) {
        return e.errno_value();
    }
    return 0;
}

// Every file name in `dir` (without "." and "..").
std::vector<std::string> dir_entries(const std::string& dir);

// A fresh, empty directory on tmpfs for each test, removed afterwards.
class PoolDirTest : public ::testing::Test {
  protected:
    void SetUp() override;
    void TearDown() override;

    [[nodiscard]] const std::string& dir() const { return dir_; }
    [[nodiscard]] std::string pool_path(int n) const {
        return dir_ + "/.kvp_pool_" + std::to_string(n);
    }
    // The pool file most tests use (pool 1), and the file name `name` in the directory.
    [[nodiscard]] std::string pool() const { return pool_path(1); }

  private:
    std::string dir_;
};

}  // namespace kvptest
