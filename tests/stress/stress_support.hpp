#pragma once
// Support for the reliability tests: the tests' own pool codec (not the engine's), a sandbox that
// mounts a tmpfs pool directory and runs the real kvpfs daemon on a fresh mountpoint (readiness by
// polling statfs for the FUSE magic, teardown that always unmounts), forked worker processes with
// bounded waits, self-checking values, and syscall helpers that report the errno of the step that
// failed.

#include <fcntl.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pool_codec.hpp"
#include "wait_bounds.hpp"

namespace kvpstress {

// The tests' own pool codec (tests/common/pool_codec.hpp), not the engine's.
using kvptest::decode_records;
using kvptest::encode_record;
using kvptest::encode_records;
using kvptest::kKeyField;
using kvptest::kRecord;
using kvptest::kValueField;
using kvptest::Rec;

// The names in a directory, sorted, without "." and ".." (one "<opendir: ...>" entry when
// it cannot be opened).
std::vector<std::string> list_dir(const std::string& path);

std::string read_file(const std::string& path);  // throws std::runtime_error
void write_file(const std::string& path, std::string_view bytes);
std::string printable(std::string_view s, std::size_t max = 60);
// docs/behaviour.md §6, written again here: key -> file name and back (canonical escapes only).
std::string escape_key(const std::string& key);
std::string unescape_name(const std::string& name);
std::string errno_name(int e);

// --- Self-checking values: "V|<tag>|<seq>|<len>|<hash>|<padding>", exactly <len> bytes.
// A torn or mixed value fails verify(); the (tag, seq) id names the write that made it.
std::string make_value(std::string_view tag, std::uint64_t seq, std::size_t length);
// The value's id "<tag>|<seq>", or nullopt when the value is not whole.
std::optional<std::string> verify_value(std::string_view value);
// A value written in several write() calls is visible after each (docs/behaviour.md §5); writers
// that do so use a tag ending in 'c'. The id of such a value cut short ("V|<tag>c|<seq>|<len>|" and
// shorter than <len>), or nullopt.
std::optional<std::string> partial_value_id(std::string_view value);

// --- Processes.
// Runs `body` in a forked child that leaves with _exit(body()).
pid_t spawn(const std::function<int()>& body);
// Waits at most `limit`; SIGKILLs and reaps on timeout. Returns the exit status, 128+signal
// when killed by one, or -1 on timeout.
int wait_for(pid_t pid, std::chrono::milliseconds limit);

// --- Syscalls through the mount. 0, or the errno; `step` says which call failed.
struct Io {
    int err = 0;
    std::string step;
};
// `before_close`, if given, runs after the last write and before close() (the commit).
Io write_value(const std::string& path, std::string_view data,
               int flags = O_WRONLY | O_CREAT | O_TRUNC, std::size_t chunk = 0,
               const std::function<void()>& before_close = {});
// The file's content, or the errno of open/read.
struct ReadResult {
    int err = 0;
    std::string data;
};
ReadResult read_value(const std::string& path);

// The FUSE mount of a kvpfs daemon over a tmpfs pool directory.
class Sandbox {
  public:
    Sandbox();  // makes base/pool (tmpfs) and base/mnt; throws on failure
    Sandbox(const Sandbox&) = delete;
    Sandbox& operator=(const Sandbox&) = delete;
    ~Sandbox();  // stops the daemon, detaches the mount, unmounts tmpfs, removes dirs

    // Starts `[wrapper...] kvpfs -f [options] POOL MNT`, its stderr into log(); waits (at
    // most 30 s, scaled) until MNT is a FUSE mount. Throws if the daemon dies or never mounts.
    void start(const std::vector<std::string>& options = {},
               const std::vector<std::string>& wrapper = {});
    // Unmounts (the daemon then exits) and reaps the daemon; returns its exit status.
    int stop();
    // SIGKILLs the daemon (no clean-up of its own), reaps it, detaches the dead mount.
    void kill_daemon();
    [[nodiscard]] bool mounted() const;
    [[nodiscard]] bool daemon_running() const { return daemon_ > 0; }
    [[nodiscard]] pid_t daemon_pid() const { return daemon_; }

    [[nodiscard]] const std::string& base() const { return base_; }
    [[nodiscard]] const std::string& pool_dir() const { return pool_; }
    // Makes the daemon (started after this) and pool() use `dir` as the pool directory
    // instead of the tmpfs root (a directory that can be removed, renamed or mounted over).
    void set_pool_dir(const std::string& dir) { pool_ = dir; }
    [[nodiscard]] std::string pool(int n) const;
    [[nodiscard]] std::string mnt(const std::string& rel = "") const;
    [[nodiscard]] std::string log() const;

  private:
    void detach_mount();
    std::string base_, pool_, tmpfs_dir_, mnt_, log_path_;
    pid_t daemon_ = -1;
    bool tmpfs_ = false;
};

[[nodiscard]] std::string kvpfs_binary();
// Seconds from the environment variable `name`, or `fallback`.
[[nodiscard]] double env_seconds(const char* name, double fallback);
[[nodiscard]] long env_long(const char* name, long fallback);

// The stress-cache run (KVPFS_TEST_MOUNT_OPTIONS=cache): every Sandbox mounts with -o cache.
[[nodiscard]] bool cache_mode();
// The run with -o cache=all (contents in the page cache, files without handles): the rules
// docs/behaviour.md lists as relaxed there are checked in their relaxed form.
[[nodiscard]] bool contents_cached();
// Another process changed a pool: without -o cache `shown()` must hold at once; with it,
// within `window` (polled), the staleness the cached mode allows (docs/behaviour.md).
[[nodiscard]] bool shown_after_outside_change(
    const std::function<bool()>& shown,
    std::chrono::steady_clock::duration window = kvptest::kStalenessBound);

}  // namespace kvpstress
