#pragma once
// Every lock of kvpfs, kvpctl and kvp-host in one order (docs/threads.md is this list with the
// threads that take them). A thread may take a lock only while every lock it holds has a
// lower rank: the order in which they are listed here. Builds with KVPFS_CHECK_LOCK_ORDER
// (Debug builds, the ASan+UBSan stage of scripts/test.sh) check it at every lock and abort,
// naming both locks, when it is broken; other builds check nothing and pay nothing.
//
// A try-lock cannot deadlock: it is not checked, but the lock it takes counts as held.

#include <cstdint>

namespace kvp {

enum class LockRank : std::uint8_t {
    // kvpfs, outermost first.
    writer_names,     // WriterRegistry's names lock (shared by stores, owned by unlink/rename)
    dir_handle,       // DirHandle::mutex: one open directory's listing position
    file_handle,      // FileHandle::mutex: one writable handle's state
    writer_registry,  // WriterRegistry::mutex_: its handle and reservation maps
    pool_file_lock,   // a pool file's flock + fcntl lock (FileLock: held by a thread, not a mutex)
    pool_file,        // PoolFile::mutex_: one pool's cached snapshot
    pool_watch,       // DirectoryWatch::mutex_: the pool directory's one inotify queue
    pending_truncations,  // CacheAllMode: its writers' table and truncations (taken in an update)
    create_modes,         // CacheAllMode: each new inode's create mode
    inode_table,          // InodeTable::mutex_
    auto_view,            // AutoPoolView::mutex_: the intrinsic items' last values
    canonical_name,       // the host-name lookup's result
    snapshot_listing,     // PoolSnapshot::listing_mutex_: a snapshot's sorted listing, made once
    cache_pending,        // CacheInvalidator: requests' changes queued for the thread
    cache_later,          // CacheInvalidator: invalidations due later
    open_handles,         // Filesystem: handles still open at shutdown
    // kvp-host.
    host_server,         // ControlServer::mu_: the open control connections
    host_daemon,         // DaemonSupervisor::mu_: the hv_kvp_daemon child's pid and exit
    host_channel,        // Channel::mu_: the device's state and the transaction in flight
    host_channel_queue,  // Channel::queue_mu_: the host's transaction tickets
    host_device_poll,    // DeviceFs::State::poll_mu: the device's poll handle
    // Innermost: the log is written under any other lock.
    log_once,        // log_once's set of lines said
    log_rate_limit,  // the error lines' rate-limit window
};

// The name docs/threads.md uses for `rank`.
[[nodiscard]] const char* lock_rank_name(LockRank rank);

}  // namespace kvp
