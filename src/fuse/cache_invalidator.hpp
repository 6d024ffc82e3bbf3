#pragma once
// -o cache: the kernel keeps entries (negative ones too), attributes, page contents and
// listings of the cached pools, and this keeps them true by telling the kernel what to drop
// (fuse_lowlevel_notify_inval_inode / _inval_entry).
//
// - Changes made through the mount: the operation that made the change calls key_changed()
//   or listing_changed() before it replies, so the change is visible at once to everyone.
// - Changes made by other processes (kvpctl, cloud-init, the host daemon, writers without a
//   lock, a pool file or the pool directory replaced): a thread sleeps on the pool
//   directory's one watcher (kvp::DirectoryWatch, shared with the engine's change detection:
//   it follows the directory by its path, through replaced directories above it and mounts,
//   and hands each subscriber the events it needs, whoever drained them). When it says a pool
//   file may have changed the thread asks the engine for the pool's snapshot, which reads the file
//   again under its shared lock when it changed. Every such read, by this thread or by any request,
//   is reported by the engine (PoolFile::set_load_listener) with the snapshot answers came from
//   until then; the keys that differ between the two are queued, and the thread invalidates exactly
//   those. Each read is compared with the one before it, not with what the thread looked at
//   last: a state a request read and answered from, and that was gone again before the
//   thread looked, must be invalidated too, and so must a key the mount changed itself
//   before another process put back its older value.
//   A change of the mount table (/proc/self/mountinfo) or of the directories on the path
//   makes it look at every pool (a directory mounted over sends no inotify event), and so
//   does a tick every -o look_interval (0.1 s) without an event: each pool file's identity,
//   size and times are compared with the last load's (a store through a shared mapping queues
//   no event), and a read that failed is retried (its failure logged once per errno).
//
// The thread is started after the daemon detached and stopped (joined) before the session
// ends; its descriptors are closed with it.

#include <fuse_lowlevel.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "directory_watch.hpp"
#include "inode_table.hpp"
#include "pool_id.hpp"
#include "pool_snapshot.hpp"
#include "ranked_mutex.hpp"
#include "unique_fd.hpp"

namespace kvpfs {

class Filesystem;

class CacheInvalidator {
  public:
    // `pools`: the pools whose files and entries the kernel may keep (op_*.cpp ask
    // MountMode::caches()).
    CacheInvalidator(Filesystem& fs, std::vector<kvp::PoolId> pools);
    ~CacheInvalidator();
    CacheInvalidator(const CacheInvalidator&) = delete;
    CacheInvalidator& operator=(const CacheInvalidator&) = delete;
    CacheInvalidator(CacheInvalidator&&) = delete;
    CacheInvalidator& operator=(CacheInvalidator&&) = delete;

    // Records what the pools hold now and starts the thread. Throws kvp::Error when no
    // eventfd can be had. Without inotify (a warning) the thread looks each -o look_interval.
    void start(struct fuse_session* session);
    // Stops and joins the thread; no notification is sent after it returns. Idempotent.
    void stop();

    // A change through the mount, before its reply: the key's attributes and pages, and with
    // `listing` (a key added or removed) the pool directory's listing.
    void key_changed(kvp::PoolId pool, std::string_view key, bool listing);
    void listing_changed(kvp::PoolId pool);
    // -o cache=all: drops the kernel's pages and attributes of `ino` from the thread, `after`
    // from now. For what a request cannot drop itself: a WRITE's own pages are locked by the
    // writer until its reply, and a READ's by the reader.
    void inode_later(Ino ino, std::chrono::milliseconds after);
    // Makes the thread compute when to wake again.
    void wake();

  private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    // What a key needs the kernel to drop (bits).
    enum Drop : unsigned {
        kValue = 1,  // its value changed: its attributes (or its name, without an inode)
        kName = 2,   // it came or went: its entry (a negative one, or a positive one)
        kInode = 4,  // it went: its inode's attributes too
    };
    // The changes the loads reported that the thread has not sent yet, for one pool.
    struct Pending {
        std::unordered_map<std::string, unsigned, Hash, std::equal_to<>> keys;
        bool listing = false;  // keys came or went
    };

    void run();
    // Blocks until the watcher reports, a load signal, a stop or the look interval; sets `touched`
    // for the pools whose files may have changed. False when stopping.
    bool wait(std::array<bool, 5>& touched);
    // The engine's load listener: queues the keys that differ (the pool's mutex is held).
    void loaded(kvp::PoolId pool, const kvp::PoolSnapshot* before, const kvp::PoolSnapshot& now);
    // Sends the invalidations queued for the pool.
    void refresh(kvp::PoolId pool);
    // Invalidates the listings whose relist_at_ has come, and the inodes of inode_later.
    void relist_due();
    // The soonest time something queued falls due (time_point::max(): nothing).
    [[nodiscard]] std::chrono::steady_clock::time_point next_due();
    [[nodiscard]] bool cached(kvp::PoolId pool) const;

    Filesystem& fs_;
    std::vector<kvp::PoolId> pools_;
    std::atomic<struct fuse_session*> session_{nullptr};
    std::unique_ptr<kvp::WatchObserver> watch_;  // the pool directory's watcher, subscribed
    kvp::UniqueFd wake_;                         // eventfd: a load happened, or stop
    std::atomic<bool> stopping_{false};
    kvp::RankedMutex pending_mutex_{
        kvp::LockRank::cache_pending};  // taken inside the pools' mutexes, never the other way
                                        // round
    std::array<Pending, 5> pending_;
    // Only the thread touches these (and start(), before the thread runs).
    // When to invalidate a pool directory's listing once more after its keys came or went:
    // a readdir reply built before the change may still land in the kernel's listing cache
    // after the first invalidation (time_point::max(): nothing due).
    std::array<std::chrono::steady_clock::time_point, 5> relist_at_{};
    // The errno each pool's last look failed with (0: it succeeded; -1: not a kvp::Error), so
    // that a failure is logged once, not at every look.
    std::array<int, 5> failing_{};
    // inode_later's queue (any thread adds, the thread takes).
    kvp::RankedMutex later_mutex_{kvp::LockRank::cache_later};
    std::vector<std::pair<std::chrono::steady_clock::time_point, Ino>> later_;
    std::thread thread_;
};

}  // namespace kvpfs
