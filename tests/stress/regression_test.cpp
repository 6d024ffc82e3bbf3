// Regression tests for what the fuzzers found (tests/fuzz/regressions/ holds the inputs).
// They drive the engine directly on a tmpfs pool and check the bytes with this directory's
// own decoder.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "pool_file.hpp"
#include "stress_support.hpp"

namespace kvpstress {
namespace {

class EngineRegression : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/dev/shm/kvpregress.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    [[nodiscard]] std::string path() const { return dir_ + "/.kvp_pool_1"; }
    std::string dir_;
};

// fuzz_pool_ops, regressions/fuzz_pool_ops/remove-key-with-duplicates-loses-other-key:
// removing a key with two records from [b, b, %] must leave [%]. PoolFile::Editor::remove
// fills the holes highest first, but takes the record to move from the snapshot as it was
// before the first move: the second hole gets the stale (deleted) record at the old last
// index instead of the record that was moved there, and the truncation then drops that.
TEST_F(EngineRegression, RemovingAKeyWithDuplicatesKeepsTheOtherKeys) {
    write_file(path(), encode_record("b", "first") + encode_record("b", "second") +
                           encode_record("%", "keep me"));
    kvp::PoolFile pool(path(), kvp::PoolOptions{});
    EXPECT_TRUE(pool.remove("b"));
    const auto recs = decode_records(read_file(path()));
    ASSERT_EQ(recs.size(), 1U) << "pool: " << printable(read_file(path()), 0);
    EXPECT_EQ(recs[0], (Rec{"%", "keep me"}));
    EXPECT_EQ(pool.get("%"), "keep me");
    EXPECT_EQ(pool.get("b"), std::nullopt);
}

// The same fill order on set(): three records of a, then c. Setting a rewrites the first
// and removes the two later ones; c must survive.
TEST_F(EngineRegression, SettingAKeyWithTwoDuplicatesKeepsTheOtherKeys) {
    write_file(path(), encode_record("a", "1") + encode_record("a", "2") + encode_record("a", "3") +
                           encode_record("c", "keep me"));
    kvp::PoolFile pool(path(), kvp::PoolOptions{});
    pool.set("a", "new");
    const auto recs = decode_records(read_file(path()));
    ASSERT_EQ(recs.size(), 2U);
    EXPECT_EQ(recs[0], (Rec{"a", "new"}));
    EXPECT_EQ(recs[1], (Rec{"c", "keep me"}));
}

// compact() drops duplicates the same way.
TEST_F(EngineRegression, CompactingTwoDuplicatesKeepsTheOtherKeys) {
    write_file(path(), encode_record("a", "1") + encode_record("a", "2") + encode_record("a", "3") +
                           encode_record("c", "keep me"));
    kvp::PoolFile pool(path(), kvp::PoolOptions{});
    EXPECT_EQ(pool.compact(), 2U);
    const auto recs = decode_records(read_file(path()));
    ASSERT_EQ(recs.size(), 2U);
    EXPECT_EQ(recs[0], (Rec{"a", "1"}));
    EXPECT_EQ(recs[1], (Rec{"c", "keep me"}));
}

// fuzz_pool_ops, regressions/fuzz_pool_ops/remove-reorders-duplicates-of-another-key:
// [a, y="first", y="second"]; removing a moves the last record (the later duplicate of y)
// into a's hole, ahead of y's first record, so y then reads "second": `rm guest/a` changes
// what `cat guest/y` shows. docs/behaviour.md §2 says both "the first record (lowest offset) is the
// one read" and "Delete = move the file's last record into the hole": with duplicates the
// two collide, and "nothing else is ever rewritten that the operation did not ask for".
TEST_F(EngineRegression, RemovingAKeyDoesNotChangeWhatAnotherKeyReads) {
    write_file(path(), encode_record("a", "1") + encode_record("y", "first") +
                           encode_record("y", "second"));
    kvp::PoolFile pool(path(), kvp::PoolOptions{});
    EXPECT_EQ(pool.get("y"), "first");
    EXPECT_TRUE(pool.remove("a"));
    EXPECT_EQ(pool.get("y"), "first");
    const auto recs = decode_records(read_file(path()));
    ASSERT_FALSE(recs.empty());
    const auto first_y =
        std::find_if(recs.begin(), recs.end(), [](const Rec& r) { return r.key == "y"; });
    ASSERT_NE(first_y, recs.end());
    EXPECT_EQ(first_y->value, "first") << "the first record of y in the file";
}

}  // namespace
}  // namespace kvpstress
