#pragma once
// The mount mode: what the kernel may keep of the key files, and who keeps a file's state
// between its requests. One object, chosen once at start from -o cache (mode_factory.cpp);
// the op_*.cpp files ask it and never test which mode it is.
//
// | mode         | option            | kernel keeps                       | a key file's state  |
// |--------------|-------------------|------------------------------------|---------------------|
// | UncachedMode | (default)         | nothing of a key                   | its open handle     |
// | CachedMode   | -o cache(=names)  | entries, attributes, listings      | its open handle     |
// | CacheAllMode | -o cache=all      | the above and the contents (pages) | the mode's tables   |
//
// -o raw, -o limits and -o ro are policies, not modes: every mode follows them (Options).
// The classes are declared in mode_kinds.hpp and defined in mode_<name>.cpp.

#include <fuse_lowlevel.h>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "inode_table.hpp"
#include "pool_id.hpp"
#include "pool_snapshot.hpp"

namespace kvpfs {

class Filesystem;

// Kernel cache lifetimes (seconds). The root and the pool directories never change shape,
// so the kernel may keep them; key files and their entries (including negative ones) are
// never cached, so every open/stat/readdir asks us and we ask the engine (docs/behaviour.md §3).
// With -o cache they are kept as long as the directories, and invalidated when they change.
inline constexpr double kDirTimeout = 86400.0;
inline constexpr double kKeyTimeout = 0.0;
inline constexpr double kCachedKeyTimeout = 86400.0;

class MountMode {
  public:
    using Clock = std::chrono::steady_clock;

    MountMode() = default;
    virtual ~MountMode() = default;
    MountMode(const MountMode&) = delete;
    MountMode& operator=(const MountMode&) = delete;
    MountMode(MountMode&&) = delete;
    MountMode& operator=(MountMode&&) = delete;

    // "none", "names" or "all": for log lines.
    [[nodiscard]] virtual const char* name() const = 0;

    // --- What the kernel may keep ---
    // May the kernel keep `pool`'s entries, attributes and listings?
    [[nodiscard]] virtual bool caches(kvp::PoolId pool) const = 0;
    // Does it keep any key's entry or attributes at all (getattr's hot path asks this first)?
    [[nodiscard]] virtual bool caches_keys() const = 0;
    // How long the kernel may keep a key of `pool` that exists in the pool; a name only
    // reserved by a create is never kept.
    [[nodiscard]] double key_timeout(kvp::PoolId pool) const {
        return caches(pool) ? kCachedKeyTimeout : kKeyTimeout;
    }
    // init: the connection capabilities this mode needs (O_TRUNC at open, data invalidation).
    virtual void want(struct fuse_conn_info& conn) const = 0;
    // Starts and stops the invalidation thread of the cached modes (cache_invalidator.hpp):
    // started after the daemon detached, stopped before the session ends.
    virtual void start(struct fuse_session* session) = 0;
    virtual void stop() = 0;
    // A change through the mount, reported before its reply: drops what the kernel keeps of
    // the key (and with `listing`, of its directory's listing).
    virtual void key_changed(kvp::PoolId pool, std::string_view key, bool listing) = 0;
    virtual void listing_changed(kvp::PoolId pool) = 0;
    // A write stored `key`'s value (`created`: the key was absent) through the mount.
    virtual void written(kvp::PoolId pool, std::string_view key, bool created) = 0;

    // --- Key files ---
    // open of an existing key (or a reserved name), its checks passed; replies. `write`: the
    // names lock is held shared. `value`: the value a read-only open shows.
    virtual void open_key(fuse_req_t req, struct fuse_file_info* fi, const KeyRef& ref, bool write,
                          bool present, std::string_view value) = 0;
    // create (names lock shared): `rec` is the key's record, null when it is new; replies.
    virtual void create_key(fuse_req_t req, kvp::PoolId pool, const std::string& key,
                            const kvp::SnapshotRecord* rec, mode_t mode,
                            struct fuse_file_info* fi) = 0;
    // mknod of a name that is free (names lock shared); replies.
    virtual void mknod_key(fuse_req_t req, kvp::PoolId pool, const std::string& key,
                           mode_t mode) = 0;
    // READ, WRITE, FLUSH and FSYNC that come without a handle (fh 0); they reply.
    virtual void read_unopened(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off) = 0;
    virtual void write_unopened(fuse_req_t req, fuse_ino_t ino, std::string_view data, off_t off,
                                int flags) = 0;
    virtual void flush_unopened(fuse_req_t req, fuse_ino_t ino) = 0;
    virtual void fsync_unopened(fuse_req_t req, fuse_ino_t ino, int datasync) = 0;
    // setattr(size) with no handle (no lock held); the caller replies with the attributes.
    // `with_file`: an ftruncate (the kernel sends an open(O_TRUNC) it makes itself, and a
    // truncate(2), without one).
    virtual void truncate_key(fuse_req_t req, Ino ino, const KeyRef& ref, std::size_t size,
                              bool with_file) = 0;
    // A chmod (alone) to the mode the calling process created the key with: changes nothing.
    [[nodiscard]] virtual bool chmod_to_create_mode(fuse_req_t req, Ino ino, const KeyRef& ref,
                                                    mode_t mode) = 0;
    // FORGET of `ino` (`nlookup` lookups).
    virtual void forget_inode(Ino ino, std::uint64_t nlookup) = 0;

    // --- -o cache=all's truncations the pool does not hold yet (pending_truncations.hpp) ---
    // Does the mount show `ino` empty while the pool still holds its old value?
    [[nodiscard]] virtual bool shows_truncated(Ino ino) const = 0;
    // Under the pool's exclusive lock: takes `ino`'s truncation; true if there was one.
    virtual bool take_truncation(Ino ino) = 0;
    // A truncate by path stored its value (the kernel's cached attributes must go).
    virtual void path_truncated(Ino ino, const KeyRef& ref, bool reserved) = 0;
};

// The mode -o cache asks for (Options::cache, Options::cache_contents), for `fs`.
[[nodiscard]] std::unique_ptr<MountMode> make_mode(Filesystem& fs);

}  // namespace kvpfs
