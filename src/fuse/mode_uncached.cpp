// The default mode (no -o cache), and the key files of -o cache: every open gets a handle
// (file_handle.hpp), and the handle keeps the rules of docs/behaviour.md §5 between its
// requests (an O_TRUNC not stored yet, a create's reserved name, held UTF-8 bytes, an open
// line). Writes through it: op_write.cpp.

#include <fcntl.h>

#include <cerrno>
#include <memory>

#include "filesystem.hpp"
#include "mode_kinds.hpp"

namespace kvpfs {
namespace {

WriteMode write_mode(const Options& o, int flags) {
    return WriteMode{(flags & O_APPEND) != 0, o.raw, o.limits};
}

// Every key file is opened with direct_io: reads always come to the daemon and are answered
// from the handle's own snapshot (op_open.cpp tells why). Read-only opens also set noflush:
// their close() needs no round trip.
void set_open_flags(struct fuse_file_info* fi, bool writable) {
    fi->direct_io = 1;
    fi->keep_cache = 0;
    fi->noflush = writable ? 0 : 1;
}

}  // namespace

void UncachedMode::want(struct fuse_conn_info& conn) const {
    // open(O_TRUNC) arrives as one open() carrying O_TRUNC, not as setattr(size=0) first:
    // the value is replaced by the first stored write instead of being emptied at open.
    if ((conn.capable & FUSE_CAP_ATOMIC_O_TRUNC) != 0) {
        conn.want |= FUSE_CAP_ATOMIC_O_TRUNC;
    }
}

void UncachedMode::open_key(fuse_req_t req, struct fuse_file_info* fi, const KeyRef& ref,
                            bool write, bool present, std::string_view value) {
    std::unique_ptr<FileHandle> h;
    if (write) {
        h = std::make_unique<FileHandle>(ref.pool, ref.key, write_mode(fs_.options(), fi->flags));
        // The first stored write applies to the empty value (op_write.cpp, store_write).
        h->state().truncate_pending = (fi->flags & O_TRUNC) != 0;
        fs_.writers().add(*h, !present);
    } else {
        h = std::make_unique<FileHandle>(ref.pool, value, fs_.options().raw);
    }
    set_open_flags(fi, write);
    fi->fh = reinterpret_cast<uint64_t>(h.get());
    fs_.track(h.get());
    if (fuse_reply_open(req, fi) == 0) {
        (void)h.release();  // owned by the kernel's handle until release
    } else {
        fs_.untrack(h.get());
        if (write) {
            std::lock_guard lock(h->mutex());
            fs_.writers().remove(*h);
        }
    }
}

// A new name is only reserved for the handle (docs/behaviour.md §5): the key enters the pool
// with the first stored write, or empty at release (touch), so a create whose writes were all
// refused leaves the pool as it was.
void UncachedMode::create_key(fuse_req_t req, kvp::PoolId pool, const std::string& key,
                              const kvp::SnapshotRecord* rec, mode_t mode,
                              struct fuse_file_info* fi) {
    auto h = std::make_unique<FileHandle>(pool, key, write_mode(fs_.options(), fi->flags));
    h->state().truncate_pending = rec != nullptr && (fi->flags & O_TRUNC) != 0;
    h->state().create_mode = rec == nullptr ? (mode & 07777) : 0;
    struct fuse_entry_param e {};
    e.ino = fs_.inodes().acquire(pool, key);
    e.attr_timeout = rec != nullptr ? key_timeout(pool) : kKeyTimeout;
    e.entry_timeout = e.attr_timeout;
    if (rec != nullptr) {
        fs_.fill_key_attr(e.ino, pool, *rec, e.attr);
    } else {
        fs_.fill_reserved_attr(e.ino, pool, e.attr);
    }
    fs_.writers().add(*h, rec == nullptr);
    set_open_flags(fi, true);
    fi->fh = reinterpret_cast<uint64_t>(h.get());
    fs_.track(h.get());
    if (fuse_reply_create(req, &e, fi) == 0) {
        (void)h.release();  // owned by the kernel's handle until release
    } else {
        fs_.untrack(h.get());
        fs_.inodes().forget(e.ino, 1);
        std::lock_guard lock(h->mutex());
        fs_.writers().remove(*h);
    }
    trace_ok("create", pool, key);
}

// Reserves the name until a writable open takes it over.
void UncachedMode::mknod_key(fuse_req_t req, kvp::PoolId pool, const std::string& key,
                             mode_t /*mode*/) {
    fs_.writers().reserve_unopened(key);
    struct fuse_entry_param e {};
    e.ino = fs_.inodes().acquire(pool, key);
    fs_.fill_reserved_attr(e.ino, pool, e.attr);
    if (fuse_reply_entry(req, &e) != 0) {
        fs_.inodes().forget(e.ino, 1);
        fs_.writers().forget_unopened(key);
    }
    trace_ok("mknod", pool, key);
}

// Every open here gets a handle: a READ or WRITE without one names no open file.
void UncachedMode::read_unopened(fuse_req_t req, fuse_ino_t /*ino*/, size_t /*size*/,
                                 off_t /*off*/) {
    fuse_reply_err(req, EBADF);
}

void UncachedMode::write_unopened(fuse_req_t req, fuse_ino_t /*ino*/, std::string_view /*data*/,
                                  off_t /*off*/, int /*flags*/) {
    fuse_reply_err(req, EBADF);
}

void UncachedMode::flush_unopened(fuse_req_t req, fuse_ino_t /*ino*/) {
    fuse_reply_err(req, 0);
}

void UncachedMode::fsync_unopened(fuse_req_t req, fuse_ino_t /*ino*/, int /*datasync*/) {
    fuse_reply_err(req, 0);
}

void UncachedMode::truncate_key(fuse_req_t /*req*/, Ino ino, const KeyRef& ref, std::size_t size,
                                bool /*with_file*/) {
    const auto names = fs_.writers().share_names();
    truncate_by_path(fs_, ino, ref, size);
}

void UncachedMode::path_truncated(Ino /*ino*/, const KeyRef& ref, bool reserved) {
    key_changed(ref.pool, ref.key, reserved);
}

// For its creator a chmod to the mode an open handle created the key with changes nothing.
bool UncachedMode::chmod_to_create_mode(fuse_req_t /*req*/, Ino /*ino*/, const KeyRef& ref,
                                        mode_t mode) {
    const auto names = fs_.writers().own_names();
    for (FileHandle* h : fs_.writers().handles_of(ref.key)) {
        std::lock_guard lock(h->mutex());
        if (h->state().create_mode == mode) {
            return true;
        }
    }
    return false;
}

// A name the kernel forgets can no longer be opened: a mknod reservation of it ends.
void UncachedMode::forget_inode(Ino ino, std::uint64_t nlookup) {
    if (auto gone = fs_.inodes().forget(ino, nlookup); gone && gone->pool == kvp::PoolId::guest) {
        fs_.writers().forget_unopened(gone->key);
    }
}

}  // namespace kvpfs
