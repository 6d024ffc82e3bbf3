#pragma once
// auto/ as the host sees it (docs/behaviour.md §1): the read paths (lookup, getattr, open, readdir)
// ask here for what .kvp_pool_2 does not hold. Glue only: the view itself is guest_facts'
// AutoPoolView, which kvpctl asks too; this adds the mount's choice (with -o auto=file there
// is no view and auto/ shows the file alone) and the pool check.

#include <optional>
#include <string_view>
#include <vector>

#include "filesystem.hpp"

namespace kvpfs {

// The record a key file shows: the pool file's, else (auto/) the intrinsic item computed now;
// null when neither. The read paths ask this instead of the snapshot alone. The object keeps
// a computed item alive, so it stays where it was made.
class ShownRecord {
  public:
    ShownRecord(Filesystem& fs, kvp::PoolId pool, const kvp::PoolSnapshot& snap,
                std::string_view key);
    ShownRecord(const ShownRecord&) = delete;
    ShownRecord& operator=(const ShownRecord&) = delete;
    ShownRecord(ShownRecord&&) = delete;
    ShownRecord& operator=(ShownRecord&&) = delete;
    ~ShownRecord() = default;

    [[nodiscard]] const kvp::SnapshotRecord* get() const { return rec_; }

  private:
    std::optional<kvp::SnapshotRecord> intrinsic_;
    const kvp::SnapshotRecord* rec_;
};

// The names a listing of `pool` shows after the file's keys (the intrinsic items `snap`
// lacks, for auto/; nothing otherwise).
[[nodiscard]] std::vector<std::string_view> intrinsic_names(Filesystem& fs, kvp::PoolId pool,
                                                            const kvp::PoolSnapshot& snap);
// Starts the background host-name lookups (from init, after daemonizing).
void start_intrinsic_lookups(Filesystem& fs);

}  // namespace kvpfs
