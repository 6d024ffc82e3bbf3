#pragma once
// -o cache: the kernel keeps entries (negative ones too), attributes, page contents and
// listings of the cached pools, and this keeps them true by telling the kernel what to drop
// (fuse_lowlevel_notify_inval_inode / _inval_entry).
//
// - Changes made through the mount: the operation that made the change calls key_changed()
//   or listing_changed() before it replies, so the change is visible at once to everyone.
// - Changes made by other processes (kvpctl, cloud-init, the host daemon, writers without a
//   lock, a pool file or the pool directory replaced): a thread blocks on its own inotify
//   watch of the pool directory (and of its parent, for a replaced directory). On an event
//   it asks the engine for the pool's snapshot, which reads the file again under its shared
//   lock when it changed; the engine tells (PoolFile::set_load_listener) when a snapshot was
//   read again from the file, and only then the thread compares it with the keys and value
//   hashes it saw last and invalidates exactly the keys that were added, removed or changed.
//   A change of the mount table (/proc/self/mountinfo) makes it look at every pool (a
//   directory mounted over sends no inotify event), and so does a tick every second without
//   an event (an inotify queue overflow, a read that failed is retried).
//
// The thread is started after the daemon detached and stopped (joined) before the session
// ends; its descriptors are closed with it.

#include <fuse_lowlevel.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "inode_table.hpp"
#include "pool_id.hpp"
#include "pool_snapshot.hpp"
#include "unique_fd.hpp"

namespace kvpfs {

class Filesystem;

class CacheInvalidator {
  public:
    // `pools`: the pools whose files and entries the kernel may keep (op_*.cpp ask
    // Filesystem::caches()).
    CacheInvalidator(Filesystem& fs, std::string pool_dir, std::vector<kvp::PoolId> pools);
    ~CacheInvalidator();
    CacheInvalidator(const CacheInvalidator&) = delete;
    CacheInvalidator& operator=(const CacheInvalidator&) = delete;
    CacheInvalidator(CacheInvalidator&&) = delete;
    CacheInvalidator& operator=(CacheInvalidator&&) = delete;

    // Records what the pools hold now and starts the thread. Throws kvp::Error when the
    // inotify or eventfd descriptor cannot be had.
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
    // A change made through the mount is in `now` (the pool's snapshot, under its lock): what
    // the thread knows of `keys` becomes their value there, so a later load that puts back a
    // value the thread saw before the change is still seen as a change.
    void own_change(kvp::PoolId pool, const kvp::PoolSnapshot& now,
                    const std::vector<std::string>& keys);
    // Makes the thread compute when to wake again (a pending truncation was added).
    void wake();

  private:
    struct Seen {
        std::uint64_t value_hash = 0;
        std::uint64_t round = 0;
    };
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    using SeenMap = std::unordered_map<std::string, Seen, Hash, std::equal_to<>>;

    void run();
    // Blocks until an event, a load signal, a stop or the 1 s tick; sets `touched` for the
    // pools whose files may have changed. False when stopping.
    bool wait(std::array<bool, 5>& touched);
    // (Re)watches whatever directory the pool directory's path names now, and its files.
    void follow_directory();
    // (Re)watches the pool file the path names now: a write through a hard link in another
    // directory reaches its inode's watch only.
    void watch_file(kvp::PoolId pool);
    // Compares the pool's snapshot with what was seen and invalidates the differences.
    void refresh(kvp::PoolId pool);
    // Invalidates the listings whose relist_at_ has come, and the inodes of inode_later.
    void relist_due();
    // The soonest time something queued falls due (time_point::max(): nothing).
    [[nodiscard]] std::chrono::steady_clock::time_point next_due();
    [[nodiscard]] bool cached(kvp::PoolId pool) const;

    Filesystem& fs_;
    std::string pool_dir_;
    std::string parent_dir_;
    std::string dir_name_;
    std::vector<kvp::PoolId> pools_;
    std::atomic<struct fuse_session*> session_{nullptr};
    kvp::UniqueFd inotify_;
    kvp::UniqueFd wake_;       // eventfd: a load happened, or stop
    kvp::UniqueFd mountinfo_;  // /proc/self/mountinfo: POLLPRI when the mount table changes
    int dir_wd_ = -1;
    int parent_wd_ = -1;
    std::array<int, 5> file_wd_{-1, -1, -1, -1, -1};
    std::array<std::atomic<bool>, 5> loaded_{};
    std::atomic<bool> stopping_{false};
    // seen_ and round_ are the thread's, and own_change()'s under seen_mutex_.
    std::mutex seen_mutex_;
    // Only the thread touches these (and start(), before the thread runs).
    std::array<SeenMap, 5> seen_;
    std::array<std::uint64_t, 5> seen_generation_{};
    std::array<bool, 5> have_seen_{};
    std::uint64_t round_ = 0;
    // When to invalidate a pool directory's listing once more after its keys came or went:
    // a readdir reply built before the change may still land in the kernel's listing cache
    // after the first invalidation (time_point::max(): nothing due).
    std::array<std::chrono::steady_clock::time_point, 5> relist_at_{};
    // inode_later's queue (any thread adds, the thread takes).
    std::mutex later_mutex_;
    std::vector<std::pair<std::chrono::steady_clock::time_point, Ino>> later_;
    std::thread thread_;
};

}  // namespace kvpfs
