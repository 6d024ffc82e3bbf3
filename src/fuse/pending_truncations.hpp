#pragma once
// -o cache=all: truncations to size 0 that the mount shows but the pool does not hold yet
// (CacheAllMode owns them; defined in mode_cache_all.cpp).
//
// Without handles, open(O_TRUNC) reaches kvpfs as a truncate to 0 when the open returns, and
// `echo V > KEY` then writes. Storing the empty value at once would let the host read it until
// the write comes, and cost a second locked change. So the truncation is only noted: the mount
// shows the empty value from then on (attributes and reads), the next write to the key applies
// to the empty value and replaces the old one in one change, and when no write comes (`: > KEY`)
// the invalidation thread stores the empty value kPendingTruncation after the truncate.

#include <chrono>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "inode_table.hpp"
#include "ranked_mutex.hpp"

namespace kvpfs {

inline constexpr std::chrono::milliseconds kPendingTruncation{50};

class PendingTruncations {
  public:
    using Clock = std::chrono::steady_clock;

    // `ino` was truncated to 0 now; the empty value is due in the pool at `due`.
    void add(Ino ino, Clock::time_point due);
    // The soonest due time (time_point::max(): none).
    [[nodiscard]] Clock::time_point next_due() const;
    [[nodiscard]] bool contains(Ino ino) const;
    // Removes `ino`'s truncation; true if there was one. The change that applies it calls this
    // under the pool's exclusive lock, so exactly one change applies it.
    bool take(Ino ino);
    // The truncations whose time has come (left in place: their change take()s them).
    [[nodiscard]] std::vector<Ino> due(Clock::time_point now) const;
    [[nodiscard]] std::vector<Ino> all() const;

  private:
    // Guards due_. Taken inside a pool's update (after its file lock and mutex: take() is what
    // makes one change apply a truncation) and with no lock held; nothing is taken under it;
    // never across a reply.
    mutable kvp::RankedMutex mutex_{kvp::LockRank::pending_truncations};
    std::unordered_map<Ino, Clock::time_point> due_;
};

}  // namespace kvpfs
