// -o cache=all: handle-less key files.
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
// - a key removed meanwhile by another process reads as empty.
// Writes are still applied to the current value under the exclusive lock and stored before
// they return (op_write.cpp, store_write); O_APPEND comes with every WRITE (the open flags),
// so `>>` still loses no line.
//
// Page cache. A WRITE's pages are locked by the writer until the reply, so no request may drop
// its own key's pages (that would wait for itself): the kernel drops the written key's size and
// times itself after every write, a size it then gets from GETATTR that differs from its own
// drops the pages, and when the value came out other than the kernel laid it out in its pages
// (an append placed at the value's real end) the invalidation thread drops them right after
// the reply (CachedMode::inode_later).

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "auto_view.hpp"
#include "filesystem.hpp"
#include "mode_kinds.hpp"
#include "write_rules.hpp"

namespace kvpfs {

void CacheAllMode::want(struct fuse_conn_info& conn) const {
    CachedMode::want(conn);
    // No open is answered after the first (ENOSYS), so O_TRUNC must come as the
    // setattr(size=0) the kernel sends when the file system does not take it at open.
    conn.want &= ~static_cast<unsigned>(FUSE_CAP_ATOMIC_O_TRUNC);
}

void CacheAllMode::stop() {
    for (const Ino ino : truncations_.all()) {
        store_truncation(ino);  // what the mount showed reaches the pool
    }
    CachedMode::stop();
}

// The kernel drops the written key's attributes itself (see above); only a key that came back
// changes a listing.
void CacheAllMode::written(kvp::PoolId pool, std::string_view /*key*/, bool created) {
    if (created) {
        listing_changed(pool);  // it was removed meanwhile by another process
    }
}

void CacheAllMode::open_key(fuse_req_t req, struct fuse_file_info* /*fi*/, const KeyRef& /*ref*/,
                            bool /*write*/, bool /*present*/, std::string_view /*value*/) {
    fuse_reply_err(req, ENOSYS);  // the kernel opens every file itself from now on
}

// The entry of a key a create or mknod just stored (or found); replies with it, or with an
// error when the key is gone again already. `fi`: a create's open, replied with the entry.
// `create_mode`: the mode the request made a new key with, which its caller may chmod it to.
void CacheAllMode::reply_new_entry(fuse_req_t req, const char* op, kvp::PoolId pool,
                                   const std::string& key, struct fuse_file_info* fi,
                                   std::optional<mode_t> create_mode) {
    struct fuse_entry_param e {};
    e.ino = fs_.inodes().acquire(pool, key);
    e.attr_timeout = key_timeout(pool);
    e.entry_timeout = e.attr_timeout;
    if (int err = fs_.attr_of(e.ino, e.attr); err != 0) {
        fs_.inodes().forget(e.ino, 1);
        reply_error(req, op, err, describe_key(pool, key) + ": gone at once");
        return;
    }
    if (create_mode) {
        set_create_mode(e.ino, fuse_req_ctx(req)->pid, *create_mode);
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
        fs_.inodes().forget(e.ino, 1);
    }
}

void CacheAllMode::create_key(fuse_req_t req, kvp::PoolId pool, const std::string& key,
                              const kvp::SnapshotRecord* /*rec*/, mode_t mode,
                              struct fuse_file_info* fi) {
    const int flags = fi->flags;
    bool created = false;
    if (fs_.pool(pool).update(
            key,
            [&](const std::string* current) -> std::optional<std::string> {
                created = current == nullptr;
                if (current != nullptr && ((flags & O_TRUNC) == 0 || current->empty())) {
                    return std::nullopt;  // an existing key: only O_TRUNC changes it
                }
                return std::string();
            },
            fs_.options().limits)) {
        // The listing now; the key's own pages (an O_TRUNC of a key made meanwhile by another
        // process, which may hold pages dirtied through a shared mmap) from the thread once
        // the reply is out: dropping dirty pages writes them back first, which with -s would
        // wait for this very request.
        listing_changed(pool);
        if (const auto ino = fs_.inodes().find(pool, key); ino && !created) {
            inode_later(*ino);
        }
    }
    reply_new_entry(req, "create", pool, key, fi,
                    created ? std::optional<mode_t>(mode & 07777) : std::nullopt);
    trace_ok("create", pool, key, created ? " stored empty" : "");
}

void CacheAllMode::mknod_key(fuse_req_t req, kvp::PoolId pool, const std::string& key,
                             mode_t mode) {
    if (update_or_refuse(fs_.pool(pool), key, fs_.options().limits,
                         [&](const std::string* current) -> std::optional<std::string> {
                             if (current != nullptr) {
                                 throw kvp::Error(EEXIST, "exists");  // made meanwhile
                             }
                             return std::string();
                         })) {
        listing_changed(pool);  // a new key: the kernel has no pages of it
    }
    reply_new_entry(req, "mknod", pool, key, nullptr, mode & 07777);
    trace_ok("mknod", pool, key, " stored empty");
}

void CacheAllMode::read_unopened(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off) {
    guarded(req, "read", [&] {
        std::string content;
        if (const auto ref = fs_.inodes().resolve(ino)) {
            set_request_subject(ref->pool, ref->key);
            const auto snap = fs_.pool(ref->pool).snapshot();
            const kvp::SnapshotRecord* rec = snap->find(ref->key);
            std::optional<kvp::SnapshotRecord> intrinsic;
            if (rec == nullptr && (intrinsic = intrinsic_record(fs_, ref->pool, ref->key))) {
                rec = &*intrinsic;
            }
            if (rec != nullptr) {
                content = shown_content(
                    shows_truncated(ino) ? std::string_view() : std::string_view(rec->record.value),
                    fs_.options().raw);
            }
            if (!caches(ref->pool)) {
                // auto/'s intrinsic items change without any file changing: their pages must
                // not outlive this read.
                inode_later(ino);
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

// A write's state between writes, kept per inode and process by the mode.
class CacheAllMode::InodeSite final : public WriteSite {
  public:
    InodeSite(CacheAllMode& mode, Ino ino, pid_t pid) : mode_(mode), ino_(ino), pid_(pid) {}
    // A pending truncation (O_TRUNC at open) is applied together with this write, under the
    // same lock: the old value is replaced in one change.
    bool truncated() override {
        taken = mode_.truncations_.take(ino_);
        return taken;
    }
    bool continues_line(std::string_view current) override {
        return mode_.continues_line(ino_, pid_, current);
    }
    bool taken = false;  // this write took the truncation

  private:
    CacheAllMode& mode_;
    Ino ino_;
    pid_t pid_;
};

void CacheAllMode::write_unopened(fuse_req_t req, fuse_ino_t ino, std::string_view data, off_t off,
                                  int flags) {
    guarded(req, "write", [&] {
        const auto names = fs_.writers().share_names();
        const auto ref = fs_.inodes().resolve(ino);
        if (!ref) {
            // Removed or renamed over through the mount: as for an unlinked file, the write
            // succeeds and nothing keeps it.
            fuse_reply_write(req, data.size());
            return;
        }
        set_request_subject(ref->pool, ref->key);
        if (int err = fs_.change_refusal(ref->pool); err != 0) {
            reply_error(req, "write", err,
                        describe_key(ref->pool, ref->key) + ": " +
                            (err == EROFS ? "mounted read-only" : "only guest/ is writable"));
            return;
        }
        // A refused write leaves the value as it was, also one an O_TRUNC has emptied in the
        // mount's view only: that truncation is dropped, and the kernel told again.
        const auto forget_truncation = [&] {
            if (truncations_.take(ino)) {
                inode_later(ino);
            }
        };
        try {
            check_written_data(data);
        } catch (const kvp::Error&) {
            forget_truncation();
            throw;
        }
        const Options& o = fs_.options();
        const pid_t pid = fuse_req_ctx(req)->pid;
        const auto pos = static_cast<std::size_t>(off < 0 ? 0 : off);
        WriteCall call{ref->pool, ref->key, WriteMode{(flags & O_APPEND) != 0, o.raw, o.limits},
                       data, pos};
        call.store_unchanged = true;
        InodeSite site(*this, ino, pid);
        WriteResult r;
        try {
            r = store_write(fs_, call, site);
        } catch (const kvp::Error&) {
            if (site.taken) {
                inode_later(ino);  // taken by the refused change
            } else {
                forget_truncation();  // refused before the change ran (a lock timeout)
            }
            throw;
        }
        if (r.stored) {
            written(ref->pool, ref->key, r.created);
        }
        if (call.mode.append && !o.raw) {
            set_open_line(ino, pid,
                          !data.empty() && data.back() != '\n'
                              ? std::optional<std::string_view>(r.value)
                              : std::nullopt);
        }
        if (r.placed_at != pos) {
            inode_later(ino);  // the kernel's pages hold the data where it put it
        }
        fuse_reply_write(req, data.size());
        trace_ok("write", ref->pool, ref->key);
    });
}

void CacheAllMode::flush_unopened(fuse_req_t req) {
    fuse_reply_err(req, ENOSYS);  // the kernel sends no FLUSH from now on
}

void CacheAllMode::fsync_unopened(fuse_req_t req, fuse_ino_t ino, int datasync) {
    guarded(req, "fsync", [&] {
        if (truncations_.contains(ino)) {
            store_truncation(ino);
        }
        if (const auto ref = fs_.inodes().resolve(ino)) {
            sync_pool_file(fs_, ref->pool, datasync != 0);
        }
        fuse_reply_err(req, 0);
    });
}

void CacheAllMode::truncate_key(Ino ino, const KeyRef& ref, std::size_t size) {
    if (size != 0 || ref.pool != kvp::PoolId::guest) {
        CachedMode::truncate_key(ino, ref, size);
        return;
    }
    // open(O_TRUNC) comes as this; the write that follows replaces the value in one change
    // (pending_truncations.hpp).
    auto snap = fs_.pool(ref.pool).snapshot();
    const kvp::SnapshotRecord* rec = snap->find(ref.key);
    if (rec == nullptr) {
        throw kvp::Error(ESTALE, "no such key");  // the kernel looks it up again
    }
    if (!rec->record.value.empty()) {
        const auto due = PendingTruncations::Clock::now() + kPendingTruncation;
        truncations_.add(ino, due);
        wake_by(due);  // the invalidation thread applies it when it falls due
    }
}

// The kernel takes the size from the setattr reply and drops its pages when it changed.
// Dropping them from here could wait for itself: a page dirtied through a shared mmap is
// written back before it goes, and the kernel holds every write-back of the inode until this
// truncate is answered. The thread drops them once the reply is out.
void CacheAllMode::path_truncated(Ino ino, const KeyRef& /*ref*/, bool /*reserved*/) {
    inode_later(ino);
}

bool CacheAllMode::chmod_to_create_mode(fuse_req_t req, Ino ino, const KeyRef& /*ref*/,
                                        mode_t mode) {
    const pid_t pid = fuse_req_ctx(req)->pid;
    const std::lock_guard lock(create_modes_mutex_);
    const auto it = create_modes_.find(ino);
    return it != create_modes_.end() && it->second.pid == pid && it->second.mode == mode;
}

void CacheAllMode::forget_inode(Ino ino, std::uint64_t nlookup) {
    if (truncations_.contains(ino)) {
        // The kernel keeps no file of it open (it would not forget it): nothing more is
        // written through this inode, and its number will not name the key again.
        store_truncation(ino);
    }
    CachedMode::forget_inode(ino, nlookup);
    if (!fs_.inodes().resolve(ino)) {
        forget_inode_state(ino);  // the inode is gone or detached
    }
}

void CacheAllMode::store_due_truncations(Clock::time_point now) {
    for (const Ino ino : truncations_.due(now)) {
        store_truncation(ino);  // before the inode's invalidation queued with it
    }
}

void CacheAllMode::store_truncation(Ino ino) {
    try {
        const auto names = fs_.writers().share_names(false);
        const auto ref = fs_.inodes().resolve(ino);
        if (!ref) {
            (void)truncations_.take(ino);  // removed or renamed over through the mount
            return;
        }
        bool truncated = false;
        (void)fs_.pool(ref->pool).update(
            ref->key,
            [&](const std::string* current) -> std::optional<std::string> {
                truncated = truncations_.take(ino);
                if (!truncated || current == nullptr || current->empty()) {
                    return std::nullopt;  // written meanwhile, or gone
                }
                return std::string();
            },
            fs_.options().limits);
        if (truncated) {
            trace_ok("truncate", ref->pool, ref->key, " stored empty");
        }
    } catch (const std::exception& e) {
        // A lock held too long, a full disk: the mount already shows the empty value, so it
        // is tried again a second later (never in a loop with no pause).
        truncations_.add(ino, PendingTruncations::Clock::now() + std::chrono::seconds(1));
        kvp::log(kvp::LogLevel::warning,
                 std::string("truncate: the empty value of inode ") + std::to_string(ino) +
                     " is not stored yet (tried again in 1 s): " + e.what());
    }
}

bool CacheAllMode::continues_line(Ino ino, pid_t pid, std::string_view current) {
    const std::lock_guard lock(open_lines_mutex_);
    const auto it = open_lines_.find(ino);
    return it != open_lines_.end() && it->second.pid == pid &&
           it->second.value_hash == std::hash<std::string_view>{}(current);
}

void CacheAllMode::set_open_line(Ino ino, pid_t pid, std::optional<std::string_view> stored) {
    const std::lock_guard lock(open_lines_mutex_);
    if (stored) {
        open_lines_[ino] = OpenLine{pid, std::hash<std::string_view>{}(*stored)};
    } else {
        open_lines_.erase(ino);
    }
}

void CacheAllMode::set_create_mode(Ino ino, pid_t pid, mode_t mode) {
    const std::lock_guard lock(create_modes_mutex_);
    create_modes_[ino] = CreateMode{pid, mode};
}

void CacheAllMode::forget_inode_state(Ino ino) {
    set_open_line(ino, 0, std::nullopt);
    const std::lock_guard lock(create_modes_mutex_);
    create_modes_.erase(ino);
}

// --- PendingTruncations (pending_truncations.hpp) ---

void PendingTruncations::add(Ino ino, Clock::time_point due) {
    std::lock_guard lock(mutex_);
    due_[ino] = due;
}

PendingTruncations::Clock::time_point PendingTruncations::next_due() const {
    std::lock_guard lock(mutex_);
    auto soonest = Clock::time_point::max();
    for (const auto& entry : due_) {
        soonest = std::min(soonest, entry.second);
    }
    return soonest;
}

bool PendingTruncations::contains(Ino ino) const {
    std::lock_guard lock(mutex_);
    return due_.count(ino) != 0;
}

bool PendingTruncations::take(Ino ino) {
    std::lock_guard lock(mutex_);
    return due_.erase(ino) != 0;
}

std::vector<Ino> PendingTruncations::due(Clock::time_point now) const {
    std::lock_guard lock(mutex_);
    std::vector<Ino> out;
    for (const auto& [ino, at] : due_) {
        if (at <= now) {
            out.push_back(ino);
        }
    }
    return out;
}

std::vector<Ino> PendingTruncations::all() const {
    std::lock_guard lock(mutex_);
    std::vector<Ino> out;
    out.reserve(due_.size());
    for (const auto& entry : due_) {
        out.push_back(entry.first);
    }
    return out;
}

}  // namespace kvpfs
