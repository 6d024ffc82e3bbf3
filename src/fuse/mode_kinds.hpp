#pragma once
// The three mount modes (mode.hpp tells what each is). Each builds on the one before it:
// CachedMode is UncachedMode with the invalidation thread, CacheAllMode is CachedMode without
// handles.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "mode.hpp"
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
    void flush_unopened(fuse_req_t req, fuse_ino_t ino) override;
    void fsync_unopened(fuse_req_t req, fuse_ino_t ino, int datasync) override;
    void truncate_key(fuse_req_t req, Ino ino, const KeyRef& ref, std::size_t size,
                      bool with_file) override;
    [[nodiscard]] bool chmod_to_create_mode(fuse_req_t req, Ino ino, const KeyRef& ref,
                                            mode_t mode) override;
    void forget_inode(Ino ino, std::uint64_t nlookup) override;

    [[nodiscard]] bool shows_truncated(Ino /*ino*/) const override { return false; }
    bool take_truncation(Ino /*ino*/) override { return false; }
    void path_truncated(Ino ino, const KeyRef& ref, bool reserved) override;

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

  private:
    std::unique_ptr<CacheInvalidator> cache_;  // from start() to the destructor
};

// -o cache=all: CachedMode, and the kernel keeps key contents in its page cache and opens and
// closes key files itself: no OPEN, no RELEASE, no handles (mode_cache_all.cpp tells the
// price). FLUSH still comes at every close; what a handle keeps between writes lives here, per
// inode and writing thread, until the writer's process closes its last descriptor of the file.
class CacheAllMode : public CachedMode {
  public:
    explicit CacheAllMode(Filesystem& fs) : CachedMode(fs) {}

    [[nodiscard]] const char* name() const override { return "all"; }
    void want(struct fuse_conn_info& conn) const override;
    void stop() override;
    void written(kvp::PoolId pool, std::string_view key, bool created) override;

    // O_TRUNC comes as a truncate to 0 at open: noted for the opening process, not stored.
    void truncate_key(fuse_req_t req, Ino ino, const KeyRef& ref, std::size_t size,
                      bool with_file) override;
    // Every READ, WRITE, FLUSH and FSYNC comes without a handle.
    void write_unopened(fuse_req_t req, fuse_ino_t ino, std::string_view data, off_t off,
                        int flags) override;
    void read_unopened(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off) override;
    void fsync_unopened(fuse_req_t req, fuse_ino_t ino, int datasync) override;
    void flush_unopened(fuse_req_t req, fuse_ino_t ino) override;
    // ENOSYS: from then on the kernel opens key files itself.
    void open_key(fuse_req_t req, struct fuse_file_info* fi, const KeyRef& ref, bool write,
                  bool present, std::string_view value) override;
    // Reserve the name for the calling process (as a handle does in the other modes), and
    // remember the creator's mode for its chmod.
    void mknod_key(fuse_req_t req, kvp::PoolId pool, const std::string& key, mode_t mode) override;
    void create_key(fuse_req_t req, kvp::PoolId pool, const std::string& key,
                    const kvp::SnapshotRecord* rec, mode_t mode,
                    struct fuse_file_info* fi) override;
    [[nodiscard]] bool chmod_to_create_mode(fuse_req_t req, Ino ino, const KeyRef& ref,
                                            mode_t mode) override;
    // Stores a pending truncation first, and drops the inode's tables after.
    void forget_inode(Ino ino, std::uint64_t nlookup) override;

    [[nodiscard]] bool shows_truncated(Ino ino) const override;
    bool take_truncation(Ino ino) override;
    void path_truncated(Ino ino, const KeyRef& ref, bool reserved) override;

  private:
    class InodeSite;  // a write's state between writes (store_write)

    // One thread's writes to one key file, from its first write, O_TRUNC or create to the
    // last close of the file by its process (what a writable handle keeps in the other modes).
    struct Writer {
        pid_t process = 0;       // the thread's thread group; 0: a caller kvpfs cannot see
        int error = 0;           // the last refused write's errno: fsync and close answer it again
        bool refused = false;    // a write or ftruncate was refused: nothing empty is stored
        bool truncates = false;  // its O_TRUNC is the inode's pending truncation
        bool creates = false;    // it created the name, reserved until a store or its close
        bool held_here = false;  // its write left the inode's held bytes (held_)
        // Text mode, O_APPEND: the value its last append stored when that did not end in
        // "\n" (its hash); and the value its last write stored, whatever it ended with.
        std::optional<std::size_t> open_line;
        std::optional<std::size_t> last_stored;
    };
    using WriterKey = std::pair<Ino, pid_t>;  // the inode and the writing thread

    // The writer of `ino` for the thread `tid` (writers_mutex_ held), made if absent.
    Writer& writer_locked(Ino ino, pid_t tid);
    // The key of the writer of `ino` that `tid` (whose thread group is found only if needed)
    // belongs to (writers_mutex_ held); nullopt when it has none.
    std::optional<WriterKey> find_writer_locked(Ino ino, pid_t tid);
    // The last close of `ino` by `w`'s process: stores its O_TRUNC or its create's empty key
    // if nothing was refused, drops what it held; returns the errno close() answers.
    int settle(fuse_req_t req, Ino ino, const Writer& w);
    // Stores the empty value of `ino`'s pending truncation if it is still pending; throws
    // kvp::Error when the change is refused. `gone`: the key of an inode the table forgot.
    void store_truncation(Ino ino, std::optional<KeyRef> gone = std::nullopt);
    // Stores `ino`'s created name empty if the pool does not hold it yet, and ends the
    // reservation.
    void store_created(Ino ino);
    // Drops `ino`'s pending truncation (a refused write or close): the kernel is told again.
    void drop_truncation(Ino ino);
    // The first store created the reserved key: the reservation of `key` ends (names lock
    // shared).
    void creation_stored(Ino ino, std::string_view key);
    // The mode a create (or mknod) made a new key with, and the process that made it: that
    // process's chmod to that mode succeeds (install, rsync and tar chmod their new file to
    // its create mode). Kept while the kernel knows the inode.
    void set_create_mode(Ino ino, pid_t pid, mode_t mode);
    void forget_inode_state(Ino ino);

    struct CreateMode {
        pid_t pid;
        mode_t mode;
    };
    // Guards writers_, truncated_ and held_. Taken inside a pool's update (a write asks its writer
    // there, and exactly one change takes a truncation), under the names lock, or alone;
    // nothing is taken under it; never held across a reply.
    mutable kvp::RankedMutex writers_mutex_{kvp::LockRank::pending_truncations};
    std::map<WriterKey, Writer> writers_;
    // Inodes opened with O_TRUNC whose empty value the mount shows and the pool does not hold
    // yet: the next write to the inode applies to the empty value and replaces the old one in
    // one change; the truncating process's last close without a write stores it.
    std::unordered_set<Ino> truncated_;
    // Trailing bytes of an unfinished UTF-8 sequence (-o limits=host) a write left, held
    // until a later write (of any process: `{ printf 'caf\xc3'; printf '\xa9'; } > K` runs
    // two) finishes them; they belong at content offset `at`.
    struct Held {
        std::string bytes;
        std::size_t at = 0;
    };
    std::unordered_map<Ino, Held> held_;
    // Guards create_modes_. Taken under the names lock (a create's reply) or none; nothing is
    // taken under it; never held across a reply.
    kvp::RankedMutex create_modes_mutex_{kvp::LockRank::create_modes};
    std::unordered_map<Ino, CreateMode> create_modes_;
};

}  // namespace kvpfs
