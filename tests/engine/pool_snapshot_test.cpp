// PoolSnapshot built directly: first-record index, listing without empty keys, sizes.

#include <string>
#include <vector>

#include "pool_snapshot.hpp"
#include "test_support.hpp"

namespace {

kvp::SnapshotRecord rec(const std::string& k, const std::string& v, long sec = 0) {
    return kvp::SnapshotRecord{kvp::Record{k, v}, timespec{sec, 0}};
}

TEST(PoolSnapshot, DefaultIsAMissingEmptyPool) {
    const kvp::PoolSnapshot s;
    EXPECT_FALSE(s.exists());
    EXPECT_TRUE(s.records().empty());
    EXPECT_TRUE(s.listing().empty());
    EXPECT_EQ(s.key_count(), 0u);
    EXPECT_EQ(s.find("k"), nullptr);
    EXPECT_FALSE(s.partial_tail());
}

TEST(PoolSnapshot, IndexesFirstRecordsAndSkipsEmptyKeys) {
    const kvp::PoolSnapshot s({rec("b", "1", 1), rec("", "e"), rec("a", "2", 2), rec("b", "3", 3),
                               rec("", "f"), rec("c", "4", 4)},
                              true, 6 * kvptest::kRecord + 10, timespec{99, 5}, 7);
    EXPECT_TRUE(s.exists());
    EXPECT_EQ(s.records().size(), 6u);
    EXPECT_EQ(s.listing(), (std::vector<std::size_t>{0, 2, 5}));
    EXPECT_EQ(s.key_count(), 3u);
    ASSERT_NE(s.find("b"), nullptr);
    EXPECT_EQ(s.find("b")->record.value, "1");
    EXPECT_EQ(s.find("b")->changed_at.tv_sec, 1);
    EXPECT_EQ(s.find(""), nullptr) << "empty keys are never found";
    EXPECT_EQ(s.find("d"), nullptr);
    EXPECT_TRUE(s.partial_tail());
    EXPECT_EQ(s.file_size(), 6 * kvptest::kRecord + 10);
    EXPECT_EQ(s.mtime().tv_sec, 99);
    EXPECT_EQ(s.mtime().tv_nsec, 5);
    EXPECT_EQ(s.generation(), 7u);
}

TEST(PoolSnapshot, CopyIsIndependent) {
    const kvp::PoolSnapshot s({rec("a", "1"), rec("b", "2")}, true, 2 * kvptest::kRecord, {}, 1);
    const kvp::PoolSnapshot c(s);
    EXPECT_EQ(c.listing(), s.listing());
    ASSERT_NE(c.find("b"), nullptr);
    EXPECT_EQ(c.find("b"), &c.records()[1]) << "the copy's index points into the copy";
}

}  // namespace
