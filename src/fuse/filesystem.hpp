#pragma once
// The state every FUSE operation works on, and the helpers the op_*.cpp files share.
// Operations are plain functions taking fuse_req_t (the lowlevel API); they find this
// object through fuse_req_userdata().

#include <fuse_lowlevel.h>

#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "auto_pool_view.hpp"
#include "error.hpp"
#include "file_handle.hpp"
#include "inode_table.hpp"
#include "limits.hpp"
#include "log.hpp"
#include "options.hpp"
#include "pending_truncations.hpp"
#include "pool_directory.hpp"
#include "writer_registry.hpp"

namespace kvpfs {

// Kernel cache lifetimes (seconds). The root and the pool directories never change shape,
// so the kernel may keep them; key files and their entries (including negative ones) are
// never cached, so every open/stat/readdir asks us and we ask the engine (docs/behaviour.md §3).
// With -o cache they are kept as long as the directories, and invalidated when they change.
inline constexpr double kDirTimeout = 86400.0;
inline constexpr double kKeyTimeout = 0.0;
inline constexpr double kCachedKeyTimeout = 86400.0;

class CacheInvalidator;

// An open directory: which pool it lists; it holds no copy of the pool (op_dir.cpp).
struct DirHandle {
    std::optional<kvp::PoolId> pool;  // nullopt: the root
    // The pool's snapshot generation when the listing started (opendir, or a rewind).
    std::optional<std::uint64_t> listing_generation;
    std::mutex mutex;
};

class Filesystem {
  public:
    explicit Filesystem(const Options& options);

    [[nodiscard]] const Options& options() const { return options_; }
    [[nodiscard]] kvp::PoolFile& pool(kvp::PoolId id) { return pools_.pool(id); }
    [[nodiscard]] InodeTable& inodes() { return inodes_; }
    // auto/'s intrinsic items (auto_view.hpp); null with -o auto=file.
    [[nodiscard]] kvp::AutoPoolView* auto_view() { return auto_view_.get(); }

    // -o cache: may the kernel keep `pool`'s entries, attributes and contents? Not auto/ with
    // its intrinsic items, whose values change without any file changing.
    [[nodiscard]] bool caches(kvp::PoolId pool) const {
        return options_.cache && (pool != kvp::PoolId::automatic || !options_.auto_intrinsic);
    }
    // How long the kernel may keep a key of `pool` (its entry or attributes) that exists in
    // the pool; a name only reserved by a create is never kept.
    [[nodiscard]] double key_timeout(kvp::PoolId pool) const {
        return caches(pool) ? kCachedKeyTimeout : kKeyTimeout;
    }
    // -o cache: starts and stops the invalidation thread (cache_invalidator.hpp); no-ops
    // otherwise. Stopped before the session ends.
    void start_cache(struct fuse_session* session);
    void stop_cache();
    // A change through the mount, reported before its reply: drops what the kernel keeps of
    // the key (and with `listing`, of its directory's listing). No-op without -o cache.
    void key_changed(kvp::PoolId pool, std::string_view key, bool listing);
    void listing_changed(kvp::PoolId pool);
    // -o cache=all: drops the kernel's pages and attributes of `ino` from the invalidation
    // thread, `after` from now (a request cannot drop the pages its own caller has locked).
    void inode_later(Ino ino, std::chrono::milliseconds after = std::chrono::milliseconds(0));
    // Makes the invalidation thread wake by `due` (a pending truncation falls due then).
    void wake_cache_by(std::chrono::steady_clock::time_point due);
    // -o cache=all, text mode: a process's O_APPEND write that ended without "\n" leaves its
    // line open. While the key still holds the value that write stored (its hash), the same
    // process's next append continues the line instead of starting after the newline a read
    // shows (what a handle's open_line does without -o cache=all).
    // -o cache=all: truncations to 0 the mount shows and the pool does not hold yet.
    [[nodiscard]] PendingTruncations& truncations() { return truncations_; }
    [[nodiscard]] bool continues_line(Ino ino, pid_t pid, std::string_view current);
    void set_open_line(Ino ino, pid_t pid, std::optional<std::string_view> stored);
    // -o cache=all: the mode a create (or mknod) made a new key with, and the process that
    // made it. That process's chmod to that mode changes nothing for it and succeeds (install,
    // rsync and tar chmod their new file to its create mode); without -o cache=all the open
    // handle remembers it. Kept while the kernel knows the inode.
    void set_create_mode(Ino ino, pid_t pid, mode_t mode);
    [[nodiscard]] bool created_with_mode(Ino ino, pid_t pid, mode_t mode);
    void forget_create_mode(Ino ino);

    void fill_root_attr(struct stat& st) const;
    // With -o cache a cached pool directory's mtime and ctime are the start time plus one
    // nanosecond per content change of its pool (the snapshot generation): the kernel drops
    // a cached listing when the directory's mtime changed since the listing was filled.
    void fill_dir_attr(kvp::PoolId pool, struct stat& st);
    void fill_key_attr(Ino ino, kvp::PoolId pool, const kvp::SnapshotRecord& rec,
                       struct stat& st) const;
    // A writable open file's attributes: `size` is what a read through it shows.
    void fill_handle_attr(Ino ino, std::size_t size, struct timespec mtime, struct stat& st) const;
    [[nodiscard]] struct timespec started() const { return started_; }
    // Attributes of any inode from the current pool state; positive errno on failure.
    int attr_of(Ino ino, struct stat& st);

    // The refusal for a change in `pool` (docs/behaviour.md §7, after EPERM/EXDEV): EROFS with -o
    // ro, EACCES outside guest/, 0 when the change may go ahead.
    [[nodiscard]] int change_refusal(std::optional<kvp::PoolId> pool) const;

    // Writable handles and reserved names of guest/ (writer_registry.hpp).
    [[nodiscard]] WriterRegistry& writers() { return writers_; }
    // Is `key` a name reserved by a create that stored nothing yet? It exists for lookup,
    // stat and open (as an empty value) but not in the pool.
    [[nodiscard]] bool reserved(kvp::PoolId pool, std::string_view key) const {
        return pool == kvp::PoolId::guest && writers_.reserved(key);
    }
    // Attributes of a reserved name: it reads as an empty value does.
    void fill_reserved_attr(Ino ino, kvp::PoolId pool, struct stat& st) const;

    // Open handles the kernel has not released yet. Only for shutdown: a signal may end
    // the session with releases still queued, and those handles are freed at exit.
    void track(FileHandle* h);
    void untrack(FileHandle* h);
    void track_dir(DirHandle* d);
    void untrack_dir(DirHandle* d);
    ~Filesystem();
    Filesystem(const Filesystem&) = delete;
    Filesystem& operator=(const Filesystem&) = delete;
    Filesystem(Filesystem&&) = delete;
    Filesystem& operator=(Filesystem&&) = delete;

  private:
    Options options_;
    kvp::PoolDirectory pools_;
    InodeTable inodes_;
    struct timespec started_ {};
    std::unique_ptr<kvp::AutoPoolView> auto_view_;
    std::mutex handles_mutex_;
    std::unordered_set<FileHandle*> handles_;
    std::unordered_set<DirHandle*> dir_handles_;
    WriterRegistry writers_;
    std::unique_ptr<CacheInvalidator> cache_;
    struct OpenLine {
        pid_t pid;
        std::size_t value_hash;
    };
    PendingTruncations truncations_;
    std::mutex open_lines_mutex_;
    std::unordered_map<Ino, OpenLine> open_lines_;
    struct CreateMode {
        pid_t pid;
        mode_t mode;
    };
    std::mutex create_modes_mutex_;
    std::unordered_map<Ino, CreateMode> create_modes_;
};

[[nodiscard]] inline Filesystem& fs_of(fuse_req_t req) {
    return *static_cast<Filesystem*>(fuse_req_userdata(req));
}
[[nodiscard]] inline FileHandle* handle_of(const struct fuse_file_info* fi) {
    // fh is the 64-bit handle libfuse gives back: it holds our pointer.
    return fi != nullptr
               ? reinterpret_cast<FileHandle*>(fi->fh)  // NOLINT(performance-no-int-to-ptr)
               : nullptr;
}

// "guest/KEY" style name for log lines.
[[nodiscard]] std::string describe_key(kvp::PoolId pool, std::string_view key);

// Replies with an error (positive errno), logging refusals once with their reason, and
// tracing with -d. ENOENT from a lookup is an answer, not a refusal, and is not logged.
void reply_error(fuse_req_t req, const char* op, int err, const std::string& why);
// -d tracing of a successful request.
void trace_ok(const char* op, const std::string& what);
// The same for a key, building the text only when -d is on (these sit on hot paths).
void trace_ok(const char* op, kvp::PoolId pool, std::string_view key, const char* suffix = "");

// The key the current request is about, named in its error line when the engine fails
// (a lock timeout, an I/O error). Set where a name or inode becomes a key; guarded() resets
// it. Thread-local: a request runs on one thread from start to reply.
void set_request_subject(kvp::PoolId pool, std::string_view key);
void clear_request_subject();
// "guest/KEY: " for the current request, or "" when it is about no key.
[[nodiscard]] std::string request_subject_prefix();
// An engine error's sentence without the strerror text reply_error adds itself.
[[nodiscard]] std::string error_reason(const kvp::Error& e);

// Runs `body`, turning exceptions into error replies (the FUSE boundary).
template <typename Body>
void guarded(fuse_req_t req, const char* op, Body&& body) {
    clear_request_subject();
    try {
        body();
    } catch (const kvp::Error& e) {
        reply_error(req, op, e.errno_value(), request_subject_prefix() + error_reason(e));
    } catch (const std::bad_alloc&) {
        reply_error(req, op, ENOMEM, "out of memory");
    } catch (const std::exception& e) {
        reply_error(req, op, EIO, std::string("internal error: ") + e.what());
    }
}

// The operation table (ops are defined in op_*.cpp).
[[nodiscard]] const struct fuse_lowlevel_ops& operations();

// op_lookup.cpp
void op_init(void* userdata, struct fuse_conn_info* conn);
void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data* forgets);
void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi);
void op_statfs(fuse_req_t req, fuse_ino_t ino);
// op_dir.cpp
void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi);
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info* fi);
void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi);
// op_open.cpp
void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi);
void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               struct fuse_file_info* fi);
void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev);
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info* fi);
void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi);
// op_write.cpp
void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
              struct fuse_file_info* fi);
void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi);
void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info* fi);
// Runs `change` inside PoolFile::update and turns its refusal into an exception only after
// update returns: a refusal leaves the pool as it is, and the engine's view of it with it
// (an exception out of the change would make the engine read the whole file again).
template <typename Change>
bool update_or_refuse(kvp::PoolFile& pool, const std::string& key, kvp::Limits limits,
                      Change&& change) {
    std::optional<kvp::Error> refusal;
    const bool stored = pool.update(
        key,
        [&](const std::string* current) -> std::optional<std::string> {
            try {
                return change(current);
            } catch (const kvp::Error& e) {
                refusal = e;
                return std::nullopt;
            }
        },
        limits);
    if (refusal) {
        throw *refusal;
    }
    return stored;
}

// What a read through a writable handle shows (under its mutex): the key's current value in
// its shown form, "" while an O_TRUNC or a create has stored nothing, and after an unlink.
[[nodiscard]] std::string writer_content(Filesystem& fs, FileHandle& handle);
// Release of a writable handle: an O_TRUNC or a create with nothing written and no write
// refused stores the empty value now; then the handle leaves the registry.
void finish_writer(Filesystem& fs, FileHandle& handle);
// Names lock shared and the handle's mutex held: ftruncate through the handle (cuts the value
// as a read shows it; growing is EINVAL), and a touch of a reserved name (setting times on a
// create that has written nothing and had nothing refused creates the key empty).
void truncate_through(Filesystem& fs, FileHandle& handle, std::size_t size);
void create_if_reserved(Filesystem& fs, FileHandle& handle);
// Names lock owned: times set by name (touch's futimens carries no handle) on a name
// reserved by creates: the first that wrote nothing and had nothing refused creates it.
void touch_reserved(Filesystem& fs, std::string_view key);
// handleless_file.cpp: -o cache=all, where the kernel opens key files without asking (the
// first OPEN is answered ENOSYS) and every read, write and fsync comes without a handle.
[[nodiscard]] bool handleless(const Filesystem& fs);
void create_handleless(fuse_req_t req, kvp::PoolId pool, const std::string& key, int flags,
                       mode_t mode, struct fuse_file_info* fi);
void mknod_handleless(fuse_req_t req, kvp::PoolId pool, const std::string& key, mode_t mode);
void read_handleless(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off);
void write_handleless(fuse_req_t req, fuse_ino_t ino, std::string_view data, off_t off, int flags);
// Stores the empty value of a pending truncation of `ino` (PendingTruncations), if it is
// still pending; logs what fails (the thread retries on its next tick).
void apply_pending_truncation(Filesystem& fs, Ino ino);
// The pool file of `pool` to its storage (fsync of any of its keys).
void sync_pool_file(Filesystem& fs, kvp::PoolId pool, bool datasync);
// op_setattr.cpp
void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                struct fuse_file_info* fi);
// op_change.cpp
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags);
void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name);
void op_symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name);
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname);

}  // namespace kvpfs
