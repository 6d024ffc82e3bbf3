// setattr: truncate, chmod/chown, times (docs/behaviour.md §5, §7).

#include <cerrno>
#include <string>

#include "filesystem.hpp"

namespace kvpfs {

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                struct fuse_file_info* fi) {
    guarded(req, "setattr", [&] {
        Filesystem& fs = fs_of(req);
        auto ref = ino >= kFirstKeyIno ? fs.inodes().resolve(ino) : std::nullopt;
        if (ino >= kFirstKeyIno && !ref) {
            reply_error(req, "setattr", ENOENT, "inode " + std::to_string(ino));
            return;
        }
        if (ref) {
            set_request_subject(ref->pool, ref->key);
        }
        const std::string what = ref ? describe_key(ref->pool, ref->key)
                                     : std::string(ino == kRootIno ? "/" : "a pool directory");
        if (int err = fs.change_refusal(ref ? std::optional(ref->pool) : std::nullopt); err != 0) {
            reply_error(req, "setattr", err,
                        what + ": " + (err == EROFS ? "mounted read-only" : "not writable"));
            return;
        }
        if ((to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) != 0) {
            reply_error(req, "setattr", EPERM, what + ": mode and owner are fixed");
            return;
        }
        // Times: accepted and ignored (a key's mtime is when its value changed).
        if ((to_set & FUSE_SET_ATTR_SIZE) != 0) {
            if (attr->st_size < 0) {
                reply_error(req, "setattr", EINVAL, what + ": negative size");
                return;
            }
            const auto size = static_cast<std::size_t>(attr->st_size);
            FileHandle* h = handle_of(fi);
            if (h != nullptr && h->writable()) {
                struct stat st {};
                int err = 0;
                {
                    std::lock_guard lock(h->mutex());
                    err = h->truncate(size);
                    fs.fill_handle_attr(ino, *h, fs.started(), st);
                }
                if (err != 0) {
                    reply_error(req, "setattr", err,
                                what + ": truncate to " + std::to_string(size) +
                                    (err == EINVAL ? ": growing a value is not possible"
                                                   : ": an earlier write was refused"));
                    return;
                }
                fuse_reply_attr(req, &st, kKeyTimeout);
                return;
            }
            // truncate(2) by path: cut the current value and commit at once.
            kvp::PoolFile& pool = fs.pool(ref->pool);
            auto snap = pool.snapshot();
            const kvp::SnapshotRecord* rec = snap->find(ref->key);
            if (rec == nullptr) {
                reply_error(req, "setattr", ENOENT, what);
                return;
            }
            std::string content = shown_content(rec->record.value, fs.options().raw);
            if (size > content.size()) {
                reply_error(req, "setattr", EINVAL,
                            what + ": truncate to " + std::to_string(size) +
                                ": growing a value is not possible");
                return;
            }
            if (size < content.size()) {
                content.resize(size);
                pool.set(ref->key, stored_value(content, fs.options().raw), fs.options().limits);
            }
        }
        struct stat st {};
        if (int err = fs.attr_of(ino, st); err != 0) {
            reply_error(req, "setattr", err, what);
            return;
        }
        fuse_reply_attr(req, &st, kKeyTimeout);
        trace_ok("setattr", what);
    });
}

}  // namespace kvpfs
