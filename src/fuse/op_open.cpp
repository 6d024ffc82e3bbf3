// Opening key files: open, create, mknod, read, release.
//
// Every key file is opened with direct_io: reads always come to the daemon and are
// answered from the handle's own snapshot, so no page cache can serve a stale value and
// the kernel never cuts a read at a stale i_size (CONTRACT §3). Read-only opens also set
// noflush: their close() needs no round trip.

#include <fcntl.h>
#include <sys/uio.h>

#include <cerrno>
#include <memory>

#include "auto_view.hpp"
#include "filesystem.hpp"
#include "key_name.hpp"

namespace kvpfs {
namespace {

bool wants_write(int flags) {
    return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0;
}

void set_open_flags(struct fuse_file_info* fi, bool writable) {
    fi->direct_io = 1;
    fi->keep_cache = 0;
    fi->noflush = writable ? 0 : 1;
}

enum class Created { no, now, deferred };

// A writable handle on the current value of `key` (must exist unless created).
std::unique_ptr<FileHandle> writable_handle(Filesystem& fs, kvp::PoolId pool,
                                            const std::string& key, int flags, Created created) {
    const Options& o = fs.options();
    std::string initial;
    bool truncated = false;
    if ((flags & O_TRUNC) != 0) {
        // Replacing a value with "" is a change, and so is a deferred creation; a key
        // created now already is "".
        truncated = created != Created::now;
    } else if (created == Created::no) {
        auto snap = fs.pool(pool).snapshot();
        const kvp::SnapshotRecord* rec = snap->find(key);
        if (rec != nullptr) {
            initial = shown_content(rec->record.value, o.raw);
        } else if (fs.pending_create(pool, key)) {
            initial = shown_content("", o.raw);
        } else {
            throw kvp::Error(ENOENT, describe_key(pool, key) + ": no such key");
        }
    }
    return std::make_unique<FileHandle>(pool, key, std::move(initial), (flags & O_APPEND) != 0,
                                        truncated, o.raw, o.limits);
}

// Creates `name` in `parent` if absent (touch, echo >, mknod S_IFREG). With O_TRUNC a new
// key is only checked here and created by the handle's first commit (`echo > guest/new`
// whose write is refused leaves the pool as it was). Replies with an error and returns
// nullopt on refusal.
std::optional<std::string> create_key(fuse_req_t req, const char* op, fuse_ino_t parent,
                                      const char* name, int flags, Created& created) {
    Filesystem& fs = fs_of(req);
    const auto pool = pool_of_dir_ino(parent);
    if (int err = fs.change_refusal(pool); err != 0) {
        reply_error(req, op, err,
                    (pool ? std::string(kvp::pool_name(*pool)) : std::string("/")) + "/" + name +
                        ": " + (err == EROFS ? "mounted read-only" : "only guest/ is writable"));
        return std::nullopt;
    }
    auto key = kvp::name_to_key(name);
    if (!key) {
        reply_error(req, op, EINVAL,
                    std::string("guest/") + name +
                        ": not a canonical key name (% must be %25, %2F or %2E)");
        return std::nullopt;
    }
    set_request_subject(kvp::PoolId::guest, *key);
    const bool exclusive = (flags & O_EXCL) != 0;
    if ((flags & O_TRUNC) != 0) {
        const bool exists =
            fs.pool(*pool).snapshot()->find(*key) != nullptr || fs.pending_create(*pool, *key);
        if (exists) {
            created = Created::no;
        } else if (const kvp::Violation v = kvp::check_key(*key, fs.options().limits);
                   v != kvp::Violation::none) {
            reply_error(req, op, kvp::key_errno(v),
                        describe_key(*pool, *key) + ": " + kvp::describe(v));
            return std::nullopt;
        } else {
            created = Created::deferred;
        }
    } else {
        created =
            fs.pool(*pool).create_if_absent(*key, fs.options().limits) ? Created::now : Created::no;
    }
    if (created == Created::no && exclusive) {
        reply_error(req, op, EEXIST, describe_key(*pool, *key) + ": exists");
        return std::nullopt;
    }
    return key;
}

}  // namespace

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
    guarded(req, "open", [&] {
        Filesystem& fs = fs_of(req);
        auto ref = fs.inodes().resolve(ino);
        if (!ref) {
            reply_error(req, "open", ino < kFirstKeyIno ? EISDIR : ENOENT,
                        "inode " + std::to_string(ino));
            return;
        }
        set_request_subject(ref->pool, ref->key);
        const bool write = wants_write(fi->flags);
        std::unique_ptr<FileHandle> h;
        if (write) {
            if (int err = fs.change_refusal(ref->pool); err != 0) {
                reply_error(req, "open", err,
                            describe_key(ref->pool, ref->key) + ": open for writing: " +
                                (err == EROFS ? "mounted read-only" : "only guest/ is writable"));
                return;
            }
            h = writable_handle(fs, ref->pool, ref->key, fi->flags, Created::no);
        } else {
            auto snap = fs.pool(ref->pool).snapshot();
            const kvp::SnapshotRecord* rec = snap->find(ref->key);
            std::optional<kvp::SnapshotRecord> intrinsic;
            if (rec == nullptr && (intrinsic = intrinsic_record(fs, ref->pool, ref->key))) {
                rec = &*intrinsic;
            }
            if (rec == nullptr && !fs.pending_create(ref->pool, ref->key)) {
                reply_error(req, "open", ENOENT, describe_key(ref->pool, ref->key));
                return;
            }
            const std::string_view value =
                rec != nullptr ? std::string_view(rec->record.value) : std::string_view();
            h = std::make_unique<FileHandle>(ref->pool, ref->key, value, fs.options().raw);
        }
        set_open_flags(fi, write);
        fi->fh = reinterpret_cast<uint64_t>(h.get());
        fs.track(h.get());
        if (fuse_reply_open(req, fi) == 0) {
            (void)h.release();  // owned by the kernel's handle until release
        } else {
            fs.untrack(h.get());
        }
        trace_ok("open", ref->pool, ref->key);
    });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t /*mode*/,
               struct fuse_file_info* fi) {
    guarded(req, "create", [&] {
        Filesystem& fs = fs_of(req);
        Created created = Created::no;
        auto key = create_key(req, "create", parent, name, fi->flags, created);
        if (!key) {
            return;
        }
        const kvp::PoolId pool = *pool_of_dir_ino(parent);
        auto h = writable_handle(fs, pool, *key, fi->flags, created);
        struct fuse_entry_param e {};
        e.ino = fs.inodes().acquire(pool, *key);
        e.attr_timeout = kKeyTimeout;
        e.entry_timeout = kKeyTimeout;
        if (created == Created::deferred) {
            fs.add_pending_create(pool, *key);
            h->set_pending_create();
            fs.fill_pending_attr(e.ino, pool, e.attr);
        } else {
            auto snap = fs.pool(pool).snapshot();
            const kvp::SnapshotRecord* rec = snap->find(*key);
            if (rec != nullptr) {
                fs.fill_key_attr(e.ino, pool, *rec, e.attr);
            } else {
                fs.fill_pending_attr(e.ino, pool, e.attr);  // removed meanwhile: still ours
            }
        }
        set_open_flags(fi, true);
        fi->fh = reinterpret_cast<uint64_t>(h.get());
        fs.track(h.get());
        if (fuse_reply_create(req, &e, fi) == 0) {
            (void)h.release();  // owned by the kernel's handle until release
        } else {
            fs.untrack(h.get());
            fs.inodes().forget(e.ino, 1);
            if (h->pending_create()) {
                fs.remove_pending_create(pool, *key);
            }
        }
        trace_ok("create", pool, *key);
    });
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t /*rdev*/) {
    guarded(req, "mknod", [&] {
        if (!S_ISREG(mode)) {
            reply_error(req, "mknod", EPERM,
                        std::string(name) + ": only regular files (keys) can exist here");
            return;
        }
        Filesystem& fs = fs_of(req);
        Created created = Created::no;
        auto key = create_key(req, "mknod", parent, name, O_EXCL, created);
        if (!key) {
            return;
        }
        const kvp::PoolId pool = *pool_of_dir_ino(parent);
        auto snap = fs.pool(pool).snapshot();
        const kvp::SnapshotRecord* rec = snap->find(*key);
        if (rec == nullptr) {
            throw kvp::Error(ENOENT, describe_key(pool, *key) + ": removed while being created");
        }
        struct fuse_entry_param e {};
        e.ino = fs.inodes().acquire(pool, *key);
        fs.fill_key_attr(e.ino, pool, *rec, e.attr);
        if (fuse_reply_entry(req, &e) != 0) {
            fs.inodes().forget(e.ino, 1);
        }
        trace_ok("mknod", pool, *key);
    });
}

void op_read(fuse_req_t req, fuse_ino_t /*ino*/, size_t size, off_t off,
             struct fuse_file_info* fi) {
    // Never touch the handle after replying: the reader may close at once and the
    // release (on another thread) frees it.
    FileHandle& h = *handle_of(fi);
    const auto pos = static_cast<std::size_t>(off < 0 ? 0 : off);
    if (h.writable()) {
        // Pending content can change under a concurrent write: copy the range.
        std::string copy;
        {
            std::lock_guard lock(h.mutex());
            const std::string_view head = h.head();
            if (pos < head.size()) {
                copy.assign(head.substr(pos, size));
            }
        }
        fuse_reply_buf(req, copy.data(), copy.size());
        return;
    }
    // A read-only handle's content is immutable: no lock, no copy. The local reference
    // keeps it alive until the reply is out even if the caller closes at once (the kernel
    // has copied the data before the caller can close; this also keeps sanitizers, whose
    // writev interceptor checks the buffers after the call, from seeing a freed buffer).
    const std::shared_ptr<const std::string> keep = h.content();
    const std::string_view head = h.head();
    const std::string_view tail = h.tail();
    struct iovec iov[2];
    int n = 0;
    std::size_t at = pos;
    std::size_t want = size;
    if (at < head.size() && want > 0) {
        const std::size_t len = std::min(want, head.size() - at);
        iov[n++] = {const_cast<char*>(head.data() + at), len};
        want -= len;
        at = head.size();
    }
    if (at >= head.size() && at < head.size() + tail.size() && want > 0) {
        const std::size_t tpos = at - head.size();
        const std::size_t len = std::min(want, tail.size() - tpos);
        iov[n++] = {const_cast<char*>(tail.data() + tpos), len};
    }
    fuse_reply_iov(req, iov, n);
}

void op_release(fuse_req_t req, fuse_ino_t /*ino*/, struct fuse_file_info* fi) {
    std::unique_ptr<FileHandle> h(handle_of(fi));
    fs_of(req).untrack(h.get());
    if (h->writable()) {
        std::lock_guard lock(h->mutex());
        if (h->dirty()) {
            // What flush() left: an O_TRUNC (or O_CREAT|O_TRUNC) with nothing written,
            // and writes that came after the last flush (a shared mapping's writeback).
            Filesystem& fs = fs_of(req);
            try {
                (void)commit_handle(fs, *h, "release");
            } catch (const std::exception& e) {
                kvp::log(kvp::LogLevel::error, std::string("release: ") + e.what());
            }
        }
        if (h->pending_create()) {
            fs_of(req).remove_pending_create(h->pool(), h->key());
        }
    }
    fuse_reply_err(req, 0);
}

}  // namespace kvpfs
