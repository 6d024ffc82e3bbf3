#pragma once
// Which keys differ between two snapshots of one pool, as a reader sees them: a key is its
// first record, so a duplicate further down changes nothing. For kvpfs -o cache, which must
// tell the kernel about every key an answer from `before` may have shown wrongly once `now`
// is the pool's state.

#include <string_view>
#include <vector>

#include "pool_snapshot.hpp"

namespace kvp {

struct SnapshotDiff {
    // Views into the two snapshots: valid as long as they are.
    std::vector<std::string_view> added;    // in `now` only
    std::vector<std::string_view> removed;  // in `before` only
    std::vector<std::string_view> changed;  // in both, with another value
    [[nodiscard]] bool empty() const { return added.empty() && removed.empty() && changed.empty(); }
};

// `before` may be nullptr (no snapshot yet): then every key of `now` is added.
[[nodiscard]] SnapshotDiff diff_snapshots(const PoolSnapshot* before, const PoolSnapshot& now);

}  // namespace kvp
