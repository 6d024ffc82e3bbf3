// ChangeWatch on its own: a fresh watch reports "maybe changed"; after a load (begin_load,
// then mark_loaded) nothing is pending; any change to the watched file (content, attributes,
// creation, removal, replacement) is reported; changes to other files in the directory are not.

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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
    kvptest::write_file(pool(), kvptest::encode_record("k", "v"));
    kvp::ChangeWatch w(dir(), ".kvp_pool_1");
    EXPECT_TRUE(w.using_inotify());
    EXPECT_TRUE(w.maybe_changed()) << "nothing was loaded yet";
    loaded(w);
    EXPECT_FALSE(w.maybe_changed());
    EXPECT_FALSE(w.maybe_changed());
}

TEST_F(ChangeWatchTest, SameSizeSameMtimeWriteIsReported) {
    kvptest::write_file(pool(), kvptest::encode_record("k", "aaaa"));
    kvp::ChangeWatch w(dir(), ".kvp_pool_1");
    loaded(w);
    for (int i = 0; i < 100; ++i) {
        const struct stat before = kvptest::stat_of(pool());
        const int fd = ::open(pool().c_str(), O_WRONLY | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::pwrite(fd, i % 2 == 0 ? "bbbb" : "aaaa", 4, kvptest::kKeyField), 4);
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
    kvptest::write_file(pool(), kvptest::encode_record("k", "v"));
    EXPECT_TRUE(w.maybe_changed()) << "creation";
    loaded(w);
    ASSERT_EQ(::chmod(pool().c_str(), 0600), 0);
    EXPECT_TRUE(w.maybe_changed()) << "attributes";
    loaded(w);
    const std::string tmp = dir() + "/tmp";
    kvptest::write_file(tmp, kvptest::encode_record("k", "w"));
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
    kvptest::write_file(pool(), kvptest::encode_record("k", "v"));
    kvp::ChangeWatch w(dir(), ".kvp_pool_1");
    loaded(w);
    kvptest::write_file(pool_path(0), kvptest::encode_record("x", "y"));
    kvptest::write_file(pool_path(2), kvptest::encode_record("x", "y"));
    kvptest::write_file(dir() + "/.kvp_pool_1.bak", "z");
    kvptest::write_file(dir() + "/.kvp_pool_10", "z");
    ASSERT_EQ(::unlink(pool_path(0).c_str()), 0);
    EXPECT_FALSE(w.maybe_changed());
}

TEST_F(ChangeWatchTest, AWriteDuringTheLoadStaysPending) {
    kvptest::write_file(pool(), kvptest::encode_record("k", "v"));
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
    kvptest::write_file(sub + "/.kvp_pool_1", kvptest::encode_record("k", "v"));
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
    kvptest::write_file(sub + "/.kvp_pool_1", kvptest::encode_record("k", "w"));
    EXPECT_TRUE(w.maybe_changed()) << "a file created in the new directory";
    w.begin_load();
    const struct stat created = kvptest::stat_of(sub + "/.kvp_pool_1");
    w.mark_loaded(&created);
    kvptest::write_file(dir() + "/pools.old/.kvp_pool_1", kvptest::encode_record("k", "x"));
    EXPECT_FALSE(w.maybe_changed()) << "the old directory is no longer watched";
}

// Loads whatever the path names now: the file's state, or "no file".
void load_now(kvp::ChangeWatch& w, const std::string& file) {
    w.begin_load();
    if (kvptest::exists(file)) {
        const struct stat st = kvptest::stat_of(file);
        w.mark_loaded(&st);
    } else {
        w.mark_loaded(nullptr);
    }
}

TEST_F(ChangeWatchTest, AnAbsolutePlainPathIsFollowedByEventsNotByStat) {
    kvp::ChangeWatch w(dir(), ".kvp_pool_1");
    ASSERT_EQ(dir().front(), '/');
    EXPECT_TRUE(w.following_by_events());
    kvp::ChangeWatch relative(".", ".kvp_pool_1");
    EXPECT_FALSE(relative.following_by_events()) << "a relative path is stat()ed every look";
}

TEST_F(ChangeWatchTest, ADirectoryAboveRenamedAwayAndReplacedIsFollowed) {
    const std::string above = dir() + "/above";
    const std::string sub = above + "/pools";
    const std::string file = sub + "/.kvp_pool_1";
    ASSERT_EQ(::mkdir(above.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
    kvptest::write_file(file, kvptest::encode_record("k", "v"));
    kvp::ChangeWatch w(sub, ".kvp_pool_1");
    load_now(w, file);
    ASSERT_FALSE(w.maybe_changed());
    ASSERT_TRUE(w.following_by_events());
    // Only the directory above moves: the pool directory itself sends no event it watches for.
    ASSERT_EQ(::rename(above.c_str(), (dir() + "/above.old").c_str()), 0);
    ASSERT_EQ(::mkdir(above.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
    EXPECT_TRUE(w.maybe_changed()) << "the path leads to another directory";
    load_now(w, file);
    EXPECT_FALSE(w.maybe_changed());
    EXPECT_TRUE(w.following_by_events()) << "the new path is watched again";
    kvptest::write_file(file, kvptest::encode_record("k", "w"));
    EXPECT_TRUE(w.maybe_changed()) << "a file created in the new directory";
    load_now(w, file);
    kvptest::write_file(dir() + "/above.old/pools/.kvp_pool_1", kvptest::encode_record("k", "x"));
    EXPECT_FALSE(w.maybe_changed()) << "the old directory is no longer watched";
}

TEST_F(ChangeWatchTest, AMountOverADirectoryAboveIsFollowedAndSoIsItsUnmount) {
    const std::string above = dir() + "/above";
    const std::string sub = above + "/pools";
    const std::string file = sub + "/.kvp_pool_1";
    ASSERT_EQ(::mkdir(above.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
    kvptest::write_file(file, kvptest::encode_record("k", "v"));
    kvp::ChangeWatch w(sub, ".kvp_pool_1");
    load_now(w, file);
    ASSERT_FALSE(w.maybe_changed());
    if (::mount("tmpfs", above.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m") != 0) {
        GTEST_SKIP() << "cannot mount tmpfs here (" << std::strerror(errno) << "): needs root";
    }
    struct Unmount {
        std::string path;
        ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
    } unmount{above};
    EXPECT_TRUE(w.maybe_changed()) << "a mount over a directory above sends no inotify event";
    load_now(w, file);
    EXPECT_FALSE(w.maybe_changed());
    ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
    kvptest::write_file(file, kvptest::encode_record("k", "mounted"));
    EXPECT_TRUE(w.maybe_changed()) << "the directory made in the mounted file system";
    load_now(w, file);
    EXPECT_FALSE(w.maybe_changed());
    ASSERT_EQ(::umount2(above.c_str(), 0), 0);
    unmount.path.clear();
    EXPECT_TRUE(w.maybe_changed()) << "the unmount uncovered the first directory";
    load_now(w, file);
    EXPECT_FALSE(w.maybe_changed());
    EXPECT_TRUE(w.following_by_events());
}

TEST_F(ChangeWatchTest, ASymbolicLinkOnThePathIsFollowedByEventsWhenSwapped) {
    const std::string a = dir() + "/a";
    const std::string b = dir() + "/b";
    const std::string link = dir() + "/link";
    ASSERT_EQ(::mkdir(a.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(b.c_str(), 0755), 0);
    kvptest::write_file(a + "/.kvp_pool_1", kvptest::encode_record("k", "a"));
    kvptest::write_file(b + "/.kvp_pool_1", kvptest::encode_record("k", "b"));
    ASSERT_EQ(::symlink("a", link.c_str()), 0);
    kvp::ChangeWatch w(link, ".kvp_pool_1");
    // The link's directory reports the link replaced: no stat of the directory at each look.
    EXPECT_TRUE(w.following_by_events());
    load_now(w, link + "/.kvp_pool_1");
    ASSERT_FALSE(w.maybe_changed());
    const std::string tmp = dir() + "/link.new";
    ASSERT_EQ(::symlink("b", tmp.c_str()), 0);
    ASSERT_EQ(::rename(tmp.c_str(), link.c_str()), 0);  // what `ln -sfn b link` does
    EXPECT_TRUE(w.maybe_changed()) << "the link now leads to another directory";
    load_now(w, link + "/.kvp_pool_1");
    EXPECT_FALSE(w.maybe_changed());
    EXPECT_TRUE(w.following_by_events()) << "the new path is watched again";
    kvptest::write_file(b + "/.kvp_pool_1", kvptest::encode_record("k", "b2"));
    EXPECT_TRUE(w.maybe_changed()) << "a write in the directory the link leads to now";
    load_now(w, link + "/.kvp_pool_1");
    kvptest::write_file(a + "/.kvp_pool_1", kvptest::encode_record("k", "a2"));
    EXPECT_FALSE(w.maybe_changed()) << "the old directory is no longer watched";
}

// A link to a link, a relative target with "..": resolved as the kernel does, and the swap of
// the inner link is heard too.
TEST_F(ChangeWatchTest, ALinkToALinkWithDotDotIsFollowedByEvents) {
    const std::string a = dir() + "/real/a";
    const std::string b = dir() + "/real/b";
    ASSERT_EQ(::mkdir((dir() + "/real").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(a.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(b.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((dir() + "/links").c_str(), 0755), 0);
    kvptest::write_file(a + "/.kvp_pool_1", kvptest::encode_record("k", "a"));
    kvptest::write_file(b + "/.kvp_pool_1", kvptest::encode_record("k", "b"));
    const std::string inner = dir() + "/links/inner";
    ASSERT_EQ(::symlink("../real/a", inner.c_str()), 0);
    const std::string outer = dir() + "/outer";
    ASSERT_EQ(::symlink("links/inner", outer.c_str()), 0);
    kvp::ChangeWatch w(outer, ".kvp_pool_1");
    EXPECT_TRUE(w.following_by_events());
    load_now(w, outer + "/.kvp_pool_1");
    ASSERT_FALSE(w.maybe_changed());
    const std::string tmp = dir() + "/links/inner.new";
    ASSERT_EQ(::symlink("../real/b", tmp.c_str()), 0);
    ASSERT_EQ(::rename(tmp.c_str(), inner.c_str()), 0);
    EXPECT_TRUE(w.maybe_changed()) << "the inner link now leads to another directory";
    load_now(w, outer + "/.kvp_pool_1");
    EXPECT_FALSE(w.maybe_changed());
    EXPECT_TRUE(w.following_by_events());
}

}  // namespace
