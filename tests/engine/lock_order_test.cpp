// The lock-order check (src/base/lock_rank.hpp): in a checking build a lock taken while the
// thread holds one of the same or a later rank aborts, naming both; in order, nothing happens.
#include <gtest/gtest.h>

#include <mutex>
#include <shared_mutex>

#include "ranked_mutex.hpp"

namespace {

using kvp::LockRank;

TEST(LockOrderTest, LocksTakenInOrderPass) {
    kvp::RankedMutex outer(LockRank::pool_file);
    kvp::RankedMutex inner(LockRank::log_rate_limit);
    kvp::RankedSharedMutex names(LockRank::writer_names);
    const std::shared_lock shared(names);
    const std::lock_guard a(outer);
    const std::lock_guard b(inner);
    SUCCEED();
}

TEST(LockOrderTest, ReleasedLocksNoLongerCount) {
    kvp::RankedMutex later(LockRank::log_rate_limit);
    kvp::RankedMutex earlier(LockRank::pool_file);
    { const std::lock_guard a(later); }
    const std::lock_guard b(earlier);  // `later` was released: no order to break
    SUCCEED();
}

TEST(LockOrderTest, TryLockIsNotCheckedButCountsAsHeld) {
    if (!kvp::lock_order::kChecked) {
        GTEST_SKIP() << "built without KVPFS_CHECK_LOCK_ORDER";
    }
    kvp::RankedMutex later(LockRank::log_rate_limit);
    kvp::RankedMutex earlier(LockRank::pool_file);
    const std::unique_lock a(later);
    std::unique_lock b(earlier, std::try_to_lock);  // a try-lock cannot deadlock
    ASSERT_TRUE(b.owns_lock());
    kvp::RankedMutex between(LockRank::inode_table);
    EXPECT_DEATH({ const std::lock_guard c(between); }, "taking inode_table while holding");
}

TEST(LockOrderTest, ALockTakenOutOfOrderAborts) {
    if (!kvp::lock_order::kChecked) {
        GTEST_SKIP() << "built without KVPFS_CHECK_LOCK_ORDER";
    }
    kvp::RankedMutex later(LockRank::log_rate_limit);
    kvp::RankedMutex earlier(LockRank::pool_file);
    EXPECT_DEATH(
        {
            const std::lock_guard a(later);
            const std::lock_guard b(earlier);
        },
        "lock order broken: taking pool_file while holding log_rate_limit");
}

TEST(LockOrderTest, TwoLocksOfOneRankAbort) {
    if (!kvp::lock_order::kChecked) {
        GTEST_SKIP() << "built without KVPFS_CHECK_LOCK_ORDER";
    }
    kvp::RankedMutex one(LockRank::pool_file);
    kvp::RankedMutex two(LockRank::pool_file);
    EXPECT_DEATH(
        {
            const std::lock_guard a(one);
            const std::lock_guard b(two);
        },
        "taking pool_file while holding pool_file");
}

TEST(LockOrderTest, AHeldFileLockRankCounts) {
    if (!kvp::lock_order::kChecked) {
        GTEST_SKIP() << "built without KVPFS_CHECK_LOCK_ORDER";
    }
    kvp::RankedMutex pool(LockRank::pool_file);
    EXPECT_DEATH(
        {
            const std::lock_guard a(pool);
            const kvp::HeldRank file_lock(LockRank::pool_file_lock);
        },
        "taking pool_file_lock while holding pool_file");
}

}  // namespace
