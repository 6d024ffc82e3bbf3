// What differs between two snapshots (snapshot_diff.hpp), and the load listener that hands
// kvpfs -o cache every load with the snapshot answers came from before it.

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "pool_file.hpp"
#include "snapshot_diff.hpp"
#include "test_support.hpp"

namespace {

using kvptest::encode_records;
using kvptest::write_file;

kvp::SnapshotRecord rec(const std::string& k, const std::string& v) {
    return kvp::SnapshotRecord{kvp::Record{k, v}, timespec{}};
}

kvp::PoolSnapshot snap(std::vector<kvp::SnapshotRecord> records) {
    const std::size_t n = records.size();
    return {std::move(records), true, n * kvptest::kRecord, timespec{}, 1};
}

std::vector<std::string> sorted(const std::vector<std::string_view>& keys) {
    std::vector<std::string> out(keys.begin(), keys.end());
    std::sort(out.begin(), out.end());
    return out;
}

using Keys = std::vector<std::string>;

TEST(SnapshotDiff, KeysAddedRemovedAndChangedAsAReaderSeesThem) {
    const auto before = snap({rec("same", "1"), rec("changed", "old"), rec("gone", "x"),
                              rec("dup", "first"), rec("", "empty keys are not keys")});
    // A duplicate further down changes nothing: the first record is the one read.
    const auto now = snap({rec("dup", "first"), rec("changed", "new"), rec("same", "1"),
                           rec("dup", "second"), rec("new", "n"), rec("", "other")});
    const kvp::SnapshotDiff d = kvp::diff_snapshots(&before, now);
    EXPECT_EQ(sorted(d.added), Keys{"new"});
    EXPECT_EQ(sorted(d.removed), Keys{"gone"});
    EXPECT_EQ(sorted(d.changed), Keys{"changed"});
    EXPECT_TRUE(kvp::diff_snapshots(&now, now).empty());
}

// The same keys at the same places (a value rewritten in place) are compared record by
// record; still only a key's first record counts.
TEST(SnapshotDiff, ValuesRewrittenInPlace) {
    const auto before = snap({rec("a", "1"), rec("", "e"), rec("b", "2"), rec("a", "3")});
    const auto later_duplicate = snap({rec("a", "1"), rec("", "f"), rec("b", "x"), rec("a", "y")});
    kvp::SnapshotDiff d = kvp::diff_snapshots(&before, later_duplicate);
    EXPECT_EQ(sorted(d.changed), Keys{"b"});
    EXPECT_TRUE(d.added.empty());
    EXPECT_TRUE(d.removed.empty());
    const auto first = snap({rec("a", "z"), rec("", "e"), rec("b", "2"), rec("a", "3")});
    d = kvp::diff_snapshots(&before, first);
    EXPECT_EQ(sorted(d.changed), Keys{"a"});
    EXPECT_TRUE(kvp::diff_snapshots(&before, before).empty());
}

TEST(SnapshotDiff, WithoutABeforeEveryKeyIsAdded) {
    const auto now = snap({rec("a", "1"), rec("b", "2"), rec("a", "3")});
    const kvp::SnapshotDiff d = kvp::diff_snapshots(nullptr, now);
    EXPECT_EQ(sorted(d.added), (Keys{"a", "b"}));
    EXPECT_TRUE(d.removed.empty());
    EXPECT_TRUE(d.changed.empty());
}

class LoadListenerTest : public kvptest::PoolDirTest {};

// The `before` of a load is what answers came from: it includes the changes made through
// the same PoolFile, so another process putting back an older value is a change.
TEST_F(LoadListenerTest, EachLoadComesWithTheSnapshotAnsweredFromBefore) {
    write_file(pool(), encode_records({{"A", "1"}}));
    kvp::PoolFile p(pool(), kvp::PoolOptions{});
    std::vector<bool> had_before;
    std::vector<std::vector<std::string>> changed;
    p.set_load_listener([&](const kvp::PoolSnapshot* before, const kvp::PoolSnapshot& now) {
        had_before.push_back(before != nullptr);
        const kvp::SnapshotDiff d = kvp::diff_snapshots(before, now);
        std::vector<std::string> keys;
        for (const auto* list : {&d.added, &d.removed, &d.changed}) {
            keys.insert(keys.end(), list->begin(), list->end());
        }
        std::sort(keys.begin(), keys.end());
        changed.push_back(keys);
    });
    ASSERT_EQ(p.get("A"), "1");
    p.set("A", "through the pool");  // an own change: no load
    p.set("N", "new");
    ASSERT_EQ(changed.size(), 1u);
    write_file(pool(), encode_records({{"A", "1"}}));  // another process puts the first state back
    ASSERT_EQ(p.get("A"), "1");
    ASSERT_EQ(changed.size(), 2u);
    EXPECT_EQ(had_before, (std::vector<bool>{false, true}));
    EXPECT_EQ(changed[1], (Keys{"A", "N"}));
    p.set_load_listener(nullptr);
}

}  // namespace
