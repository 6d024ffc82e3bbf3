// PoolDirectory: refuses what is not a directory, maps the five pools to their files, lets
// only pool 1 be created by a change (by default), passes its lock timeout on.

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "pool_directory.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using kvptest::encode_records;
using kvptest::errno_of;
using kvptest::read_file;

class PoolDirectoryTest : public kvptest::PoolDirTest {};

TEST_F(PoolDirectoryTest, MissingDirectoryIsENOENT) {
    EXPECT_EQ(errno_of([&] { kvp::PoolDirectory d(dir() + "/missing", {}); }), ENOENT);
    EXPECT_EQ(errno_of([&] { kvp::PoolDirectory d(dir() + "/missing/deeper", {}); }), ENOENT);
}

TEST_F(PoolDirectoryTest, NonDirectoryIsENOTDIR) {
    const std::string file = dir() + "/plain-file";
    kvptest::write_file(file, "x");
    EXPECT_EQ(errno_of([&] { kvp::PoolDirectory d(file, {}); }), ENOTDIR);
}

TEST_F(PoolDirectoryTest, SymlinkToADirectoryIsAccepted) {
    const std::string link = dir() + "/link";
    const std::string target = dir() + "/real";
    ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
    ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
    EXPECT_EQ(errno_of([&] { kvp::PoolDirectory d(link, {}); }), 0);
}

TEST_F(PoolDirectoryTest, PoolsAreTheFiveFiles) {
    kvp::PoolDirectory d(dir(), {});
    EXPECT_EQ(d.directory(), boost::filesystem::path(dir()));
    for (int n = 0; n < 5; ++n) {
        const auto id = kvp::kAllPools.at(n);
        EXPECT_EQ(d.pool(id).path(), boost::filesystem::path(pool_path(n)));
        EXPECT_EQ(&d.pool(id), &d.pool(id)) << "one PoolFile per pool";
    }
}

TEST_F(PoolDirectoryTest, MissingPoolsAreEmptyAndOnlyPool1IsCreatedByAChange) {
    const mode_t old = ::umask(022);
    kvp::PoolDirectory d(dir(), {});
    for (const auto id : kvp::kAllPools) {
        EXPECT_TRUE(d.pool(id).list().empty());
        EXPECT_FALSE(d.pool(id).snapshot()->exists());
    }
    for (const auto id : {kvp::PoolId::external, kvp::PoolId::automatic, kvp::PoolId::parameter,
                          kvp::PoolId::internal}) {
        SCOPED_TRACE(std::string(kvp::pool_name(id)));
        EXPECT_EQ(errno_of([&] { d.pool(id).set("k", "v"); }), ENOENT);
        EXPECT_EQ(errno_of([&] { (void)d.pool(id).create_if_absent("k"); }), ENOENT);
    }
    EXPECT_TRUE(kvptest::dir_entries(dir()).empty()) << "no pool file but 1 may be created";
    d.pool(kvp::PoolId::guest).set("k", "v");
    ::umask(old);
    EXPECT_EQ(kvptest::dir_entries(dir()), std::vector<std::string>{".kvp_pool_1"});
    EXPECT_EQ(kvptest::stat_of(pool_path(1)).st_mode & 07777, 0644u);
    EXPECT_EQ(read_file(pool_path(1)), encode_records({{"k", "v"}}));
}

TEST_F(PoolDirectoryTest, CreateOnWriteCanBeTurnedOffForPool1) {
    kvp::DirectoryOptions options;
    options.create_on_write = {false, false, false, false, false};
    kvp::PoolDirectory d(dir(), options);
    EXPECT_EQ(errno_of([&] { d.pool(kvp::PoolId::guest).set("k", "v"); }), ENOENT);
    EXPECT_TRUE(kvptest::dir_entries(dir()).empty());
}

TEST_F(PoolDirectoryTest, ExistingPoolsOfEveryNumberCanBeChanged) {
    for (int n = 0; n < 5; ++n) {
        kvptest::write_file(pool_path(n), encode_records({{"n", std::to_string(n)}}));
    }
    kvp::PoolDirectory d(dir(), {});
    for (int n = 0; n < 5; ++n) {
        auto& p = d.pool(kvp::kAllPools.at(n));
        EXPECT_EQ(p.get("n"), std::to_string(n));
        p.set("n", "changed");
        EXPECT_EQ(read_file(pool_path(n)), encode_records({{"n", "changed"}}));
    }
}

TEST_F(PoolDirectoryTest, LockTimeoutIsPassedToThePools) {
    kvptest::write_file(pool_path(0), encode_records({{"k", "v"}}));
    kvp::DirectoryOptions options;
    options.lock_timeout = 200ms;
    kvp::PoolDirectory d(dir(), options);
    kvptest::LockHolder holder(pool_path(0), kvptest::LockKind::fcntl_write);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(errno_of([&] { d.pool(kvp::PoolId::external).set("k", "w"); }), EAGAIN);
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_GE(waited, 150ms);
    EXPECT_LT(waited, kvptest::scaled(3s)) << "the directory's lock_timeout was not used";
    EXPECT_EQ(holder.release(), 0);
}

}  // namespace
