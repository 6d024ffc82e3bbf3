#include "filesystem.hpp"

#include <cerrno>
#include <cstring>
#include <vector>

#include "auto_view.hpp"
#include "key_name.hpp"

namespace kvpfs {
namespace {

kvp::DirectoryOptions directory_options(const Options& o) {
    kvp::DirectoryOptions d;
    d.lock_timeout = o.lock_timeout;
    // Only a write through guest/ may create its pool file; -o ro creates nothing.
    d.create_on_write = {false, !o.read_only, false, false, false};
    return d;
}

}  // namespace

Filesystem::Filesystem(const Options& options)
    : options_(options),
      pools_(options.pool_dir, directory_options(options)),
      writers_(options.lock_timeout) {
    clock_gettime(CLOCK_REALTIME, &started_);
    if (options.auto_intrinsic) {
        auto_view_ = std::make_unique<kvp::AutoPoolView>(kvp::IntrinsicSources{}, started_);
    }
    mode_ = make_mode(*this);
}

Filesystem::~Filesystem() {
    mode_->stop();
    for (FileHandle* h : handles_) {
        delete h;
    }
    for (DirHandle* d : dir_handles_) {
        delete d;
    }
}

void Filesystem::track(FileHandle* h) {
    std::lock_guard lock(handles_mutex_);
    handles_.insert(h);
}

void Filesystem::untrack(FileHandle* h) {
    std::lock_guard lock(handles_mutex_);
    handles_.erase(h);
}

void Filesystem::track_dir(DirHandle* d) {
    std::lock_guard lock(handles_mutex_);
    dir_handles_.insert(d);
}

void Filesystem::untrack_dir(DirHandle* d) {
    std::lock_guard lock(handles_mutex_);
    dir_handles_.erase(d);
}

void Filesystem::fill_root_attr(struct stat& st) const {
    st = {};
    st.st_ino = kRootIno;
    st.st_mode = S_IFDIR | (0555 & ~options_.umask);  // masked like the pool directories
    st.st_nlink = 2 + kvp::kShownPools.size();
    st.st_uid = options_.uid;
    st.st_gid = options_.gid;
    st.st_size = 0;
    st.st_atim = st.st_mtim = st.st_ctim = started_;
    st.st_blksize = 4096;
}

void Filesystem::fill_dir_attr(kvp::PoolId pool, struct stat& st) {
    st = {};
    st.st_ino = pool_dir_ino(pool);
    st.st_mode = S_IFDIR | ((pool == kvp::PoolId::guest ? 0777 : 0555) & ~options_.umask);
    st.st_nlink = 2;
    st.st_uid = options_.uid;
    st.st_gid = options_.gid;
    st.st_atim = st.st_mtim = st.st_ctim = started_;
    st.st_blksize = 4096;
    if (mode_->caches(pool)) {
        // A listing filled from a snapshot older than an invalidation (a readdir reply on its
        // way while the pool changed) is thrown away at the next opendir by this. While
        // another process holds the lock the last released state answers: the kernel asks
        // for the directory's attributes on the way to every name in it, so a wait here would
        // make every create and open behind it wait in turn (waits would add up).
        std::uint64_t generation = 0;
        try {
            generation = pools_.pool(pool).snapshot(kvp::PoolFile::LockWait::none)->generation();
        } catch (const kvp::Error&) {
            // A pool locked past lock_timeout: the directory itself still answers (with the
            // start time, which at worst makes the kernel refill a listing).
        }
        constexpr std::uint64_t kNsPerSec = 1'000'000'000;
        const std::uint64_t ns = static_cast<std::uint64_t>(started_.tv_nsec) + generation;
        st.st_mtim.tv_sec = started_.tv_sec + static_cast<time_t>(ns / kNsPerSec);
        st.st_mtim.tv_nsec = static_cast<long>(ns % kNsPerSec);
        st.st_ctim = st.st_mtim;
    }
}

namespace {
void fill_file(const Options& o, Ino ino, kvp::PoolId pool, std::size_t size, struct timespec mtime,
               struct stat& st) {
    st = {};
    st.st_ino = ino;
    st.st_mode = S_IFREG | ((pool == kvp::PoolId::guest ? 0666 : 0444) & ~o.umask);
    st.st_nlink = 1;
    st.st_uid = o.uid;
    st.st_gid = o.gid;
    st.st_size = static_cast<off_t>(size);
    st.st_blocks = static_cast<blkcnt_t>((size + 511) / 512);
    st.st_blksize = 4096;
    st.st_atim = st.st_mtim = st.st_ctim = mtime;
}
}  // namespace

void Filesystem::fill_key_attr(Ino ino, kvp::PoolId pool, const kvp::SnapshotRecord& rec,
                               struct stat& st) const {
    const bool truncated = mode_->shows_truncated(ino);
    fill_file(options_, ino, pool,
              (truncated ? 0 : rec.record.value.size()) + (options_.raw ? 0 : 1), rec.changed_at,
              st);
}

void Filesystem::fill_handle_attr(Ino ino, std::size_t size, struct timespec mtime,
                                  struct stat& st) const {
    fill_file(options_, ino, kvp::PoolId::guest, size, mtime, st);
}

void Filesystem::fill_reserved_attr(Ino ino, kvp::PoolId pool, struct stat& st) const {
    fill_file(options_, ino, pool, options_.raw ? 0 : 1, started_, st);
}

int Filesystem::attr_of(Ino ino, struct stat& st) {
    if (ino == kRootIno) {
        fill_root_attr(st);
        return 0;
    }
    if (auto pool = pool_of_dir_ino(ino)) {
        fill_dir_attr(*pool, st);
        return 0;
    }
    auto ref = inodes_.resolve(ino);
    if (!ref) {
        return ENOENT;
    }
    set_request_subject(ref->pool, ref->key);
    // While another process holds the lock, the last released state answers at once: the
    // kernel asks for the attributes of a key it just created, and a wait there would make
    // the creates behind it wait in turn (waits would add up).
    auto snap = pools_.pool(ref->pool).snapshot(kvp::PoolFile::LockWait::none);
    const ShownRecord shown(*this, ref->pool, *snap, ref->key);
    const kvp::SnapshotRecord* rec = shown.get();
    if (rec == nullptr) {
        if (reserved(ref->pool, ref->key)) {
            fill_reserved_attr(ino, ref->pool, st);
            return 0;
        }
        return ENOENT;
    }
    fill_key_attr(ino, ref->pool, *rec, st);
    return 0;
}

int Filesystem::change_refusal(std::optional<kvp::PoolId> pool) const {
    if (options_.read_only) {
        return EROFS;
    }
    if (!pool || *pool != kvp::PoolId::guest) {
        return EACCES;
    }
    return 0;
}

std::string describe_key(kvp::PoolId pool, std::string_view key) {
    std::string s(kvp::pool_name(pool));
    s.push_back('/');
    s.append(kvp::key_to_name(key));
    return s;
}

namespace {
struct RequestSubject {
    bool set = false;
    kvp::PoolId pool = kvp::PoolId::guest;
    std::string key;  // keeps its capacity: no allocation per request after warm-up
};
thread_local RequestSubject t_subject;
}  // namespace

void set_request_subject(kvp::PoolId pool, std::string_view key) {
    t_subject.set = true;
    t_subject.pool = pool;
    t_subject.key.assign(key);
}

void clear_request_subject() {
    t_subject.set = false;
}

std::string request_subject_prefix() {
    return t_subject.set ? describe_key(t_subject.pool, t_subject.key) + ": " : std::string();
}

std::string error_reason(const kvp::Error& e) {
    std::string what = e.what();
    const std::string suffix = ": " + e.code().message();
    if (what.size() >= suffix.size() &&
        what.compare(what.size() - suffix.size(), suffix.size(), suffix) == 0) {
        what.resize(what.size() - suffix.size());
    }
    return what;
}

void reply_error(fuse_req_t req, const char* op, int err, const std::string& why) {
    // ENOENT from a lookup is an answer, and ESTALE (a key another process removed, asked
    // through an entry the kernel still held) makes the kernel look the name up again: both
    // are routine, traced with -d, and use up none of the error lines' budget.
    if (err != ENOENT && err != ESTALE) {
        kvp::log(kvp::LogLevel::error, std::string(op) + ": " + why + ": " + std::strerror(err));
    } else if (kvp::log_debug_enabled()) {
        kvp::log(kvp::LogLevel::debug, std::string(op) + ": " + why + ": " + std::strerror(err));
    }
    fuse_reply_err(req, err);
}

void trace_ok(const char* op, kvp::PoolId pool, std::string_view key, const char* suffix) {
    if (kvp::log_debug_enabled()) {
        trace_ok(op, describe_key(pool, key) + suffix);
    }
}

void trace_ok(const char* op, const std::string& what) {
    if (kvp::log_debug_enabled()) {
        kvp::log(kvp::LogLevel::debug, std::string(op) + ": " + what + ": ok");
    }
}

}  // namespace kvpfs
