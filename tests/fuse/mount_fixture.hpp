#pragma once
// A GoogleTest fixture that runs the real kvpfs daemon over a tmpfs-backed pool directory
// on a fresh mountpoint. SetUp mounts a tmpfs in a new temp dir, creates the five pool
// files (empty), starts `kvpfs -f [OPTIONS] POOL MNT` as a child and polls statfs until
// the mountpoint is a FUSE mount (no sleeps). TearDown always detaches the FUSE mount,
// reaps the daemon (SIGKILL if it lingers), unmounts the tmpfs and removes the dirs,
// whether the test passed, failed or the daemon died.

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pool_codec.hpp"
#include "wait_bounds.hpp"

namespace kvptest {

inline constexpr long kFuseSuperMagic = 0x65735546;
inline constexpr long kFuseCtlSuperMagic = 0x65735543;

// ---- Pool files as another KVP writer changes them (outside the mount). The writer takes
// flock (as cloud-init does) and a classic fcntl lock (as hv_kvp_daemon does) and changes the
// file in place; the bytes come from the tests' own codec (pool_codec.hpp), not the engine's.

// The file's bytes, or "<missing>" when it does not exist.
std::string read_bytes(const std::string& path);
// Replaces the file's content in place under both locks (creates it 0644 if missing).
void write_locked(const std::string& path, const std::string& bytes);
// With `garbage`, the bytes after each string's NUL are the letters Fill::letters() writes.
void write_records(const std::string& path, const std::vector<Rec>& recs, bool garbage = false);

// Holds both exclusive locks of a pool file for as long as it lives.
class HeldLock {
  public:
    explicit HeldLock(const std::string& path);
    ~HeldLock();
    HeldLock(const HeldLock&) = delete;
    HeldLock& operator=(const HeldLock&) = delete;
    [[nodiscard]] int fd() const { return fd_; }

  private:
    int fd_ = -1;
};

// ---- The fixture.

// Result of a syscall-level helper: 0 or the errno of the first failing step.
struct IoResult {
    int err = 0;
    std::string step;  // "open", "write", "close", ...
};

class KvpfsTest : public ::testing::Test {
  protected:
    void SetUp() override;
    void TearDown() override;
    // Extra daemon options (e.g. {"-o", "raw"}); override in derived fixtures.
    [[nodiscard]] virtual std::vector<std::string> daemon_options() const { return {}; }

    // Paths.
    [[nodiscard]] std::string mnt(const std::string& rel = "") const;
    [[nodiscard]] std::string pool_path(int n) const;
    [[nodiscard]] const std::string& pool_dir() const { return pool_; }
    [[nodiscard]] const std::string& base_dir() const { return base_; }

    // The pool files, directly.
    void set_pool(int n, const std::vector<Rec>& recs, bool garbage = false);
    [[nodiscard]] std::string pool_raw(int n) const { return read_bytes(pool_path(n)); }
    [[nodiscard]] std::vector<Rec> pool_recs(int n) const { return decode_records(pool_raw(n)); }
    // Pool `n` still holds exactly `before` (every mode: a refused change stores nothing).
    [[nodiscard]] bool pool_kept(int n, const std::string& before) const;

    // Through the mount.
    [[nodiscard]] std::string cat(const std::string& rel) const;  // throws on error
    [[nodiscard]] int read_errno(const std::string& rel) const;   // 0 when readable
    IoResult write_file(const std::string& rel, const std::string& data,
                        int flags = O_WRONLY | O_CREAT | O_TRUNC) const;
    [[nodiscard]] std::vector<std::string> list(const std::string& rel) const;  // sorted
    [[nodiscard]] int stat_errno(const std::string& rel, struct stat* st = nullptr) const;

    // The daemon.
    [[nodiscard]] std::string daemon_log() const;
    [[nodiscard]] pid_t daemon_pid() const { return daemon_; }
    [[nodiscard]] bool mounted() const;
    // Waits until the kernel has no request of this mount queued or in flight (fusectl's
    // `waiting` count): e.g. the RELEASE the kernel sends just after the last close()
    // returns has then been answered. Returns false if that never happened (or fusectl
    // cannot be read).
    [[nodiscard]] bool requests_answered() const;
    // Sends `sig` and waits for the daemon to exit; returns its wait status.
    int stop_daemon(int sig);

  private:
    void start_daemon();
    void cleanup();

    std::string base_, pool_, mnt_, log_;
    pid_t daemon_ = -1;
    bool tmpfs_ = false;
};

// ---- Programs.

// Runs a program to completion; returns its exit status (or 128+signal), capturing
// stdout+stderr into `output`.
int run_program(const std::vector<std::string>& argv, std::string* output = nullptr,
                const std::vector<std::string>& env_extra = {});

[[nodiscard]] std::string kvpfs_binary();
// ---- The options of this run (the ctest labels mount, mount-cache, mount-cache-all).

// Options every mount of this run adds (KVPFS_TEST_MOUNT_OPTIONS, e.g. "cache": the ctest
// label mount-cache runs the mount tests again with it), and whether they include cache.
[[nodiscard]] std::string extra_mount_options();
[[nodiscard]] bool cache_mode();
// The run with -o cache=all (contents in the page cache, files without handles): the rules
// docs/behaviour.md lists as relaxed there are checked in their relaxed form.
[[nodiscard]] bool contents_cached();

// Another process changed a pool file: without -o cache `shown()` must hold at once; with it,
// within kStalenessBound (wait_bounds.hpp; polled, returning as soon as it holds). The one place
// the mount-cache run relaxes an expectation (docs/behaviour.md lists the tests that use it).
[[nodiscard]] bool shown_after_outside_change(const std::function<bool()>& shown);

}  // namespace kvptest
