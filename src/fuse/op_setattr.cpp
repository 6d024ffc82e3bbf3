// setattr: truncate, chmod/chown, times (docs/behaviour.md §5, §7).

#include <cerrno>
#include <shared_mutex>
#include <string>

#include "filesystem.hpp"
#include "write_rules.hpp"

namespace kvpfs {
namespace {

// A chmod or chown that keeps mode and owner as they are (install -m 644, cp -p, rsync -a,
// tar -x) succeeds; one that would change them is EPERM.
bool changes_mode_or_owner(const struct stat& now, const struct stat* attr, int to_set) {
    return ((to_set & FUSE_SET_ATTR_MODE) != 0 &&
            (attr->st_mode & 07777) != (now.st_mode & 07777)) ||
           ((to_set & FUSE_SET_ATTR_UID) != 0 && attr->st_uid != now.st_uid) ||
           ((to_set & FUSE_SET_ATTR_GID) != 0 && attr->st_gid != now.st_gid);
}

// A chmod (alone) to the mode the calling process created the key with: for its creator
// nothing changes (install and rsync chmod their new file to its create mode, cp to the
// source's). Who remembers that mode is the mode's business (a handle, or a table).
bool chmod_to_create_mode(fuse_req_t req, Filesystem& fs, Ino ino, const KeyRef& ref,
                          const struct stat* attr, int to_set) {
    if ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) != 0 || ref.pool != kvp::PoolId::guest) {
        return false;
    }
    return fs.mode().chmod_to_create_mode(req, ino, ref, attr->st_mode & 07777U);
}

}  // namespace

void truncate_by_path(Filesystem& fs, Ino ino, const KeyRef& ref, std::size_t size) {
    const Options& o = fs.options();
    const bool reserved = fs.reserved(ref.pool, ref.key);
    static const std::string empty;
    if (update_or_refuse(
            fs.pool(ref.pool), ref.key, o.limits,
            [&](const std::string* current) -> std::optional<std::string> {
                // -o cache=all: the value the mount shows may be the empty one.
                const bool truncated = fs.mode().take_truncation(ino) && current != nullptr;
                if (truncated) {
                    current = &empty;
                }
                if (current == nullptr && !reserved) {
                    // -o cache: the kernel's entry is older than the key's
                    // removal; ESTALE makes it look the name up again (an
                    // open(O_CREAT|O_TRUNC) then creates it).
                    throw kvp::Error(fs.mode().caches(ref.pool) ? ESTALE : ENOENT, "no such key");
                }
                std::string content = current != nullptr ? shown_content(*current, o.raw) : "";
                if (size > content.size()) {
                    throw kvp::Error(EINVAL, "truncate to " + std::to_string(size) +
                                                 ": growing a value is not possible");
                }
                if (current != nullptr && size == content.size() && !truncated) {
                    return std::nullopt;  // nothing cut
                }
                content.resize(size);
                return std::string(stored_value(content, o.raw));
            })) {
        fs.mode().path_truncated(ino, ref, reserved);
    }
}

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
        FileHandle* h = handle_of(fi);
        if (h != nullptr && !h->writable()) {
            h = nullptr;
        }
        if ((to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) != 0) {
            struct stat now {};
            fs.fill_reserved_attr(ino, ref->pool, now);  // mode and owner are the same for all
            if (changes_mode_or_owner(now, attr, to_set) &&
                !chmod_to_create_mode(req, fs, ino, *ref, attr, to_set)) {
                reply_error(req, "setattr", EPERM, what + ": mode and owner are fixed");
                return;
            }
        }
        if ((to_set & FUSE_SET_ATTR_SIZE) != 0 && attr->st_size < 0) {
            reply_error(req, "setattr", EINVAL, what + ": negative size");
            return;
        }
        const auto size = static_cast<std::size_t>(attr->st_size);
        const bool times = (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                                      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) != 0;
        if (h != nullptr) {
            struct stat st {};
            {
                const auto names = fs.writers().share_names();
                std::lock_guard lock(h->mutex());
                if ((to_set & FUSE_SET_ATTR_SIZE) != 0) {
                    truncate_through(fs, *h, size);
                } else if (times) {
                    create_if_reserved(fs, *h);  // touch: times set on a new, unwritten file
                }
                fs.fill_handle_attr(ino, writer_content(fs, *h).size(), fs.started(), st);
            }
            // What the handle shows (an O_TRUNC not yet written) is its own: never kept.
            fuse_reply_attr(req, &st, kKeyTimeout);
            trace_ok("setattr", what);
            return;
        }
        // Times are accepted and ignored (a key's mtime is when its value changed), except
        // that they make a touched, reserved name a key.
        if ((to_set & FUSE_SET_ATTR_SIZE) != 0) {
            // An ftruncate comes with its file (fh 0 in -o cache=all); an open(O_TRUNC) the
            // kernel makes itself and a truncate(2) without one.
            fs.mode().truncate_key(req, ino, *ref, size, fi != nullptr);  // cache=all: maybe noted
        } else if (times && fs.reserved(ref->pool, ref->key)) {
            const auto names = fs.writers().own_names();
            touch_reserved(fs, ref->key);
        }
        struct stat st {};
        if (int err = fs.attr_of(ino, st); err != 0) {
            reply_error(req, "setattr", err, what);
            return;
        }
        fuse_reply_attr(req, &st,
                        ref && !fs.reserved(ref->pool, ref->key) ? fs.mode().key_timeout(ref->pool)
                                                                 : kKeyTimeout);
        trace_ok("setattr", what);
    });
}

}  // namespace kvpfs
