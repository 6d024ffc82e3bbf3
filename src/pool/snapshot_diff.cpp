#include "snapshot_diff.hpp"

namespace kvp {
namespace {

// The common change, a value rewritten in place: the same keys at the same places. Then the
// records are compared pairwise, without a lookup per key. False when the keys moved.
bool diff_in_place(const PoolSnapshot& before, const PoolSnapshot& now, SnapshotDiff& diff) {
    const auto& old_records = before.records();
    const auto& records = now.records();
    if (old_records.size() != records.size()) {
        return false;
    }
    for (std::size_t i = 0; i < records.size(); ++i) {
        if (old_records[i].record.key != records[i].record.key) {
            return false;
        }
    }
    for (std::size_t i = 0; i < records.size(); ++i) {
        const SnapshotRecord& rec = records[i];
        // A later duplicate's value is never read: only a key's first record counts.
        if (rec.record.value != old_records[i].record.value && now.find(rec.record.key) == &rec) {
            diff.changed.push_back(rec.record.key);
        }
    }
    return true;
}

}  // namespace

SnapshotDiff diff_snapshots(const PoolSnapshot* before, const PoolSnapshot& now) {
    SnapshotDiff diff;
    if (before != nullptr && diff_in_place(*before, now, diff)) {
        return diff;
    }
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
