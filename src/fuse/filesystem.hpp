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
#include "mode.hpp"
#include "options.hpp"
#include "pool_directory.hpp"
#include "ranked_mutex.hpp"
#include "write_rules.hpp"
#include "writer_registry.hpp"

namespace kvpfs {

// An open directory: which pool it lists; it holds no copy of the pool (op_dir.cpp).
struct DirHandle {
    std::optional<kvp::PoolId> pool;  // nullopt: the root
    // The pool's snapshot generation when the listing started (opendir, or a rewind).
    std::optional<std::uint64_t> listing_generation;
    // Guards the two fields above (concurrent readdirs of one open directory). Taken with
    // nothing of kvpfs held; a pool's snapshot and the inode table are taken under it.
    // Never held across a reply: once the reply is out a releasedir may free the handle.
    kvp::RankedMutex mutex{kvp::LockRank::dir_handle};
};

class Filesystem {
  public:
    explicit Filesystem(const Options& options);

    [[nodiscard]] const Options& options() const { return options_; }
    [[nodiscard]] kvp::PoolFile& pool(kvp::PoolId id) { return pools_.pool(id); }
    [[nodiscard]] const kvp::PoolDirectory& pools() const { return pools_; }
    [[nodiscard]] InodeTable& inodes() { return inodes_; }
    // auto/'s intrinsic items (auto_view.hpp); null with -o auto=file.
    [[nodiscard]] kvp::AutoPoolView* auto_view() { return auto_view_.get(); }

    // The mount mode, chosen at start (mode.hpp): the ops ask it what differs between modes.
    [[nodiscard]] MountMode& mode() { return *mode_; }
    [[nodiscard]] const MountMode& mode() const { return *mode_; }

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
    // Guards handles_ and dir_handles_ (shutdown's list of handles still open). Taken with
    // nothing of kvpfs held but the names lock; nothing is taken under it; never held across
    // a reply.
    kvp::RankedMutex handles_mutex_{kvp::LockRank::open_handles};
    std::unordered_set<FileHandle*> handles_;
    std::unordered_set<DirHandle*> dir_handles_;
    WriterRegistry writers_;
    // Last: destroyed first, while the pools, inodes and writers its stop() uses still exist.
    std::unique_ptr<MountMode> mode_;
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
// Where a write's state between writes lives (a writable handle, or -o cache=all's tables of
// the inode): the one write path, store_write, asks it.
// Its implementations live on the stack of one write and are never deleted through it.
class WriteSite {
  public:
    // Under the pool's exclusive lock: does this write apply to the empty value (an O_TRUNC
    // the pool does not hold yet)?
    virtual bool truncated() = 0;
    // Text mode, O_APPEND: does `current` still hold the line this writer left open?
    virtual bool continues_line(std::string_view current) = 0;
    // Is `current` the value this writer's own last write stored? Then an append to an empty
    // value continues what it wrote (`{ echo; echo b; } >> K` stores "\nb"), instead of
    // starting the value (another writer's `touch K; echo x >> K` stores "x").
    virtual bool stored_last(std::string_view /*current*/) { return false; }
    // Under the pool's exclusive lock, last: the change is stored (with the truncation when
    // truncated() said so). -o cache=all takes its pending truncation here, so exactly one
    // change applies it and a change that stores nothing leaves it pending.
    virtual void storing() {}
};
// One write() as store_write applies it.
struct WriteCall {
    kvp::PoolId pool;
    const std::string& key;
    WriteMode mode;
    std::string_view data;  // held bytes of an earlier write go in front
    std::size_t at = 0;     // its offset in the shown content (an append goes to the end)
    // -o limits=host: an unfinished UTF-8 tail is held back for the next write.
    bool hold = false;
};
struct WriteResult {
    bool stored = false;
    bool created = false;       // the key was absent
    std::string value;          // what was stored
    WriteOutcome outcome;       // the new content and the bytes held back
    std::size_t placed_at = 0;  // where the data went in the content
};
// Refuses (kvp::Error) data no value can take: a NUL byte, more than any value holds.
void check_written_data(std::string_view data);
// The one write path of every mode: applies `call` to the key's current value in one
// PoolFile::update (op_write.cpp). Throws kvp::Error to refuse; the pool is then unchanged.
[[nodiscard]] WriteResult store_write(Filesystem& fs, const WriteCall& call, WriteSite& site);
// truncate(2) by path (names lock shared): cuts the current value as a read shows it, in one
// update (op_setattr.cpp).
void truncate_by_path(Filesystem& fs, Ino ino, const KeyRef& ref, std::size_t size);

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
