// Handle-less key files (-o cache=all).
//
// The kernel sends OPEN and RELEASE for every open, and FLUSH for every close, unless the file
// system once answers OPEN (and FLUSH) with ENOSYS: from then on it opens, closes and releases
// files itself, keeps their contents in its page cache, and sends READ, WRITE, SETATTR and
// FSYNC without a handle (fh 0). That is what makes an open+read+close of a cached key cost no
// request at all. The price is every rule that lives in a handle (docs/behaviour.md §5):
// - O_TRUNC arrives as setattr(size=0) at open: the mount shows the empty value from then
//   on, and the pool gets it with the next write (in one change with it) or
//   kPendingTruncation later (pending_truncations.hpp);
// - a create (and mknod) stores the empty key at once, so a create whose writes are all
//   refused leaves an empty key;
// - close() reaches nobody, so it cannot answer a refused write's errno again (the write
//   itself did), and a write that ends inside an unfinished UTF-8 sequence is refused;
// - a key removed meanwhile by another process reads as empty;
// - text mode: an append to an empty value stores just the data (not "\n" + data).
// Writes are still applied to the current value under the exclusive lock and stored before
// they return; O_APPEND comes with every WRITE (the open flags), so `>>` still loses no line.
//
// Page cache. A WRITE's pages are locked by the writer until the reply, so no request may drop
// its own key's pages (that would wait for itself): the kernel drops the written key's size and
// times itself after every write, a size it then gets from GETATTR that differs from its own
// drops the pages, and when the value came out other than the kernel laid it out in its pages
// (an append placed at the value's real end) the invalidation thread drops them right after
// the reply (Filesystem::inode_later).

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "auto_view.hpp"
#include "filesystem.hpp"
#include "unique_fd.hpp"
#include "write_rules.hpp"

namespace kvpfs {

bool handleless(const Filesystem& fs) {
    return fs.options().cache_contents;
}

namespace {

// The entry of a key a create or mknod just stored (or found); replies with it, or with an
// error when the key is gone again already. `fi`: a create's open, replied with the entry.
// `create_mode`: the mode the request made a new key with, which its caller may chmod it to.
void reply_new_entry(fuse_req_t req, const char* op, kvp::PoolId pool, const std::string& key,
                     struct fuse_file_info* fi, std::optional<mode_t> create_mode) {
    Filesystem& fs = fs_of(req);
    struct fuse_entry_param e {};
    e.ino = fs.inodes().acquire(pool, key);
    e.attr_timeout = fs.key_timeout(pool);
    e.entry_timeout = e.attr_timeout;
    if (int err = fs.attr_of(e.ino, e.attr); err != 0) {
        fs.inodes().forget(e.ino, 1);
        reply_error(req, op, err, describe_key(pool, key) + ": gone at once");
        return;
    }
    if (create_mode) {
        fs.set_create_mode(e.ino, fuse_req_ctx(req)->pid, *create_mode);
    }
    int rc = 0;
    if (fi != nullptr) {
        fi->fh = 0;
        fi->direct_io = 0;
        fi->keep_cache = 1;
        fi->noflush = 1;
        rc = fuse_reply_create(req, &e, fi);
    } else {
        rc = fuse_reply_entry(req, &e);
    }
    if (rc != 0) {
        fs.inodes().forget(e.ino, 1);
    }
}

}  // namespace

void create_handleless(fuse_req_t req, kvp::PoolId pool, const std::string& key, int flags,
                       mode_t mode, struct fuse_file_info* fi) {
    Filesystem& fs = fs_of(req);
    bool created = false;
    if (fs.pool(pool).update(
            key,
            [&](const std::string* current) -> std::optional<std::string> {
                created = current == nullptr;
                if (current != nullptr && ((flags & O_TRUNC) == 0 || current->empty())) {
                    return std::nullopt;  // an existing key: only O_TRUNC changes it
                }
                return std::string();
            },
            fs.options().limits)) {
        // The listing now; the key's own pages (an O_TRUNC of a key made meanwhile by another
        // process, which may hold pages dirtied through a shared mmap) from the thread once
        // the reply is out: dropping dirty pages writes them back first, which with -s would
        // wait for this very request.
        fs.listing_changed(pool);
        if (const auto ino = fs.inodes().find(pool, key); ino && !created) {
            fs.inode_later(*ino);
        }
    }
    reply_new_entry(req, "create", pool, key, fi,
                    created ? std::optional<mode_t>(mode & 07777) : std::nullopt);
    trace_ok("create", pool, key, created ? " stored empty" : "");
}

void mknod_handleless(fuse_req_t req, kvp::PoolId pool, const std::string& key, mode_t mode) {
    Filesystem& fs = fs_of(req);
    if (update_or_refuse(fs.pool(pool), key, fs.options().limits,
                         [&](const std::string* current) -> std::optional<std::string> {
                             if (current != nullptr) {
                                 throw kvp::Error(EEXIST, "exists");  // made meanwhile
                             }
                             return std::string();
                         })) {
        fs.listing_changed(pool);  // a new key: the kernel has no pages of it
    }
    reply_new_entry(req, "mknod", pool, key, nullptr, mode & 07777);
    trace_ok("mknod", pool, key, " stored empty");
}

void read_handleless(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off) {
    guarded(req, "read", [&] {
        Filesystem& fs = fs_of(req);
        std::string content;
        if (const auto ref = fs.inodes().resolve(ino)) {
            set_request_subject(ref->pool, ref->key);
            const auto snap = fs.pool(ref->pool).snapshot();
            const kvp::SnapshotRecord* rec = snap->find(ref->key);
            std::optional<kvp::SnapshotRecord> intrinsic;
            if (rec == nullptr && (intrinsic = intrinsic_record(fs, ref->pool, ref->key))) {
                rec = &*intrinsic;
            }
            if (rec != nullptr) {
                const bool truncated = fs.truncations().contains(ino);
                content = shown_content(
                    truncated ? std::string_view() : std::string_view(rec->record.value),
                    fs.options().raw);
            }
            if (!fs.caches(ref->pool)) {
                // auto/'s intrinsic items change without any file changing: their pages must
                // not outlive this read.
                fs.inode_later(ino);
            }
        }
        // An inode removed or renamed over through the mount, or a key gone meanwhile,
        // reads as empty: the kernel then cuts its size to what the reply holds.
        const auto pos = static_cast<std::size_t>(off < 0 ? 0 : off);
        const std::string_view part =
            pos < content.size() ? std::string_view(content).substr(pos, size) : "";
        fuse_reply_buf(req, part.data(), part.size());
    });
}

void write_handleless(fuse_req_t req, fuse_ino_t ino, std::string_view data, off_t off, int flags) {
    guarded(req, "write", [&] {
        Filesystem& fs = fs_of(req);
        const auto names = fs.writers().share_names();
        const auto ref = fs.inodes().resolve(ino);
        if (!ref) {
            // Removed or renamed over through the mount: as for an unlinked file, the write
            // succeeds and nothing keeps it.
            fuse_reply_write(req, data.size());
            return;
        }
        set_request_subject(ref->pool, ref->key);
        if (int err = fs.change_refusal(ref->pool); err != 0) {
            reply_error(req, "write", err,
                        describe_key(ref->pool, ref->key) + ": " +
                            (err == EROFS ? "mounted read-only" : "only guest/ is writable"));
            return;
        }
        // A refused write leaves the value as it was, also one an O_TRUNC has emptied in the
        // mount's view only: that truncation is dropped, and the kernel told again.
        const auto forget_truncation = [&] {
            if (fs.truncations().take(ino)) {
                fs.inode_later(ino);
            }
        };
        if (std::memchr(data.data(), '\0', data.size()) != nullptr) {
            forget_truncation();
            throw kvp::Error(EINVAL, "NUL byte in written data: a value cannot hold one");
        }
        if (data.size() > kMaxWriteBytes) {
            forget_truncation();
            throw kvp::Error(EFBIG, "value over the write limit");
        }
        const Options& o = fs.options();
        const bool append = (flags & O_APPEND) != 0;
        const pid_t pid = fuse_req_ctx(req)->pid;
        const auto pos = static_cast<std::size_t>(off < 0 ? 0 : off);
        std::size_t placed_at = pos;
        bool created = false;
        bool truncated = false;
        std::string value;
        bool stored = false;
        try {
            stored = update_or_refuse(
                fs.pool(ref->pool), ref->key, o.limits,
                [&](const std::string* current) -> std::optional<std::string> {
                    created = current == nullptr;
                    // A pending truncation (O_TRUNC at open) is applied together with this write,
                    // under the same lock: the old value is replaced in one change.
                    truncated = fs.truncations().take(ino);
                    std::string base;
                    // An append to an empty value starts it: a create stores the empty value at
                    // once here, and `echo x >> new` must not store "\nx".
                    if (current != nullptr && !truncated && !(append && current->empty())) {
                        const bool open_line =
                            append && !o.raw && fs.continues_line(ino, pid, *current);
                        base = open_line ? *current : shown_content(*current, o.raw);
                    }
                    const WriteOutcome out = apply_write(base, data, pos, append, false);
                    placed_at = append ? base.size() : pos;
                    value = std::string(stored_value(out.content, o.raw));
                    check_stored_value(value, o.limits);
                    return value;
                });
        } catch (const kvp::Error&) {
            if (truncated) {
                fs.inode_later(ino);  // taken by the refused change
            } else {
                forget_truncation();  // refused before the change ran (a lock timeout)
            }
            throw;
        }
        if (stored && created) {
            fs.listing_changed(ref->pool);  // it was removed meanwhile by another process
        }
        if (append && !o.raw) {
            fs.set_open_line(ino, pid,
                             !data.empty() && data.back() != '\n'
                                 ? std::optional<std::string_view>(value)
                                 : std::nullopt);
        }
        if (placed_at != pos) {
            fs.inode_later(ino);  // the kernel's pages hold the data where it put it
        }
        fuse_reply_write(req, data.size());
        trace_ok("write", ref->pool, ref->key);
    });
}

void apply_pending_truncation(Filesystem& fs, Ino ino) {
    try {
        const auto names = fs.writers().share_names(false);
        const auto ref = fs.inodes().resolve(ino);
        if (!ref) {
            (void)fs.truncations().take(ino);  // removed or renamed over through the mount
            return;
        }
        bool truncated = false;
        (void)fs.pool(ref->pool).update(
            ref->key,
            [&](const std::string* current) -> std::optional<std::string> {
                truncated = fs.truncations().take(ino);
                if (!truncated || current == nullptr || current->empty()) {
                    return std::nullopt;  // written meanwhile, or gone
                }
                return std::string();
            },
            fs.options().limits);
        if (truncated) {
            trace_ok("truncate", ref->pool, ref->key, " stored empty");
        }
    } catch (const std::exception& e) {
        // A lock held too long, a full disk: the mount already shows the empty value, so it
        // is tried again a second later (never in a loop with no pause).
        fs.truncations().add(ino, PendingTruncations::Clock::now() + std::chrono::seconds(1));
        kvp::log(kvp::LogLevel::warning,
                 std::string("truncate: the empty value of inode ") + std::to_string(ino) +
                     " is not stored yet (tried again in 1 s): " + e.what());
    }
}

void sync_pool_file(Filesystem& fs, kvp::PoolId pool, bool datasync) {
    const std::string path = fs.pool(pool).path().string();
    const kvp::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd && (datasync ? ::fdatasync(fd.get()) : ::fsync(fd.get())) != 0) {
        kvp::throw_errno("fsync " + path);
    }
}

}  // namespace kvpfs
