#include <cstdio>
#include <cstdlib>
#include <vector>

#include "ranked_mutex.hpp"

namespace kvp {

const char* lock_rank_name(LockRank rank) {
    switch (rank) {
        case LockRank::writer_names:
            return "writer_names";
        case LockRank::dir_handle:
            return "dir_handle";
        case LockRank::file_handle:
            return "file_handle";
        case LockRank::writer_registry:
            return "writer_registry";
        case LockRank::pool_file:
            return "pool_file";
        case LockRank::pool_file_lock:
            return "pool_file_lock";
        case LockRank::pool_watch:
            return "pool_watch";
        case LockRank::pending_truncations:
            return "pending_truncations";
        case LockRank::create_modes:
            return "create_modes";
        case LockRank::inode_table:
            return "inode_table";
        case LockRank::auto_view:
            return "auto_view";
        case LockRank::canonical_name:
            return "canonical_name";
        case LockRank::snapshot_listing:
            return "snapshot_listing";
        case LockRank::cache_pending:
            return "cache_pending";
        case LockRank::cache_later:
            return "cache_later";
        case LockRank::open_handles:
            return "open_handles";
        case LockRank::host_server:
            return "host_server";
        case LockRank::host_daemon:
            return "host_daemon";
        case LockRank::host_channel:
            return "host_channel";
        case LockRank::host_channel_queue:
            return "host_channel_queue";
        case LockRank::host_device_poll:
            return "host_device_poll";
        case LockRank::log_once:
            return "log_once";
        case LockRank::log_rate_limit:
            return "log_rate_limit";
    }
    return "unknown";
}

namespace lock_order {
namespace {
// The ranks the calling thread holds, in the order it took them (a few at most).
thread_local std::vector<LockRank>
    held_ranks;  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)
}  // namespace

void check(LockRank rank) {
    for (LockRank held : held_ranks) {
        if (held >= rank) {
            // No log call here: the log's own lock is ranked, and this thread may hold it.
            (void)std::fprintf(stderr,
                               "kvpfs: lock order broken: taking %s while holding %s "
                               "(docs/threads.md)\n",
                               lock_rank_name(rank), lock_rank_name(held));
            std::abort();
        }
    }
}

void acquired(LockRank rank) {
    held_ranks.push_back(rank);
}

void released(LockRank rank) {
    // Locks may be released in any order: drop the last one taken with this rank.
    for (auto it = held_ranks.rbegin(); it != held_ranks.rend(); ++it) {
        if (*it == rank) {
            held_ranks.erase(std::next(it).base());
            return;
        }
    }
}

}  // namespace lock_order
}  // namespace kvp
