#pragma once
// The three mount modes (mode.hpp tells what each is). Each builds on the one before it:
// CachedMode is UncachedMode with the invalidation thread, CacheAllMode is CachedMode without
// handles.

#include <memory>
#include <optional>
#include <unordered_map>

#include "mode.hpp"
#include "pending_truncations.hpp"
#include "ranked_mutex.hpp"

namespace kvpfs {

class CacheInvalidator;

// The default: the kernel keeps nothing of a key; every open gets a handle (file_handle.hpp)
// that keeps the rules of docs/behaviour.md §5 between writes (mode_uncached.cpp).
class UncachedMode : public MountMode {
  public:
    explicit UncachedMode(Filesystem& fs) : fs_(fs) {}

    [[nodiscard]] const char* name() const override { return "none"; }
    [[nodiscard]] bool caches(kvp::PoolId /*pool*/) const override { return false; }
    [[nodiscard]] bool caches_keys() const override { return false; }
    void want(struct fuse_conn_info& conn) const override;
    void start(struct fuse_session* /*session*/) override {}
    void stop() override {}
    void key_changed(kvp::PoolId /*pool*/, std::string_view /*key*/, bool /*listing*/) override {}
    void listing_changed(kvp::PoolId /*pool*/) override {}
    void written(kvp::PoolId pool, std::string_view key, bool created) override {
        key_changed(pool, key, created);
    }

    void open_key(fuse_req_t req, struct fuse_file_info* fi, const KeyRef& ref, bool write,
                  bool present, std::string_view value) override;
    void create_key(fuse_req_t req, kvp::PoolId pool, const std::string& key,
                    const kvp::SnapshotRecord* rec, mode_t mode,
                    struct fuse_file_info* fi) override;
    void mknod_key(fuse_req_t req, kvp::PoolId pool, const std::string& key, mode_t mode) override;
    void read_unopened(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off) override;
    void write_unopened(fuse_req_t req, fuse_ino_t ino, std::string_view data, off_t off,
                        int flags) override;
    void flush_unopened(fuse_req_t req) override;
    void fsync_unopened(fuse_req_t req, fuse_ino_t ino, int datasync) override;
    void truncate_key(Ino ino, const KeyRef& ref, std::size_t size) override;
    [[nodiscard]] bool chmod_to_create_mode(fuse_req_t req, Ino ino, const KeyRef& ref,
                                            mode_t mode) override;
    void forget_inode(Ino ino, std::uint64_t nlookup) override;

    [[nodiscard]] bool shows_truncated(Ino /*ino*/) const override { return false; }
    bool take_truncation(Ino /*ino*/) override { return false; }
    void path_truncated(Ino ino, const KeyRef& ref, bool reserved) override;
    [[nodiscard]] Clock::time_point next_truncation_due() const override {
        return Clock::time_point::max();
    }
    void store_due_truncations(Clock::time_point /*now*/) override {}

  protected:
    Filesystem& fs_;
};

// -o cache (= -o cache=names): the kernel keeps entries (negative ones too), attributes and
// listings of every pool but auto/ with its intrinsic items; the invalidation thread
// (cache_invalidator.hpp) keeps them true (mode_cached.cpp).
class CachedMode : public UncachedMode {
  public:
    explicit CachedMode(Filesystem& fs);
    ~CachedMode() override;
    CachedMode(const CachedMode&) = delete;
    CachedMode& operator=(const CachedMode&) = delete;
    CachedMode(CachedMode&&) = delete;
    CachedMode& operator=(CachedMode&&) = delete;

    [[nodiscard]] const char* name() const override { return "names"; }
    [[nodiscard]] bool caches(kvp::PoolId pool) const override;
    [[nodiscard]] bool caches_keys() const override { return true; }
    void want(struct fuse_conn_info& conn) const override;
    void start(struct fuse_session* session) override;
    void stop() override;
    void key_changed(kvp::PoolId pool, std::string_view key, bool listing) override;
    void listing_changed(kvp::PoolId pool) override;

  protected:
    // Drops the kernel's pages and attributes of `ino` from the invalidation thread, `after`
    // from now (a request cannot drop the pages its own caller has locked).
    void inode_later(Ino ino, std::chrono::milliseconds after = std::chrono::milliseconds(0));
    // Makes the invalidation thread wake by `due` (a pending truncation falls due then).
    void wake_by(Clock::time_point due);

  private:
    std::unique_ptr<CacheInvalidator> cache_;  // from start() to the destructor
};

// -o cache=all: CachedMode, and the kernel keeps key contents in its page cache and opens,
// closes and releases key files itself: no handles (mode_cache_all.cpp tells the price). What
// a handle keeps between writes lives here, per inode.
class CacheAllMode : public CachedMode {
  public:
    explicit CacheAllMode(Filesystem& fs) : CachedMode(fs) {}

    [[nodiscard]] const char* name() const override { return "all"; }
    void want(struct fuse_conn_info& conn) const override;
    void stop() override;
    void written(kvp::PoolId pool, std::string_view key, bool created) override;

    // O_TRUNC comes as a truncate to 0: noted, not stored (pending_truncations.hpp).
    void truncate_key(Ino ino, const KeyRef& ref, std::size_t size) override;
    // Every READ, WRITE and FSYNC comes without a handle; FLUSH is answered ENOSYS once.
    void write_unopened(fuse_req_t req, fuse_ino_t ino, std::string_view data, off_t off,
                        int flags) override;
    void read_unopened(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off) override;
    void fsync_unopened(fuse_req_t req, fuse_ino_t ino, int datasync) override;
    void flush_unopened(fuse_req_t req) override;
    // ENOSYS: from then on the kernel opens key files itself.
    void open_key(fuse_req_t req, struct fuse_file_info* fi, const KeyRef& ref, bool write,
                  bool present, std::string_view value) override;
    // Store the empty key at once (no handle can hold a reservation), and remember the
    // creator's mode for its chmod.
    void mknod_key(fuse_req_t req, kvp::PoolId pool, const std::string& key, mode_t mode) override;
    void create_key(fuse_req_t req, kvp::PoolId pool, const std::string& key,
                    const kvp::SnapshotRecord* rec, mode_t mode,
                    struct fuse_file_info* fi) override;
    [[nodiscard]] bool chmod_to_create_mode(fuse_req_t req, Ino ino, const KeyRef& ref,
                                            mode_t mode) override;
    // Stores a pending truncation first, and drops the inode's tables after.
    void forget_inode(Ino ino, std::uint64_t nlookup) override;

    [[nodiscard]] bool shows_truncated(Ino ino) const override {
        return truncations_.contains(ino);
    }
    bool take_truncation(Ino ino) override { return truncations_.take(ino); }
    void path_truncated(Ino ino, const KeyRef& ref, bool reserved) override;
    [[nodiscard]] Clock::time_point next_truncation_due() const override {
        return truncations_.next_due();
    }
    void store_due_truncations(Clock::time_point now) override;

  private:
    class InodeSite;  // a write's state between writes (store_write)
    // The reply to a create or mknod that stored (or found) `key`.
    void reply_new_entry(fuse_req_t req, const char* op, kvp::PoolId pool, const std::string& key,
                         struct fuse_file_info* fi, std::optional<mode_t> create_mode);
    // Stores the empty value of a pending truncation of `ino`, if it is still pending; logs
    // what fails (the thread retries on its next tick).
    void store_truncation(Ino ino);
    // Text mode, O_APPEND: a process's append that ended without "\n" leaves its line open.
    // While the key still holds the value that write stored (its hash), the same process's
    // next append continues the line (what a handle's open_line does in the other modes).
    [[nodiscard]] bool continues_line(Ino ino, pid_t pid, std::string_view current);
    void set_open_line(Ino ino, pid_t pid, std::optional<std::string_view> stored);
    // The mode a create (or mknod) made a new key with, and the process that made it: that
    // process's chmod to that mode succeeds (install, rsync and tar chmod their new file to
    // its create mode). Kept while the kernel knows the inode.
    void set_create_mode(Ino ino, pid_t pid, mode_t mode);
    void forget_inode_state(Ino ino);

    struct OpenLine {
        pid_t pid;
        std::size_t value_hash;
    };
    struct CreateMode {
        pid_t pid;
        mode_t mode;
    };
    // Truncations to 0 the mount shows and the pool does not hold yet (its own lock).
    PendingTruncations truncations_;
    // Guards open_lines_. Taken inside a pool's update (a write asks continues_line there) and
    // under the names lock; nothing is taken under it; never held across a reply.
    kvp::RankedMutex open_lines_mutex_{kvp::LockRank::open_lines};
    std::unordered_map<Ino, OpenLine> open_lines_;
    // Guards create_modes_. Taken under the names lock (a create's reply) or none; nothing is
    // taken under it; never held across a reply.
    kvp::RankedMutex create_modes_mutex_{kvp::LockRank::create_modes};
    std::unordered_map<Ino, CreateMode> create_modes_;
};

}  // namespace kvpfs
