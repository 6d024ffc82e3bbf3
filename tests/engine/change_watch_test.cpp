// ChangeWatch on its own: a fresh watch reports "maybe changed"; after a load (begin_load,
// then mark_loaded) nothing is pending; any change to the watched file (content, attributes,
// creation, removal, replacement) is reported; changes to other files in the directory are not.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "change_watch.hpp"
#include "test_support.hpp"

namespace {

class ChangeWatchTest : public kvptest::PoolDirTest {
  protected:
    // A load: events drained first, then the file read and its state recorded.
    void loaded(kvp::ChangeWatch& w) {
        w.begin_load();
        if (kvptest::exists(pool())) {
            const struct stat st = kvptest::stat_of(pool());
            w.mark_loaded(&st);
        } else {
            w.mark_loaded(nullptr);
        }
    }
};

TEST_F(ChangeWatchTest, UsesInotifyAndStartsDirty) {
    kvptest::write_file(pool(), kvptest::raw_record("k", "v"));
    kvp::ChangeWatch w(dir(), ".kvp_pool_1");
    EXPECT_TRUE(w.using_inotify());
    EXPECT_TRUE(w.maybe_changed()) << "nothing was loaded yet";
    loaded(w);
    EXPECT_FALSE(w.maybe_changed());
    EXPECT_FALSE(w.maybe_changed());
}

TEST_F(ChangeWatchTest, SameSizeSameMtimeWriteIsReported) {
    kvptest::write_file(pool(), kvptest::raw_record("k", "aaaa"));
    kvp::ChangeWatch w(dir(), ".kvp_pool_1");
    loaded(w);
    for (int i = 0; i < 100; ++i) {
        const struct stat before = kvptest::stat_of(pool());
        const int fd = ::open(pool().c_str(), O_WRONLY | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::pwrite(fd, i % 2 == 0 ? "bbbb" : "aaaa", 4, kvptest::kKey), 4);
        const struct timespec times[2] = {before.st_atim, before.st_mtim};
        ASSERT_EQ(::futimens(fd, times), 0);
        ::close(fd);
        ASSERT_TRUE(w.maybe_changed()) << "round " << i;
        // Still pending until the next load.
        ASSERT_TRUE(w.maybe_changed());
        loaded(w);
        ASSERT_FALSE(w.maybe_changed());
    }
}

TEST_F(ChangeWatchTest, CreationRemovalAndReplacementAreReported) {
    kvp::ChangeWatch w(dir(), ".kvp_pool_1");
    loaded(w);
    EXPECT_FALSE(w.maybe_changed());
    kvptest::write_file(pool(), kvptest::raw_record("k", "v"));
    EXPECT_TRUE(w.maybe_changed()) << "creation";
    loaded(w);
    ASSERT_EQ(::chmod(pool().c_str(), 0600), 0);
    EXPECT_TRUE(w.maybe_changed()) << "attributes";
    loaded(w);
    const std::string tmp = dir() + "/tmp";
    kvptest::write_file(tmp, kvptest::raw_record("k", "w"));
    loaded(w);  // the temporary file's own events are not about the pool
    ASSERT_EQ(::rename(tmp.c_str(), pool().c_str()), 0);
    EXPECT_TRUE(w.maybe_changed()) << "replacement by rename";
    loaded(w);
    ASSERT_EQ(::truncate(pool().c_str(), 0), 0);
    EXPECT_TRUE(w.maybe_changed()) << "truncation";
    loaded(w);
    ASSERT_EQ(::unlink(pool().c_str()), 0);
    EXPECT_TRUE(w.maybe_changed()) << "removal";
    loaded(w);
    EXPECT_FALSE(w.maybe_changed());
}

TEST_F(ChangeWatchTest, OtherFilesOfTheDirectoryAreIgnored) {
    kvptest::write_file(pool(), kvptest::raw_record("k", "v"));
    kvp::ChangeWatch w(dir(), ".kvp_pool_1");
    loaded(w);
    kvptest::write_file(pool_path(0), kvptest::raw_record("x", "y"));
    kvptest::write_file(pool_path(2), kvptest::raw_record("x", "y"));
    kvptest::write_file(dir() + "/.kvp_pool_1.bak", "z");
    kvptest::write_file(dir() + "/.kvp_pool_10", "z");
    ASSERT_EQ(::unlink(pool_path(0).c_str()), 0);
    EXPECT_FALSE(w.maybe_changed());
}

TEST_F(ChangeWatchTest, AWriteDuringTheLoadStaysPending) {
    kvptest::write_file(pool(), kvptest::raw_record("k", "v"));
    kvp::ChangeWatch w(dir(), ".kvp_pool_1");
    loaded(w);
    // A writer that takes no lock truncates the file while it is being read: its event came
    // after begin_load, so the picture just read may be stale and must not count as current.
    w.begin_load();
    const int fd = ::open(pool().c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ::close(fd);
    const struct stat st = kvptest::stat_of(pool());
    w.mark_loaded(&st);
    EXPECT_TRUE(w.maybe_changed()) << "a change made during the load was taken as seen";
}

TEST_F(ChangeWatchTest, TheWatchFollowsTheDirectoryByItsPath) {
    const std::string sub = dir() + "/pools";
    ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
    kvptest::write_file(sub + "/.kvp_pool_1", kvptest::raw_record("k", "v"));
    kvp::ChangeWatch w(sub, ".kvp_pool_1");
    w.begin_load();
    const struct stat st = kvptest::stat_of(sub + "/.kvp_pool_1");
    w.mark_loaded(&st);
    ASSERT_FALSE(w.maybe_changed());
    ASSERT_EQ(::rename(sub.c_str(), (dir() + "/pools.old").c_str()), 0);
    ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
    EXPECT_TRUE(w.maybe_changed()) << "the directory was replaced";
    w.begin_load();
    w.mark_loaded(nullptr);
    EXPECT_FALSE(w.maybe_changed());
    EXPECT_TRUE(w.using_inotify()) << "the new directory is watched";
    kvptest::write_file(sub + "/.kvp_pool_1", kvptest::raw_record("k", "w"));
    EXPECT_TRUE(w.maybe_changed()) << "a file created in the new directory";
    kvptest::write_file(dir() + "/pools.old/.kvp_pool_1", kvptest::raw_record("k", "x"));
    w.begin_load();
    EXPECT_FALSE(w.maybe_changed()) << "the old directory is no longer watched";
}

}  // namespace
