#include "cache_invalidator.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

#include "error.hpp"
#include "filesystem.hpp"
#include "key_name.hpp"
#include "log.hpp"
#include "snapshot_diff.hpp"

namespace kvpfs {
namespace {

// A listing is invalidated once more this long after its keys changed (relist_at_).
constexpr auto kRelistAfter = std::chrono::milliseconds(100);

// The pool a file name in the pool directory belongs to (".kvp_pool_N"), if any.
std::optional<kvp::PoolId> pool_of_file(std::string_view name) {
    for (kvp::PoolId id : kvp::kAllPools) {
        if (name == kvp::pool_file_name(id)) {
            return id;
        }
    }
    return std::nullopt;
}

// A notification the kernel could not act on is not an error of the change: ENOENT means it
// holds nothing for that inode or name, and after unmounting the session answers EBADF.
void check_notify(int rc, const char* what) {
    if (rc != 0 && rc != -ENOENT && kvp::log_debug_enabled()) {
        kvp::log(kvp::LogLevel::debug, std::string("cache: ") + what + ": " + std::strerror(-rc));
    }
}

}  // namespace

CacheInvalidator::CacheInvalidator(Filesystem& fs, std::vector<kvp::PoolId> pools)
    : fs_(fs), pools_(std::move(pools)) {}

CacheInvalidator::~CacheInvalidator() {
    stop();
}

bool CacheInvalidator::cached(kvp::PoolId pool) const {
    for (kvp::PoolId p : pools_) {
        if (p == pool) {
            return true;
        }
    }
    return false;
}

void CacheInvalidator::start(struct fuse_session* session) {
    watch_ = std::make_unique<kvp::WatchObserver>(fs_.pools().watch());
    if (watch_->fds().inotify < 0) {
        // Out of inotify instances (fs.inotify.max_user_instances), or a file system without
        // it: the thread still looks at every pool file's identity, size and times each
        // -o look_interval, so other processes' changes show within that instead.
        kvp::log(kvp::LogLevel::warning,
                 "-o cache: no inotify to follow " + fs_.pools().directory().string() +
                     "; other processes' changes show within -o look_interval (" +
                     std::to_string(fs_.options().look_interval.count()) + " ms)");
    }
    wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_) {
        kvp::throw_errno("cache: eventfd");
    }
    for (kvp::PoolId id : pools_) {
        fs_.pool(id).set_load_listener(
            [this, id](const kvp::PoolSnapshot* before, const kvp::PoolSnapshot& now) {
                loaded(id, before, now);
            });
    }
    relist_at_.fill(std::chrono::steady_clock::time_point::max());
    session_.store(session);
    thread_ = std::thread([this] { run(); });
    // Named before the session serves anything: for ps, gdb and the tests.
    (void)::pthread_setname_np(thread_.native_handle(), "kvpfs-cache");
}

void CacheInvalidator::stop() {
    if (thread_.joinable()) {
        stopping_.store(true);
        const std::uint64_t one = 1;
        (void)!::write(wake_.get(), &one, sizeof one);
        thread_.join();
    }
    session_.store(nullptr);
    for (kvp::PoolId id : pools_) {
        fs_.pool(id).set_load_listener(nullptr);
    }
    watch_.reset();
    wake_.reset();
}

void CacheInvalidator::key_changed(kvp::PoolId pool, std::string_view key, bool listing) {
    struct fuse_session* se = session_.load();
    if (se == nullptr || !cached(pool)) {
        return;
    }
    if (const auto ino = fs_.inodes().find(pool, key)) {
        check_notify(fuse_lowlevel_notify_inval_inode(se, *ino, 0, 0), "inval_inode");
    }
    if (listing) {
        listing_changed(pool);
    }
}

void CacheInvalidator::listing_changed(kvp::PoolId pool) {
    struct fuse_session* se = session_.load();
    if (se == nullptr || !cached(pool)) {
        return;
    }
    check_notify(fuse_lowlevel_notify_inval_inode(se, pool_dir_ino(pool), 0, 0), "inval_dir");
}

void CacheInvalidator::inode_later(Ino ino, std::chrono::milliseconds after) {
    if (session_.load() == nullptr) {
        return;
    }
    {
        std::lock_guard lock(later_mutex_);
        later_.emplace_back(std::chrono::steady_clock::now() + after, ino);
    }
    wake();
}

void CacheInvalidator::wake() {
    const std::uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
}

std::chrono::steady_clock::time_point CacheInvalidator::next_due() {
    auto due = std::chrono::steady_clock::time_point::max();
    for (const auto& at : relist_at_) {
        due = std::min(due, at);
    }
    std::lock_guard lock(later_mutex_);
    for (const auto& entry : later_) {
        due = std::min(due, entry.first);
    }
    return due;
}

bool CacheInvalidator::wait(std::array<bool, 5>& touched) {
    const kvp::WatchObserver::Fds watched = watch_->fds();
    struct pollfd fds[4] = {{watched.changes, POLLIN, 0},
                            {wake_.get(), POLLIN, 0},
                            {watched.inotify, POLLIN, 0},
                            {watched.mount_table, POLLPRI, 0}};
    // Without an event every pool is looked at this often: its file's identity, size and
    // times (a store through a shared mapping queues no event), the directory, a retry.
    int timeout = static_cast<int>(
        std::clamp<std::int64_t>(fs_.options().look_interval.count(), 1, 86'400'000));
    const auto now = std::chrono::steady_clock::now();
    if (const auto at = next_due(); at != std::chrono::steady_clock::time_point::max()) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(at - now).count() + 1;
        timeout = std::clamp(static_cast<int>(ms), 0, timeout);
    }
    const int n = ::poll(fds, 4, timeout);  // poll() skips a descriptor of -1
    if (stopping_.load()) {
        return false;
    }
    if (n <= 0) {
        touched.fill(true);  // the tick (or EINTR): look at everything
        return true;
    }
    if ((fds[1].revents & POLLIN) != 0) {
        std::uint64_t count = 0;
        (void)!::read(wake_.get(), &count, sizeof count);
    }
    // The mount table changed: a directory mounted over the pool directory (or one above it)
    // sends no inotify event; the watcher then has every pool looked at.
    const bool mounts = (fds[3].revents & (POLLPRI | POLLERR)) != 0;
    if (mounts || ((fds[0].revents | fds[2].revents) & POLLIN) != 0) {
        const kvp::WatchObserver::Touched what = watch_->collect(mounts);
        if (what.all) {
            touched.fill(true);
        }
        for (const std::string& name : what.names) {
            if (const auto id = pool_of_file(name)) {
                touched[kvp::pool_number(*id)] = true;
            }
        }
    }
    return true;
}

void CacheInvalidator::run() {
    // This thread is woken by a writer's write(), usually while the writer still holds its
    // lock for a few microseconds more; the engine's lock wait then sleeps. Sleeps of this
    // thread end when asked (the default slack adds 50 us to each), not later.
    (void)::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    std::array<bool, 5> touched{};
    while (wait(touched)) {
        for (kvp::PoolId id : pools_) {
            if (!touched[kvp::pool_number(id)]) {
                continue;
            }
            int& failing = failing_[kvp::pool_number(id)];
            try {
                // Reads the file again (under its shared lock) when it changed; the load
                // listener then queues what differs.
                (void)fs_.pool(id).snapshot();
                if (failing != 0) {
                    failing = 0;
                    kvp::log(kvp::LogLevel::info, std::string("cache: ") +
                                                      std::string(kvp::pool_name(id)) +
                                                      ": changes followed again");
                }
            } catch (const std::exception& e) {
                // A lock held too long, an I/O error, something else than a pool file in its
                // place: tried again at the next look (the engine still counts the file as
                // changed). Logged once per state, not at every look.
                const auto* error = dynamic_cast<const kvp::Error*>(&e);
                const int err = error != nullptr ? error->errno_value() : -1;
                if (err != failing) {
                    failing = err;
                    kvp::log(kvp::LogLevel::warning,
                             std::string("cache: ") + std::string(kvp::pool_name(id)) +
                                 ": changes not followed yet (retried every look, logged again "
                                 "when this changes): " +
                                 e.what());
                }
            }
        }
        for (kvp::PoolId id : pools_) {
            refresh(id);
        }
        touched.fill(false);
        relist_due();
    }
}

void CacheInvalidator::relist_due() {
    const auto now = std::chrono::steady_clock::now();
    struct fuse_session* se = session_.load();
    std::vector<Ino> due;
    {
        std::lock_guard lock(later_mutex_);
        for (auto it = later_.begin(); it != later_.end();) {
            if (it->first <= now) {
                due.push_back(it->second);
                it = later_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (const Ino ino : due) {
        if (se != nullptr) {
            check_notify(fuse_lowlevel_notify_inval_inode(se, ino, 0, 0), "inval_inode");
        }
    }
    for (kvp::PoolId id : pools_) {
        auto& at = relist_at_[kvp::pool_number(id)];
        if (at <= now) {
            at = std::chrono::steady_clock::time_point::max();
            if (se != nullptr) {
                check_notify(fuse_lowlevel_notify_inval_inode(se, pool_dir_ino(id), 0, 0),
                             "inval_dir");
            }
        }
    }
}

void CacheInvalidator::loaded(kvp::PoolId pool, const kvp::PoolSnapshot* before,
                              const kvp::PoolSnapshot& now) {
    if (before == nullptr) {
        return;  // the pool's first read: nothing was answered from it yet
    }
    const kvp::SnapshotDiff diff = kvp::diff_snapshots(before, now);
    if (diff.empty()) {
        return;
    }
    {
        const std::lock_guard guard(pending_mutex_);
        Pending& p = pending_[kvp::pool_number(pool)];
        const auto mark = [&](std::string_view key, unsigned drop) {
            auto it = p.keys.find(key);
            if (it == p.keys.end()) {
                p.keys.emplace(std::string(key), drop);
            } else {
                it->second |= drop;
            }
        };
        for (std::string_view key : diff.changed) {
            mark(key, kValue);
        }
        for (std::string_view key : diff.added) {
            mark(key, kName);
        }
        for (std::string_view key : diff.removed) {
            mark(key, kName | kInode);
        }
        p.listing = p.listing || !diff.added.empty() || !diff.removed.empty();
    }
    wake();
}

void CacheInvalidator::refresh(kvp::PoolId pool) {
    const int n = kvp::pool_number(pool);
    Pending taken;
    {
        const std::lock_guard guard(pending_mutex_);
        if (pending_[n].keys.empty() && !pending_[n].listing) {
            return;
        }
        std::swap(taken, pending_[n]);
    }
    struct fuse_session* se = session_.load();
    if (se == nullptr) {
        return;
    }
    const Ino dir = pool_dir_ino(pool);
    std::vector<std::string_view> names;
    for (auto& [key, drop] : taken.keys) {
        if ((drop & kValue) != 0) {
            if (const auto ino = fs_.inodes().find(pool, key)) {
                check_notify(fuse_lowlevel_notify_inval_inode(se, *ino, 0, 0), "inval_inode");
                if (fs_.options().cache_contents) {
                    // A READ answered before the change may fill the page after this
                    // invalidation; a second one drops what it left.
                    std::lock_guard lock(later_mutex_);
                    later_.emplace_back(std::chrono::steady_clock::now() + kRelistAfter, *ino);
                }
            } else {
                // No inode yet, but a lookup may be on its way with the old attributes:
                // dropping the name waits for the directory's lookups in progress (it takes
                // its lock).
                drop |= kName;
            }
        }
        if ((drop & kName) != 0) {
            names.push_back(key);
        }
    }
    // The listing first: the names below may be many (a truncated pool), and each waits for
    // the directory's lookups and listings in progress (it takes the directory's lock).
    if (taken.listing) {
        check_notify(fuse_lowlevel_notify_inval_inode(se, dir, 0, 0), "inval_dir");
        relist_at_[n] = std::chrono::steady_clock::now() + kRelistAfter;
    }
    // A name that appeared may be cached as missing; one that went may be cached as present.
    for (std::string_view key : names) {
        const std::string name = kvp::key_to_name(key);
        check_notify(fuse_lowlevel_notify_inval_entry(se, dir, name.c_str(), name.size()),
                     "inval_entry");
    }
    for (const auto& [key, drop] : taken.keys) {
        if ((drop & kInode) != 0) {
            if (const auto ino = fs_.inodes().find(pool, key)) {
                check_notify(fuse_lowlevel_notify_inval_inode(se, *ino, 0, 0), "inval_inode");
            }
        }
    }
}

}  // namespace kvpfs
