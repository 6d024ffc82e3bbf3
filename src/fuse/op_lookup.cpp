// Name resolution and attributes: init, lookup, forget, getattr, statfs.

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "auto_view.hpp"
#include "filesystem.hpp"
#include "key_name.hpp"

namespace kvpfs {

void op_init(void* userdata, struct fuse_conn_info* conn) {
    auto& fs = *static_cast<Filesystem*>(userdata);
    start_intrinsic_lookups(fs);
    // Each pool read once now, if its lock is free: a lookup while another process later
    // holds the lock then answers from this last released state at once instead of waiting
    // (under the kernel's directory lock, so that the waits of the creates behind it would
    // add up). A pool locked or unreadable now is read at its first use, as before.
    for (const kvp::PoolId id : kvp::kAllPools) {
        try {
            (void)fs.pool(id).snapshot(kvp::PoolFile::LockWait::attempt);
        } catch (const std::exception&) {
            // Its first operation reads it (and reports what is wrong).
        }
    }
    // libfuse ends the session (EPROTO) unless init repeats -o max_read's size.
    if (fs.options().max_read != 0) {
        conn->max_read = fs.options().max_read;
    }
    // No readdirplus: its entries would be cached attributes of key files.
    conn->want &= ~static_cast<unsigned>(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
    // Content is never cached (direct_io), so no data invalidation heuristics are needed.
    conn->want &= ~static_cast<unsigned>(FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_WRITEBACK_CACHE);
    // What the mode needs: how O_TRUNC comes, and data invalidation for cached listings.
    fs.mode().want(*conn);
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guarded(req, "lookup", [&] {
        Filesystem& fs = fs_of(req);
        struct fuse_entry_param e {};
        if (parent == kRootIno) {
            for (kvp::PoolId id : kvp::kShownPools) {
                if (kvp::pool_name(id) == name) {
                    e.ino = pool_dir_ino(id);
                    e.attr_timeout = kDirTimeout;
                    e.entry_timeout = kDirTimeout;
                    fs.fill_dir_attr(id, e.attr);
                    fuse_reply_entry(req, &e);
                    return;
                }
            }
            // Nothing else ever appears in the root: a cached negative entry is safe.
            e.ino = 0;
            e.entry_timeout = kDirTimeout;
            fuse_reply_entry(req, &e);
            return;
        }
        auto pool = pool_of_dir_ino(parent);
        if (!pool) {
            reply_error(req, "lookup", ENOTDIR, std::string("inode ") + std::to_string(parent));
            return;
        }
        auto key = kvp::name_to_key(name);
        if (!key) {
            reply_error(req, "lookup", EINVAL,
                        std::string(kvp::pool_name(*pool)) + "/" + name +
                            ": not a canonical key name (% must be %25, %2F or %2E)");
            return;
        }
        set_request_subject(*pool, *key);
        // While another process holds the pool's lock, the last released state answers at
        // once: the kernel holds the directory during a lookup, and a create's lookup that
        // waited here would make every create behind it in that directory wait in turn
        // (waits would add up). The wait is the change's, later, without the directory.
        auto snap = fs.pool(*pool).snapshot(kvp::PoolFile::LockWait::none);
        const ShownRecord shown(fs, *pool, *snap, *key);
        const kvp::SnapshotRecord* rec = shown.get();
        if (rec == nullptr && !fs.reserved(*pool, *key) && fs.mode().caches(*pool)) {
            // -o cache: a negative entry, dropped when the key appears.
            e.ino = 0;
            e.entry_timeout = kCachedKeyTimeout;
            fuse_reply_entry(req, &e);
            return;
        }
        if (rec == nullptr && !fs.reserved(*pool, *key)) {
            // Not cached (no negative entry): the key may appear at any time.
            if (kvp::log_debug_enabled()) {
                reply_error(req, "lookup", ENOENT, describe_key(*pool, *key));
            } else {
                fuse_reply_err(req, ENOENT);  // the hot "does it exist?" path: no strings
            }
            return;
        }
        e.ino = fs.inodes().acquire(*pool, *key);
        e.attr_timeout = rec != nullptr ? fs.mode().key_timeout(*pool) : kKeyTimeout;
        e.entry_timeout = e.attr_timeout;
        if (rec != nullptr) {
            fs.fill_key_attr(e.ino, *pool, *rec, e.attr);
        } else {
            fs.fill_reserved_attr(e.ino, *pool, e.attr);
        }
        if (fuse_reply_entry(req, &e) != 0) {
            fs.inodes().forget(e.ino, 1);  // the kernel never got it
        }
        trace_ok("lookup", *pool, *key);
    });
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    fs_of(req).mode().forget_inode(ino, nlookup);
    fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data* forgets) {
    for (size_t i = 0; i < count; ++i) {
        fs_of(req).mode().forget_inode(forgets[i].ino, forgets[i].nlookup);
    }
    fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
    guarded(req, "getattr", [&] {
        Filesystem& fs = fs_of(req);
        struct stat st {};
        FileHandle* h = handle_of(fi);
        if (h != nullptr && h->writable()) {
            // An open writable file shows what reads through it see.
            std::lock_guard lock(h->mutex());
            auto snap = fs.pool(h->pool()).snapshot();
            const kvp::SnapshotRecord* rec = snap->find(h->state().key);
            fs.fill_handle_attr(ino, writer_content(fs, *h).size(),
                                rec != nullptr ? rec->changed_at : fs.started(), st);
        } else if (int err = fs.attr_of(ino, st); err != 0) {
            if (err == ENOENT && ino >= kFirstKeyIno && fi == nullptr) {
                // -o cache: the kernel holds an entry of a key another process removed
                // (not yet invalidated). ESTALE makes it look the name up again (stat(2) and
                // open(2) retry once), instead of failing on the old entry. Only for a path
                // walk (no file): a read that checks its open file's size is not retried,
                // and gets ENOENT as without -o cache.
                if (const auto ref = fs.inodes().resolve(ino); ref && fs.mode().caches(ref->pool)) {
                    err = ESTALE;
                }
            }
            reply_error(req, "getattr", err, "inode " + std::to_string(ino));
            return;
        }
        double timeout = ino < kFirstKeyIno ? kDirTimeout : kKeyTimeout;
        if (fs.mode().caches_keys() && ino >= kFirstKeyIno && (h == nullptr || !h->writable())) {
            // A writable handle's view is its own (an O_TRUNC not yet written), never kept.
            if (auto ref = fs.inodes().resolve(ino); ref && !fs.reserved(ref->pool, ref->key)) {
                timeout = fs.mode().key_timeout(ref->pool);
            }
        }
        fuse_reply_attr(req, &st, timeout);
    });
}

void op_statfs(fuse_req_t req, fuse_ino_t /*ino*/) {
    guarded(req, "statfs", [&] {
        // Something true for df: the bytes of the shown pool files as used blocks, and the
        // keys the directories list as used inodes (`df -i MOUNTPOINT` counts the files `ls`
        // shows, auto/'s intrinsic items included). Free is the room the pools' file system
        // has left to grow, in blocks and in new keys (records): never 0 while a key fits,
        // so monitoring that alarms on a full file system or no free inodes stays quiet.
        Filesystem& fs = fs_of(req);
        std::uint64_t bytes = 0;
        std::uint64_t keys = 0;
        for (kvp::PoolId id : kvp::kShownPools) {
            auto snap = fs.pool(id).snapshot();
            bytes += snap->file_size();
            keys += snap->key_count() + intrinsic_names(fs, id, *snap).size();
        }
        struct statvfs sv {};
        sv.f_bsize = 4096;
        sv.f_frsize = 4096;
        const kvp::PoolDirectory::Room room = fs.pools().room();
        sv.f_bfree = sv.f_bavail = room.free_bytes / sv.f_frsize;
        sv.f_blocks = (bytes + sv.f_frsize - 1) / sv.f_frsize + sv.f_bfree;
        sv.f_ffree = sv.f_favail = room.free_records;
        sv.f_files = keys + sv.f_ffree;
        sv.f_namemax = 1024;  // the kernel's FUSE name limit; keys are at most 511 bytes
        fuse_reply_statfs(req, &sv);
    });
}

}  // namespace kvpfs
