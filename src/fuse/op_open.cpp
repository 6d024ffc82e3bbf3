// Opening key files: open, create, mknod, read, release.
//
// Every key file is opened with direct_io: reads always come to the daemon and are
// answered from the handle's own snapshot, so no page cache can serve a stale value and
// the kernel never cuts a read at a stale i_size (docs/behaviour.md §3). Read-only opens also set
// noflush: their close() needs no round trip. -o cache keeps this: the page cache is one per
// inode, cut at the kernel's i_size, which an O_TRUNC open sets to 0 and a value changing
// between a size and a read makes wrong, so page-cached reads came out empty or torn
// (docs/performance.md, "The cached mode"). -o cache=all trades those rules for the page
// cache: its files have no handle at all (mode_cache_all.cpp).

#include <fcntl.h>
#include <sys/uio.h>

#include <cerrno>
#include <memory>
#include <shared_mutex>

#include "auto_view.hpp"
#include "filesystem.hpp"
#include "key_name.hpp"

namespace kvpfs {
namespace {

// An open of a key the pool no longer holds. With -o cache the kernel's entry for it is
// older than the removal (another process's, not yet invalidated): ESTALE makes the kernel
// look the name up again and retry the open once, so O_CREAT then creates the key.
int stale_errno(const Filesystem& fs, kvp::PoolId pool) {
    return fs.mode().caches(pool) ? ESTALE : ENOENT;
}

bool wants_write(int flags) {
    return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0;
}

// Checks that `name` in `parent` may be created (docs/behaviour.md §7) and decodes it; replies with
// the refusal and returns nullopt otherwise.
std::optional<std::string> creatable_key(fuse_req_t req, const char* op, fuse_ino_t parent,
                                         const char* name) {
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
    if (const kvp::Violation v = kvp::check_key(*key, fs.options().limits);
        v != kvp::Violation::none) {
        reply_error(req, op, kvp::key_errno(v),
                    describe_key(*pool, *key) + ": " + kvp::describe(v));
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
        std::shared_lock<kvp::RankedSharedMutex> names;
        if (write) {
            if (int err = fs.change_refusal(ref->pool); err != 0) {
                reply_error(req, "open", err,
                            describe_key(ref->pool, ref->key) + ": open for writing: " +
                                (err == EROFS ? "mounted read-only" : "only guest/ is writable"));
                return;
            }
            // The name is resolved again under the names lock: a rename may have moved it.
            names = fs.writers().share_names();
            ref = fs.inodes().resolve(ino);
            if (!ref) {
                reply_error(req, "open", ENOENT, "inode " + std::to_string(ino));
                return;
            }
            const bool present = fs.pool(ref->pool).snapshot()->find(ref->key) != nullptr;
            const bool adopted = !present && fs.writers().adopt_unopened(ref->key);
            if (!present && !adopted && !fs.reserved(ref->pool, ref->key)) {
                reply_error(req, "open", stale_errno(fs, ref->pool),
                            describe_key(ref->pool, ref->key));
                return;
            }
            fs.mode().open_key(req, fi, *ref, true, present, {});
        } else {
            auto snap = fs.pool(ref->pool).snapshot();
            const ShownRecord shown(fs, ref->pool, *snap, ref->key);
            const kvp::SnapshotRecord* rec = shown.get();
            if (rec == nullptr && !fs.reserved(ref->pool, ref->key)) {
                reply_error(req, "open", stale_errno(fs, ref->pool),
                            describe_key(ref->pool, ref->key));
                return;
            }
            fs.mode().open_key(
                req, fi, *ref, false, true,
                rec != nullptr ? std::string_view(rec->record.value) : std::string_view());
        }
        trace_ok("open", ref->pool, ref->key);
    });
}

// open with O_CREAT: what it stores, and when, is the mode's (mode_uncached.cpp,
// mode_cache_all.cpp).
void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               struct fuse_file_info* fi) {
    guarded(req, "create", [&] {
        auto key = creatable_key(req, "create", parent, name);
        if (!key) {
            return;
        }
        Filesystem& fs = fs_of(req);
        const kvp::PoolId pool = *pool_of_dir_ino(parent);
        const auto names = fs.writers().share_names();
        // The last released state while another process holds the lock (as a lookup): the
        // kernel holds the directory until this replies, and the write waits for the lock.
        auto snap = fs.pool(pool).snapshot(kvp::PoolFile::LockWait::none);
        const kvp::SnapshotRecord* rec = snap->find(*key);
        // A reserved name exists: O_EXCL fails and leaves its reservation to its creator.
        if ((rec != nullptr || fs.reserved(pool, *key)) && (fi->flags & O_EXCL) != 0) {
            reply_error(req, "create", EEXIST, describe_key(pool, *key) + ": exists");
            return;
        }
        if (rec == nullptr) {
            (void)fs.writers().adopt_unopened(*key);  // a mknod's name: this create takes it
        }
        fs.mode().create_key(req, pool, *key, rec, mode, fi);
    });
}

// mknod of a regular file: the mode reserves the name or stores the empty key.
void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t /*rdev*/) {
    guarded(req, "mknod", [&] {
        if (!S_ISREG(mode)) {
            reply_error(req, "mknod", EPERM,
                        std::string(name) + ": only regular files (keys) can exist here");
            return;
        }
        auto key = creatable_key(req, "mknod", parent, name);
        if (!key) {
            return;
        }
        Filesystem& fs = fs_of(req);
        const kvp::PoolId pool = *pool_of_dir_ino(parent);
        const auto names = fs.writers().share_names();
        if (fs.pool(pool).snapshot()->find(*key) != nullptr || fs.reserved(pool, *key)) {
            reply_error(req, "mknod", EEXIST, describe_key(pool, *key) + ": exists");
            return;
        }
        fs.mode().mknod_key(req, pool, *key, mode);
    });
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info* fi) {
    if (handle_of(fi) == nullptr) {
        fs_of(req).mode().read_unopened(req, ino, size, off);
        return;
    }
    // Never touch the handle after replying: the reader may close at once and the
    // release (on another thread) frees it.
    FileHandle& h = *handle_of(fi);
    const auto pos = static_cast<std::size_t>(off < 0 ? 0 : off);
    if (h.writable()) {
        // The key's current value; errors (a lock timeout) reach the reader.
        guarded(req, "read", [&] {
            std::string content;
            {
                std::lock_guard lock(h.mutex());
                content = writer_content(fs_of(req), h);
            }
            const std::string_view part =
                pos < content.size() ? std::string_view(content).substr(pos, size) : "";
            fuse_reply_buf(req, part.data(), part.size());
        });
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
    if (handle_of(fi) == nullptr) {
        fuse_reply_err(req, 0);  // a handle-less create's (before the first open set the rule)
        return;
    }
    std::unique_ptr<FileHandle> h(handle_of(fi));
    Filesystem& fs = fs_of(req);
    fs.untrack(h.get());
    if (h->writable()) {
        try {
            finish_writer(fs, *h);
        } catch (const std::exception& e) {
            kvp::log(kvp::LogLevel::error, std::string("release: ") + e.what());
        }
    }
    fuse_reply_err(req, 0);
}

}  // namespace kvpfs
