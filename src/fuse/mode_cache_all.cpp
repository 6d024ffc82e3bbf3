// -o cache=all: handle-less key files.
//
// The kernel sends OPEN and RELEASE for every open unless the file system once answers OPEN
// with ENOSYS: from then on it opens and releases files itself, keeps their contents in its
// page cache, and sends READ, WRITE, SETATTR, FLUSH and FSYNC without a handle (fh 0). That is
// what makes an open+read of a cached key cost no request; its close costs one FLUSH. What a
// handle keeps between writes in the other modes (docs/behaviour.md §5) is kept here per inode
// and writing thread (Writer), until its process closes its last descriptor of the file:
// FLUSH comes at every close, from the closing thread, and /proc/PID/fd tells whether it was
// the last one (looked at only when something waits for that close).
// - O_TRUNC arrives as setattr(size=0) at open, with no file and the modification time set:
//   the mount shows the empty value from then on; the pool keeps the old value until the
//   first write replaces it in one change, or the truncating process's last close stores the
//   empty value. A refused write drops the truncation.
// - a create (and mknod) reserves the name for the creating process: the key enters the pool
//   with the first stored write, or empty at that process's last close.
// - close() answers a refused write's errno again, and an unfinished UTF-8 sequence
//   (-o limits=host) is held until a later write finishes it or close() refuses it.
// - a caller in a pid namespace kvpfs cannot see comes with pid 0: its first close counts as
//   its last. Root's opens for writing outside guest/ succeed (no OPEN is sent to refuse
//   them); every write, truncate and create there is refused.
// Writes are applied to the current value under the exclusive lock and stored before they
// return (op_write.cpp, store_write); O_APPEND comes with every WRITE (the open flags), so
// `>>` still loses no line.
//
// Page cache. A WRITE's pages are locked by the writer until the reply, so no request may drop
// its own key's pages (that would wait for itself): the kernel drops the written key's size and
// times itself after every write, a size it then gets from GETATTR that differs from its own
// drops the pages, and when the value came out other than the kernel laid it out in its pages
// (an append placed at the value's real end, a truncation dropped) the invalidation thread
// drops them right after the reply (CachedMode::inode_later).

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "auto_view.hpp"
#include "filesystem.hpp"
#include "key_name.hpp"
#include "mode_kinds.hpp"
#include "process_files.hpp"
#include "unique_fd.hpp"
#include "write_rules.hpp"

namespace kvpfs {
namespace {

std::size_t value_hash(std::string_view value) {
    return std::hash<std::string_view>{}(value);
}

// Is thread `tid`, which sent a truncate to 0 without a file, in an open (an open(O_TRUNC)
// the kernel makes itself) rather than in truncate(2)? The FUSE request cannot tell; the
// thread waits in its system call for the answer, and /proc/TID/syscall names that call. A
// thread kvpfs cannot see (pid 0, another pid namespace, no permission) counts as opening.
bool opening(pid_t tid) {
    if (tid <= 0) {
        return true;
    }
    std::ifstream in("/proc/" + std::to_string(tid) + "/syscall");
    long nr = -1;
    if (!(in >> nr)) {
        return true;
    }
#ifdef SYS_truncate
    if (nr == SYS_truncate) {
        return false;
    }
#endif
#ifdef SYS_truncate64
    if (nr == SYS_truncate64) {
        return false;
    }
#endif
    return true;
}

}  // namespace

void CacheAllMode::want(struct fuse_conn_info& conn) const {
    CachedMode::want(conn);
    // No open is answered after the first (ENOSYS), so O_TRUNC must come as the
    // setattr(size=0) the kernel sends when the file system does not take it at open.
    conn.want &= ~static_cast<unsigned>(FUSE_CAP_ATOMIC_O_TRUNC);
}

void CacheAllMode::stop() {
    std::vector<Ino> truncated;
    {
        const std::lock_guard lock(writers_mutex_);
        truncated.assign(truncated_.begin(), truncated_.end());
    }
    for (const Ino ino : truncated) {
        try {
            store_truncation(ino);  // what the mount showed reaches the pool
        } catch (const std::exception& e) {
            kvp::log(kvp::LogLevel::error, std::string("unmount: the empty value of inode ") +
                                               std::to_string(ino) + " not stored: " + e.what());
        }
    }
    CachedMode::stop();
}

// The kernel drops the written key's attributes itself (see above); only a key that came back
// changes a listing.
void CacheAllMode::written(kvp::PoolId pool, std::string_view /*key*/, bool created) {
    if (created) {
        listing_changed(pool);  // new, or removed meanwhile by another process
    }
}

void CacheAllMode::open_key(fuse_req_t req, struct fuse_file_info* /*fi*/, const KeyRef& /*ref*/,
                            bool /*write*/, bool /*present*/, std::string_view /*value*/) {
    fuse_reply_err(req, ENOSYS);  // the kernel opens every file itself from now on
}

// --- The writers' table ------------------------------------------------------------------------

CacheAllMode::Writer& CacheAllMode::writer_locked(Ino ino, pid_t tid) {
    return writers_[WriterKey{ino, tid}];
}

std::optional<CacheAllMode::WriterKey> CacheAllMode::find_writer_locked(Ino ino, pid_t tid) {
    const auto first = writers_.lower_bound(WriterKey{ino, std::numeric_limits<pid_t>::min()});
    if (first == writers_.end() || first->first.first != ino) {
        return std::nullopt;
    }
    if (writers_.contains(WriterKey{ino, tid})) {
        return WriterKey{ino, tid};
    }
    // Another thread of the same process (rare): its thread group decides.
    const pid_t process = thread_group_of(tid);
    for (auto it = first; it != writers_.end() && it->first.first == ino; ++it) {
        if (it->second.process == process) {
            return it->first;
        }
    }
    return std::nullopt;
}

namespace {
// Makes the writer of (ino, tid) if absent, its thread group found outside the table's lock.
template <typename Map, typename Mutex>
void ensure_writer(Map& writers, Mutex& mutex, Ino ino, pid_t tid) {
    {
        const std::lock_guard lock(mutex);
        if (writers.contains({ino, tid})) {
            return;
        }
    }
    const pid_t process = thread_group_of(tid);
    const std::lock_guard lock(mutex);
    writers[{ino, tid}].process = process;
}
}  // namespace

bool CacheAllMode::shows_truncated(Ino ino) const {
    const std::lock_guard lock(writers_mutex_);
    return !truncated_.empty() && truncated_.contains(ino);
}

bool CacheAllMode::take_truncation(Ino ino) {
    const std::lock_guard lock(writers_mutex_);
    if (truncated_.erase(ino) == 0) {
        return false;
    }
    for (auto it = writers_.lower_bound(WriterKey{ino, std::numeric_limits<pid_t>::min()});
         it != writers_.end() && it->first.first == ino; ++it) {
        it->second.truncates = false;
    }
    return true;
}

void CacheAllMode::drop_truncation(Ino ino) {
    (void)take_truncation(ino);
    inode_later(ino);  // the kernel shows the empty value: it reads the old one again
}

void CacheAllMode::creation_stored(Ino ino, std::string_view key) {
    bool reserved = false;
    {
        const std::lock_guard lock(writers_mutex_);
        for (auto it = writers_.lower_bound(WriterKey{ino, std::numeric_limits<pid_t>::min()});
             it != writers_.end() && it->first.first == ino; ++it) {
            reserved = reserved || it->second.creates;
            it->second.creates = false;
        }
    }
    if (reserved) {
        fs_.writers().forget_unopened(key);
    }
}

void CacheAllMode::store_truncation(Ino ino, std::optional<KeyRef> gone) {
    const auto names = fs_.writers().share_names();
    const auto ref = gone ? gone : fs_.inodes().resolve(ino);
    if (!ref) {
        (void)take_truncation(ino);  // removed or renamed over through the mount
        return;
    }
    bool truncated = false;
    (void)fs_.pool(ref->pool).update(
        ref->key,
        [&](const std::string* current) -> std::optional<std::string> {
            truncated = take_truncation(ino);
            if (!truncated || current == nullptr || current->empty()) {
                return std::nullopt;  // written meanwhile, or gone
            }
            return std::string();
        },
        fs_.options().limits);
    if (truncated) {
        trace_ok("truncate", ref->pool, ref->key, " stored empty");
    }
}

void CacheAllMode::store_created(Ino ino) {
    const auto names = fs_.writers().share_names();
    const auto ref = fs_.inodes().resolve(ino);
    if (!ref) {
        return;  // removed or renamed over through the mount: the reservation went with it
    }
    bool created = false;
    try {
        created = update_or_refuse(fs_.pool(ref->pool), ref->key, fs_.options().limits,
                                   [&](const std::string* current) -> std::optional<std::string> {
                                       if (current != nullptr) {
                                           return std::nullopt;  // written meanwhile
                                       }
                                       return std::string();
                                   });
    } catch (const kvp::Error&) {
        fs_.writers().forget_unopened(ref->key);
        key_changed(ref->pool, ref->key, false);  // the name is gone: the kernel's entry too
        throw;
    }
    fs_.writers().forget_unopened(ref->key);
    if (created) {
        listing_changed(ref->pool);
        trace_ok("close", ref->pool, ref->key, " stored empty");
    }
}

int CacheAllMode::settle(fuse_req_t /*req*/, Ino ino, const Writer& w) {
    if (!w.truncates && !w.creates && !w.held_here && w.error == 0) {
        return 0;  // nothing waited for this close (its open line ends with it)
    }
    int err = w.error;  // logged when the write was refused
    const auto ref = fs_.inodes().resolve(ino);
    const std::string what =
        ref ? describe_key(ref->pool, ref->key) : "inode " + std::to_string(ino);
    bool held = false;
    {
        const std::lock_guard lock(writers_mutex_);
        held = w.held_here && held_.contains(ino);
    }
    if (held) {
        if (err == 0) {
            err = EINVAL;
        }
        // Another process holding the file (a shell whose next command goes on writing) may
        // still finish them; else they go.
        if (!ref || !others_hold(w.process, ino,
                                 std::string(kvp::pool_name(ref->pool)) + "/" +
                                     kvp::key_to_name(ref->key))) {
            {
                const std::lock_guard lock(writers_mutex_);
                held_.erase(ino);
            }
            kvp::log(kvp::LogLevel::error, "flush: " + what +
                                               ": closed inside an unfinished UTF-8 sequence; "
                                               "those bytes are not stored");
            inode_later(ino);  // the kernel's pages hold bytes the pool does not
        } else {
            kvp::log(kvp::LogLevel::error,
                     "flush: " + what +
                         ": closed inside an unfinished UTF-8 sequence; those bytes are not "
                         "stored unless a later write finishes them: " +
                         std::strerror(EINVAL));
        }
    }
    const bool store = err == 0 && !w.refused;
    if (w.truncates) {
        if (!store) {
            drop_truncation(ino);
        } else {
            try {
                store_truncation(ino);
            } catch (const kvp::Error& e) {
                kvp::log(kvp::LogLevel::error,
                         "flush: " + what + ": the O_TRUNC's empty value not stored: " + e.what());
                drop_truncation(ino);
                err = e.errno_value();
            }
        }
    }
    if (w.creates) {
        if (store) {
            try {
                store_created(ino);
            } catch (const kvp::Error& e) {
                kvp::log(kvp::LogLevel::error,
                         "flush: " + what + ": the created key not stored: " + e.what());
                err = e.errno_value();
            }
        } else if (ref) {
            // A create whose writes were refused leaves no key: its name goes now.
            fs_.writers().forget_unopened(ref->key);
            key_changed(ref->pool, ref->key, false);
        }
    }
    return err;
}

// --- Creating ----------------------------------------------------------------------------------

void CacheAllMode::create_key(fuse_req_t req, kvp::PoolId pool, const std::string& key,
                              const kvp::SnapshotRecord* rec, mode_t mode,
                              struct fuse_file_info* fi) {
    const pid_t tid = fuse_req_ctx(req)->pid;
    struct fuse_entry_param e {};
    e.ino = fs_.inodes().acquire(pool, key);
    bool truncates = false;
    if (rec != nullptr) {
        // An existing key: only O_TRUNC changes it, and only as an open(O_TRUNC) does.
        truncates = (fi->flags & O_TRUNC) != 0 && !rec->record.value.empty();
        if (truncates) {
            ensure_writer(writers_, writers_mutex_, e.ino, tid);
            const std::lock_guard lock(writers_mutex_);
            truncated_.insert(e.ino);
            writer_locked(e.ino, tid).truncates = true;
        }
        e.attr_timeout = key_timeout(pool);
        fs_.fill_key_attr(e.ino, pool, *rec, e.attr);  // the empty value if truncated
    } else {
        // A new name: reserved for this process until its first stored write or its last
        // close (docs/behaviour.md §5).
        fs_.writers().reserve_unopened(key);
        ensure_writer(writers_, writers_mutex_, e.ino, tid);
        {
            const std::lock_guard lock(writers_mutex_);
            writer_locked(e.ino, tid).creates = true;
        }
        set_create_mode(e.ino, tid, mode & 07777);
        e.attr_timeout = kKeyTimeout;  // a reserved name is never kept
        fs_.fill_reserved_attr(e.ino, pool, e.attr);
    }
    e.entry_timeout = e.attr_timeout;
    fi->fh = 0;
    fi->direct_io = 0;
    fi->keep_cache = 1;
    fi->noflush = 0;  // its close settles what the create left
    if (fuse_reply_create(req, &e, fi) != 0) {
        {
            const std::lock_guard lock(writers_mutex_);
            writers_.erase(WriterKey{e.ino, tid});
        }
        if (truncates) {
            (void)take_truncation(e.ino);
        }
        if (rec == nullptr) {
            fs_.writers().forget_unopened(key);
        }
        fs_.inodes().forget(e.ino, 1);
        return;
    }
    if (truncates) {
        // The kernel's pages of the key (an O_TRUNC of a key made meanwhile by another process,
        // which may hold pages dirtied through a shared mmap) go from the thread once the reply
        // is out: dropping dirty pages writes them back first, which with -s would wait for
        // this very request.
        inode_later(e.ino);
    }
    trace_ok("create", pool, key, rec == nullptr ? " reserved" : "");
}

void CacheAllMode::mknod_key(fuse_req_t req, kvp::PoolId pool, const std::string& key,
                             mode_t mode) {
    const pid_t tid = fuse_req_ctx(req)->pid;
    fs_.writers().reserve_unopened(key);
    struct fuse_entry_param e {};
    e.ino = fs_.inodes().acquire(pool, key);
    ensure_writer(writers_, writers_mutex_, e.ino, tid);
    {
        const std::lock_guard lock(writers_mutex_);
        writer_locked(e.ino, tid).creates = true;
    }
    set_create_mode(e.ino, tid, mode & 07777);
    fs_.fill_reserved_attr(e.ino, pool, e.attr);
    if (fuse_reply_entry(req, &e) != 0) {
        {
            const std::lock_guard lock(writers_mutex_);
            writers_.erase(WriterKey{e.ino, tid});
        }
        fs_.inodes().forget(e.ino, 1);
        fs_.writers().forget_unopened(key);
        return;
    }
    trace_ok("mknod", pool, key, " reserved");
}

// --- Reading and writing -----------------------------------------------------------------------

void CacheAllMode::read_unopened(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off) {
    guarded(req, "read", [&] {
        std::string content;
        if (const auto ref = fs_.inodes().resolve(ino)) {
            set_request_subject(ref->pool, ref->key);
            const auto snap = fs_.pool(ref->pool).snapshot();
            const ShownRecord shown(fs_, ref->pool, *snap, ref->key);
            if (const kvp::SnapshotRecord* rec = shown.get(); rec != nullptr) {
                content = shown_content(
                    shows_truncated(ino) ? std::string_view() : std::string_view(rec->record.value),
                    fs_.options().raw);
            } else if (fs_.reserved(ref->pool, ref->key)) {
                content = shown_content({}, fs_.options().raw);  // reads as an empty value
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

// A write's state between writes: its thread's Writer, and the inode's pending truncation.
class CacheAllMode::InodeSite final : public WriteSite {
  public:
    InodeSite(CacheAllMode& mode, Ino ino, pid_t tid) : mode_(mode), ino_(ino), tid_(tid) {}
    // The write applies to the empty value while an O_TRUNC is pending...
    bool truncated() override {
        const std::lock_guard lock(mode_.writers_mutex_);
        applies_truncation_ = mode_.truncated_.contains(ino_);
        return applies_truncation_;
    }
    bool continues_line(std::string_view current) override {
        const std::lock_guard lock(mode_.writers_mutex_);
        const auto it = mode_.writers_.find(WriterKey{ino_, tid_});
        return it != mode_.writers_.end() && it->second.open_line == value_hash(current);
    }
    bool stored_last(std::string_view current) override {
        const std::lock_guard lock(mode_.writers_mutex_);
        const auto it = mode_.writers_.find(WriterKey{ino_, tid_});
        return it != mode_.writers_.end() && it->second.last_stored == value_hash(current);
    }
    // ...and takes it when it is stored: the old value is replaced in one change.
    void storing() override {
        if (applies_truncation_) {
            (void)mode_.take_truncation(ino_);
        }
    }

  private:
    CacheAllMode& mode_;
    Ino ino_;
    pid_t tid_;
    bool applies_truncation_ = false;
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
        const pid_t tid = fuse_req_ctx(req)->pid;
        ensure_writer(writers_, writers_mutex_, ino, tid);
        const Options& o = fs_.options();
        const auto pos = static_cast<std::size_t>(off < 0 ? 0 : off);
        WriteCall call{ref->pool, ref->key, WriteMode{(flags & O_APPEND) != 0, o.raw, o.limits},
                       data, pos};
        call.hold = o.limits == kvp::Limits::host;
        // Bytes held back from this thread's earlier write go first when this write continues
        // them.
        std::string joined;
        {
            const std::lock_guard lock(writers_mutex_);
            if (const auto it = held_.find(ino); it != held_.end()) {
                const Held& h = it->second;
                if (call.mode.append || pos == h.at + h.bytes.size()) {
                    joined = h.bytes + std::string(data);
                    call.at = h.at;
                } else {
                    writer_locked(ino, tid).error = EINVAL;
                    kvp::log(kvp::LogLevel::error, "write: " + describe_key(ref->pool, ref->key) +
                                                       ": an unfinished UTF-8 sequence was not "
                                                       "continued; it is not stored");
                }
                held_.erase(it);  // joined, dropped, or gone with a refused write
            }
        }
        if (!joined.empty()) {
            call.data = joined;
        }
        InodeSite site(*this, ino, tid);
        WriteResult r;
        try {
            check_written_data(data);
            r = store_write(fs_, call, site);
        } catch (const kvp::Error& e) {
            {
                const std::lock_guard lock(writers_mutex_);
                Writer& w = writer_locked(ino, tid);
                w.error = e.errno_value();  // fsync and close answer it again
                w.refused = true;
            }
            // A refused write leaves the value as it was, also one an O_TRUNC has emptied in
            // the mount's view only: that truncation is dropped, and the kernel told again.
            if (shows_truncated(ino)) {
                drop_truncation(ino);
            }
            throw;
        }
        if (r.stored) {
            written(ref->pool, ref->key, r.created);
            creation_stored(ino, ref->key);
        }
        {
            const std::lock_guard lock(writers_mutex_);
            Writer& w = writer_locked(ino, tid);
            const std::string_view piece = call.data;
            if (r.outcome.held > 0) {
                held_[ino] = Held{std::string(piece.substr(piece.size() - r.outcome.held)),
                                  call.at + piece.size() - r.outcome.held};
                w.held_here = true;
            }
            if (r.stored) {
                const std::string_view stored = piece.substr(0, piece.size() - r.outcome.held);
                const bool line_open =
                    call.mode.append && !o.raw && !stored.empty() && stored.back() != '\n';
                w.open_line = line_open ? std::optional(value_hash(r.value)) : std::nullopt;
                w.last_stored = value_hash(r.value);
            }
        }
        if (r.stored && r.placed_at != call.at) {
            inode_later(ino);  // the kernel's pages hold the data where it put it
        }
        fuse_reply_write(req, data.size());
        trace_ok("write", ref->pool, ref->key);
    });
}

// --- Closing, syncing, truncating --------------------------------------------------------------

void CacheAllMode::flush_unopened(fuse_req_t req, fuse_ino_t ino) {
    guarded(req, "flush", [&] {
        const pid_t tid = fuse_req_ctx(req)->pid;
        std::vector<std::pair<WriterKey, Writer>> mine;
        bool waits = false;  // something waits for the process's last close
        pid_t process = 0;
        {
            const std::lock_guard lock(writers_mutex_);
            if (const auto key = find_writer_locked(ino, tid)) {
                process = writers_.at(*key).process;
                for (auto it =
                         writers_.lower_bound(WriterKey{ino, std::numeric_limits<pid_t>::min()});
                     it != writers_.end() && it->first.first == ino; ++it) {
                    if (it->first == *key || (process != 0 && it->second.process == process)) {
                        const Writer& w = it->second;
                        waits = waits || w.truncates || w.creates || w.held_here || w.error != 0 ||
                                w.refused;
                        mine.emplace_back(it->first, w);
                    }
                }
            }
        }
        if (mine.empty()) {
            fuse_reply_err(req, 0);  // a reader's close, or a writer with nothing kept
            return;
        }
        if (waits) {
            const auto ref = fs_.inodes().resolve(ino);
            if (ref && process_holds(process, ino,
                                     std::string(kvp::pool_name(ref->pool)) + "/" +
                                         kvp::key_to_name(ref->key))) {
                // Not its last descriptor (a shell's redirection closes the one it opened
                // after dup2): the O_TRUNC, the reservation and held bytes stay; the errno is
                // answered again.
                int err = 0;
                {
                    const std::lock_guard lock(writers_mutex_);
                    for (const auto& entry : mine) {
                        const Writer& w = entry.second;
                        if (err == 0) {
                            err = w.error != 0 ? w.error
                                               : (w.held_here && held_.contains(ino) ? EINVAL : 0);
                        }
                    }
                }
                fuse_reply_err(req, err);
                return;
            }
        }
        {
            const std::lock_guard lock(writers_mutex_);
            for (const auto& entry : mine) {
                writers_.erase(entry.first);
            }
        }
        int err = 0;
        for (const auto& entry : mine) {
            if (const int e = settle(req, ino, entry.second); e != 0 && err == 0) {
                err = e;
            }
        }
        fuse_reply_err(req, err);
    });
}

void CacheAllMode::fsync_unopened(fuse_req_t req, fuse_ino_t ino, int datasync) {
    guarded(req, "fsync", [&] {
        const pid_t tid = fuse_req_ctx(req)->pid;
        int err = 0;
        bool truncates = false;
        bool creates = false;
        {
            const std::lock_guard lock(writers_mutex_);
            if (const auto key = find_writer_locked(ino, tid)) {
                const Writer& w = writers_.at(*key);
                err = w.error;
                truncates = w.truncates;
                creates = w.creates && !w.refused;
            }
            if (err == 0 && held_.contains(ino)) {
                err = EINVAL;  // the value ends inside an unfinished UTF-8 sequence
            }
        }
        if (err != 0) {
            fuse_reply_err(req, err);  // logged when the write was refused
            return;
        }
        if (truncates) {
            store_truncation(ino);
        }
        if (creates) {
            store_created(ino);
            const std::lock_guard lock(writers_mutex_);
            if (const auto key = find_writer_locked(ino, tid)) {
                writers_.at(*key).creates = false;
            }
        }
        if (const auto ref = fs_.inodes().resolve(ino)) {
            sync_pool_file(fs_, ref->pool, datasync != 0);
        }
        fuse_reply_err(req, 0);
    });
}

void CacheAllMode::truncate_key(fuse_req_t req, Ino ino, const KeyRef& ref, std::size_t size,
                                bool with_file) {
    const pid_t tid = fuse_req_ctx(req)->pid;
    if (with_file || size != 0 || ref.pool != kvp::PoolId::guest || !opening(tid)) {
        // truncate(2) and ftruncate: stored when they return, as without the cache.
        try {
            CachedMode::truncate_key(req, ino, ref, size, with_file);
        } catch (const kvp::Error&) {
            // A refused ftruncate, like a refused write, keeps a create or an O_TRUNC from
            // storing an empty value at close; an O_TRUNC it took is dropped.
            bool had = false;
            {
                const std::lock_guard lock(writers_mutex_);
                if (const auto key = find_writer_locked(ino, tid)) {
                    writers_.at(*key).refused = true;
                    had = true;
                }
            }
            if (had) {
                drop_truncation(ino);
            }
            throw;
        }
        return;
    }
    // open(O_TRUNC): the first write replaces the value in one change, or the process's last
    // close stores the empty value.
    auto snap = fs_.pool(ref.pool).snapshot();
    const kvp::SnapshotRecord* rec = snap->find(ref.key);
    if (rec == nullptr) {
        if (fs_.reserved(ref.pool, ref.key)) {
            return;  // a created name: empty already
        }
        throw kvp::Error(ESTALE, "no such key");  // the kernel looks it up again
    }
    if (rec->record.value.empty()) {
        return;
    }
    ensure_writer(writers_, writers_mutex_, ino, tid);
    const std::lock_guard lock(writers_mutex_);
    truncated_.insert(ino);
    writer_locked(ino, tid).truncates = true;
}

// The kernel takes the size from the setattr reply and drops its pages when it changed.
// Dropping them from here could wait for itself: a page dirtied through a shared mmap is
// written back before it goes, and the kernel holds every write-back of the inode until this
// truncate is answered. The thread drops them once the reply is out. A reserved name it
// stored is a key now.
void CacheAllMode::path_truncated(Ino ino, const KeyRef& ref, bool reserved) {
    if (reserved) {
        creation_stored(ino, ref.key);
        listing_changed(ref.pool);
    }
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
    const auto ref = fs_.inodes().resolve(ino);
    CachedMode::forget_inode(ino, nlookup);
    if (fs_.inodes().resolve(ino)) {
        // Still looked up: the kernel forgot an older inode of the key (evicted after the
        // cache thread dropped its entry) while a newer one may be open.
        return;
    }
    if (ref && shows_truncated(ino)) {
        // The kernel keeps no file of it open (it would not forget it): nothing more is
        // written through this inode, and its number will not name the key again.
        try {
            store_truncation(ino, ref);
        } catch (const std::exception& e) {
            kvp::log(kvp::LogLevel::error, std::string("forget: the empty value of inode ") +
                                               std::to_string(ino) + " not stored: " + e.what());
        }
    }
    forget_inode_state(ino);  // the inode is gone or detached
}

void CacheAllMode::set_create_mode(Ino ino, pid_t pid, mode_t mode) {
    const std::lock_guard lock(create_modes_mutex_);
    create_modes_[ino] = CreateMode{pid, mode};
}

void CacheAllMode::forget_inode_state(Ino ino) {
    {
        const std::lock_guard lock(writers_mutex_);
        writers_.erase(writers_.lower_bound(WriterKey{ino, std::numeric_limits<pid_t>::min()}),
                       writers_.lower_bound(WriterKey{ino + 1, std::numeric_limits<pid_t>::min()}));
        truncated_.erase(ino);
        held_.erase(ino);
    }
    const std::lock_guard lock(create_modes_mutex_);
    create_modes_.erase(ino);
}

}  // namespace kvpfs
