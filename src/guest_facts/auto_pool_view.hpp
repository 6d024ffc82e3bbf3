#pragma once
// Pool 2 as the host sees it: the records of .kvp_pool_2, then each intrinsic item the file
// does not hold, in kIntrinsicNames order. A record of the file with an intrinsic item's name
// wins over the computed value (its place is the record's). The one view of auto/: kvpfs's
// read paths (through fuse/auto_view, glue that adds the mount's options) and kvpctl's
// `--intrinsic` (kvpctl/host_view, glue that adds opening the pool directory) both ask it.

#include <time.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "intrinsic_items.hpp"
#include "pool_snapshot.hpp"
#include "ranked_mutex.hpp"

namespace kvp {

class AutoPoolView {
  public:
    // `since`: the time given as the mtime of a value first seen (the mount's start).
    AutoPoolView(IntrinsicSources sources, struct timespec since);

    // The intrinsic names `snap` holds no record of, in their order.
    [[nodiscard]] std::vector<std::string_view> missing_names(const PoolSnapshot& snap) const;
    // Item `key` computed now, as a record; nullopt when `key` is not an intrinsic name.
    // changed_at is when its value was last seen to change: `since` until a call sees a
    // value different from the one before. The caller asks only when the file lacks `key`.
    [[nodiscard]] std::optional<SnapshotRecord> intrinsic(std::string_view key);

    // Every key of pool 2 as the host sees it: the file's listing, then missing_names(snap).
    [[nodiscard]] std::vector<std::string> keys(const PoolSnapshot& snap) const;
    // The record of `key` the host sees: the file's first one, else the intrinsic item
    // computed now; nullopt when neither has it.
    [[nodiscard]] std::optional<SnapshotRecord> record(const PoolSnapshot& snap,
                                                       std::string_view key);
    // For a one-shot reader (kvpctl), which has no time to let the host-name lookup finish in
    // the background: waits up to `limit` for it, so FullyQualifiedDomainName shows the
    // canonical name if one comes; past the limit the item stays the plain host name.
    void wait_for_host_name(std::chrono::milliseconds limit) const;

    [[nodiscard]] const IntrinsicItems& items() const { return items_; }

  private:
    struct Seen {
        bool seen = false;
        std::string value;
        struct timespec changed_at {};
    };
    IntrinsicItems items_;
    struct timespec since_;
    // Guards seen_ only; held for a comparison and a clock read, never across a probe (the
    // item's value is computed before it is taken) or a FUSE reply. Taken after the pool and
    // inode locks of kvpfs, before the log's.
    RankedMutex mutex_{LockRank::auto_view};
    std::array<Seen, kIntrinsicNames.size()> seen_;
};

}  // namespace kvp
