#include "snapshot_diff.hpp"

namespace kvp {

SnapshotDiff diff_snapshots(const PoolSnapshot* before, const PoolSnapshot& now) {
    SnapshotDiff diff;
    now.for_each_key([&](std::string_view key, const SnapshotRecord& rec) {
        const SnapshotRecord* old = before != nullptr ? before->find(key) : nullptr;
        if (old == nullptr) {
            diff.added.push_back(key);
        } else if (old->record.value != rec.record.value) {
            diff.changed.push_back(key);
        }
    });
    if (before != nullptr) {
        before->for_each_key([&](std::string_view key, const SnapshotRecord& /*rec*/) {
            if (now.find(key) == nullptr) {
                diff.removed.push_back(key);
            }
        });
    }
    return diff;
}

}  // namespace kvp
