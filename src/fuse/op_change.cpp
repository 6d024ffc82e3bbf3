// Changes of the namespace: unlink, rename, and the refused mkdir/rmdir/symlink/link
// (docs/behaviour.md §5, §7, in its order of precedence: EPERM, EXDEV, then EROFS/EACCES).

#include <linux/fs.h>

#include <cerrno>
#include <string>

#include "filesystem.hpp"
#include "key_name.hpp"

namespace kvpfs {
namespace {

std::string dir_name(fuse_ino_t dir) {
    auto pool = pool_of_dir_ino(dir);
    return pool ? std::string(kvp::pool_name(*pool)) : std::string();
}

// Checks the refusal for a change in `dir` and decodes `name`; replies and returns
// nullopt when refused.
std::optional<std::string> key_for_change(fuse_req_t req, const char* op, fuse_ino_t dir,
                                          const char* name) {
    Filesystem& fs = fs_of(req);
    if (int err = fs.change_refusal(pool_of_dir_ino(dir)); err != 0) {
        reply_error(req, op, err,
                    dir_name(dir) + "/" + name + ": " +
                        (err == EROFS ? "mounted read-only" : "only guest/ is writable"));
        return std::nullopt;
    }
    auto key = kvp::name_to_key(name);
    if (!key) {
        reply_error(
            req, op, EINVAL,
            dir_name(dir) + "/" + name + ": not a canonical key name (% must be %25, %2F or %2E)");
    } else if (auto pool = pool_of_dir_ino(dir)) {
        set_request_subject(*pool, *key);
    }
    return key;
}

void refuse_eperm(fuse_req_t req, const char* op, const char* name) {
    reply_error(req, op, EPERM,
                std::string(name) + ": only regular files (keys) exist in this filesystem");
}

}  // namespace

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guarded(req, "unlink", [&] {
        auto key = key_for_change(req, "unlink", parent, name);
        if (!key) {
            return;
        }
        const kvp::PoolId pool = *pool_of_dir_ino(parent);
        Filesystem& fs = fs_of(req);
        // Open handles of the key store nothing from now on (as for an unlinked file).
        const auto names = fs.writers().own_names();
        const bool reserved = fs.reserved(pool, *key);
        if (!fs.pool(pool).remove(*key) && !reserved) {
            reply_error(req, "unlink", ENOENT, describe_key(pool, *key));
            return;
        }
        fs.writers().unlinked(*key);
        fs.inodes().removed(pool, *key);  // handle-less writes to it store nothing
        fs.mode().listing_changed(pool);  // the kernel drops the name and the inode's attributes
        fuse_reply_err(req, 0);
        trace_ok("unlink", pool, *key);
    });
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) {
    guarded(req, "rename", [&] {
        if (parent != newparent) {
            reply_error(req, "rename", EXDEV,
                        dir_name(parent) + "/" + name + " -> " + dir_name(newparent) + "/" +
                            newname + ": keys move only within one pool");
            return;
        }
        auto from = key_for_change(req, "rename", parent, name);
        if (!from) {
            return;
        }
        auto to = kvp::name_to_key(newname);
        if (!to) {
            reply_error(req, "rename", EINVAL,
                        dir_name(parent) + "/" + newname +
                            ": not a canonical key name (% must be %25, %2F or %2E)");
            return;
        }
        Filesystem& fs = fs_of(req);
        const kvp::PoolId pool = *pool_of_dir_ino(parent);
        const std::string what = describe_key(pool, *from) + " -> " + kvp::key_to_name(*to);
        if ((flags & RENAME_EXCHANGE) != 0) {
            reply_error(req, "rename", EINVAL, what + ": exchange is not supported");
            return;
        }
        kvp::PoolFile& pf = fs.pool(pool);
        // Open handles follow the name: writes to `from` go to `to` from now on.
        const auto names = fs.writers().own_names();
        if ((flags & RENAME_NOREPLACE) != 0 &&
            (pf.snapshot()->find(*to) != nullptr || fs.reserved(pool, *to))) {
            reply_error(req, "rename", EEXIST, what + ": target exists");
            return;
        }
        if (!pf.rename(*from, *to, fs.options().limits)) {
            if (!fs.reserved(pool, *from)) {
                reply_error(req, "rename", ENOENT, what);
                return;
            }
            // A reserved name holds no value yet: the target becomes that (empty) file, still
            // reserved for its handles, so their first write creates it. A replaced target
            // goes, as the rename asks.
            if (*from != *to) {
                (void)pf.remove(*to);
            }
        }
        fs.writers().renamed(*from, *to);
        fs.inodes().renamed(pool, *from, *to);
        fs.mode().listing_changed(pool);  // the kernel moves the names itself
        fuse_reply_err(req, 0);
        trace_ok("rename", what);
    });
}

void op_mkdir(fuse_req_t req, fuse_ino_t /*parent*/, const char* name, mode_t /*mode*/) {
    refuse_eperm(req, "mkdir", name);
}

void op_rmdir(fuse_req_t req, fuse_ino_t /*parent*/, const char* name) {
    refuse_eperm(req, "rmdir", name);
}

void op_symlink(fuse_req_t req, const char* /*link*/, fuse_ino_t /*parent*/, const char* name) {
    refuse_eperm(req, "symlink", name);
}

void op_link(fuse_req_t req, fuse_ino_t /*ino*/, fuse_ino_t /*newparent*/, const char* newname) {
    refuse_eperm(req, "link", newname);
}

}  // namespace kvpfs
