// -o cache=all: key contents in the kernel's page cache and files without handles, with the
// rules that mode relaxes in their relaxed form (docs/behaviour.md, "-o cache=all"). The rest
// of its behaviour is checked by every mount test again (ctest label mount-cache-all).

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>

#include "mount_fixture.hpp"

namespace kvptest {
namespace {

using Recs = std::vector<Rec>;

// Another process's change shows within the window (these fixtures mount with a cache
// whatever the run's options are).
bool shown_within_window(const std::function<bool()>& shown) {
    return eventually(shown, kStalenessBound);
}

class CacheAllTest : public KvpfsTest {
  protected:
    void SetUp() override {
        if (!extra_mount_options().empty()) {
            GTEST_SKIP() << "mounts with its own cache option";
        }
        KvpfsTest::SetUp();
    }
    std::vector<std::string> daemon_options() const override { return {"-o", "cache=all"}; }

    // The mount's own changes, then another process putting back what was there before them:
    // the kernel must not keep what the mount's change showed it.
    void outside_change_back_to_before_an_own_change() {
        set_pool(1, {{"k", "old"}});
        ASSERT_TRUE(shown_within_window([&] { return cat("guest/k") == "old\n"; }));
        ASSERT_EQ(write_file("guest/k", "newer\n").err, 0);
        ASSERT_EQ(cat("guest/k"), "newer\n");
        set_pool(1, {{"k", "old"}});
        EXPECT_TRUE(shown_within_window([&] { return cat("guest/k") == "old\n"; }));
        ASSERT_EQ(::unlink(mnt("guest/k").c_str()), 0);
        ASSERT_EQ(stat_errno("guest/k"), ENOENT);
        set_pool(1, {{"k", "old"}});
        EXPECT_TRUE(shown_within_window([&] { return stat_errno("guest/k") == 0; }));
        ASSERT_EQ(write_file("guest/made", "m\n").err, 0);
        set_pool(1, {{"k", "old"}});
        EXPECT_TRUE(shown_within_window([&] { return stat_errno("guest/made") == ENOENT; }));
    }

    // A key removed by another process while the kernel still holds its entry: an open for
    // writing is answered ESTALE, the kernel looks the name up again, and O_CREAT creates it.
    void write_through_a_stale_entry() {
        for (int round = 0; round < 20; ++round) {
            SCOPED_TRACE("round " + std::to_string(round));
            set_pool(1, {{"k", "old"}});
            ASSERT_TRUE(shown_within_window([&] { return stat_errno("guest/k") == 0; }));
            set_pool(1, {{"other", "o"}});
            const IoResult r = write_file("guest/k", "again\n");
            ASSERT_EQ(r.err, 0) << r.step << "\n" << daemon_log();
            EXPECT_EQ(pool_recs(1), (Recs{{"other", "o"}, {"k", "again"}}));
        }
        // Each ESTALE was an answer the kernel acted on, not an error: no error line for it.
        EXPECT_EQ(daemon_log().find("Stale file handle"), std::string::npos) << daemon_log();
    }
};

class CacheNamesTest : public CacheAllTest {
  protected:
    std::vector<std::string> daemon_options() const override { return {"-o", "cache"}; }
};

// Runs open+read+close of `path` in a child; true if it read `want` within `limit` (its close
// may still wait).
bool read_in_child_within(const std::string& path, const std::string& want,
                          std::chrono::milliseconds limit, pid_t daemon) {
    int out[2];
    if (::pipe(out) != 0) {
        return false;
    }
    const pid_t child = ::fork();
    if (child == 0) {
        char buf[64];
        const int fd = ::open(path.c_str(), O_RDONLY);
        const ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf) : -1;
        if (n > 0) {
            (void)!::write(out[1], buf, static_cast<std::size_t>(n));
        }
        ::close(out[1]);
        if (fd >= 0) {
            ::close(fd);  // a FLUSH: waits for the daemon
        }
        ::_exit(n > 0 ? 0 : 1);
    }
    ::close(out[1]);
    std::string got;
    const auto end = std::chrono::steady_clock::now() + limit;
    while (got.size() < want.size() && std::chrono::steady_clock::now() < end) {
        struct pollfd p {
            out[0], POLLIN, 0
        };
        if (::poll(&p, 1, 5) == 1) {
            char buf[64];
            const ssize_t n = ::read(out[0], buf, sizeof buf);
            if (n <= 0) {
                break;
            }
            got.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::kill(daemon, SIGCONT);  // a child waiting for the daemon goes on now
    int status = 0;
    ::waitpid(child, &status, 0);
    ::close(out[0]);
    return got == want;
}

// Aborts the FUSE connection of the file system on `dev` (fusectl, mounted here if it is not):
// what a test that caught the daemon in a deadlock does, so the processes waiting on the mount
// (in D state, deaf to SIGKILL) and the fixture's teardown go on.
void abort_fuse_connection(dev_t dev) {
    const std::string dir = "/sys/fs/fuse/connections";
    const std::string abort = dir + "/" + std::to_string(minor(dev)) + "/abort";
    if (::access(abort.c_str(), W_OK) != 0) {
        (void)::mount("fusectl", dir.c_str(), "fusectl", 0, nullptr);
    }
    std::ofstream(abort) << "1\n";
}

// Waits up to `limit` for `child` to exit; past it aborts the mount's FUSE connection (the
// child hangs on a deadlocked daemon) and reaps the child. True if it exited by itself with 0.
bool exits_within(pid_t child, std::chrono::milliseconds limit, dev_t mount_dev) {
    const auto end = std::chrono::steady_clock::now() + limit;
    int status = 0;
    while (::waitpid(child, &status, WNOHANG) != child) {
        if (std::chrono::steady_clock::now() >= end) {
            abort_fuse_connection(mount_dev);
            ::kill(child, SIGKILL);
            ::waitpid(child, &status, 0);
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_F(CacheAllTest, AnOpenAndReadOfACachedKeyNeedNoDaemon) {
    // Written through the mount: an outside change would have the cache thread drop the
    // key's pages once more 100 ms later, possibly after the daemon is stopped below.
    ASSERT_EQ(write_file("guest/k", "cached\n").err, 0);
    // The first open is answered ENOSYS: from then on the kernel opens and reads the key on
    // its own. Its close still sends a FLUSH (which settles a writer's O_TRUNC, create and
    // errors), answered once the daemon runs again.
    ASSERT_EQ(cat("guest/k"), "cached\n");
    ASSERT_EQ(cat("guest/k"), "cached\n");
    ASSERT_EQ(::kill(daemon_pid(), SIGSTOP), 0);
    EXPECT_TRUE(read_in_child_within(mnt("guest/k"), "cached\n", std::chrono::milliseconds(2000),
                                     daemon_pid()))
        << "an open+read of a cached key waited for the (stopped) daemon";
    ASSERT_EQ(::kill(daemon_pid(), SIGCONT), 0);
}

TEST_F(CacheAllTest, OTruncShowsEmptyAtOnceAndReachesThePoolWithTheWrite) {
    set_pool(1, {{"k", "old"}, {"other", "o"}});
    ASSERT_EQ(cat("guest/k"), "old\n");
    // The mount shows the empty value once the open returns; the pool keeps the old one
    // until the write replaces it in one change.
    std::string before = pool_raw(1);
    int fd = ::open(mnt("guest/k").c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(cat("guest/k"), "\n");
    EXPECT_TRUE(pool_kept(1, before));
    ASSERT_EQ(::write(fd, "new\n", 4), 4);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "new"}, {"other", "o"}}));
    EXPECT_EQ(::close(fd), 0);
    EXPECT_EQ(cat("guest/k"), "new\n");
    // A refused first write leaves the old value, and the mount shows it again.
    before = pool_raw(1);
    fd = ::open(mnt("guest/k").c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(::write(fd, "a\0b", 3), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(::close(fd), -1);  // close answers the refused write's errno again
    EXPECT_EQ(errno, EINVAL);
    EXPECT_TRUE(pool_kept(1, before));
    EXPECT_TRUE(shown_within_window([&] { return cat("guest/k") == "new\n"; }));
    // `: > k`: nothing written; the empty value is in the pool when close returns, and at
    // once with an fsync.
    fd = ::open(mnt("guest/k").c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(pool_kept(1, before));
    EXPECT_EQ(::close(fd), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", ""}, {"other", "o"}}));
    EXPECT_EQ(cat("guest/k"), "\n");
    set_pool(1, {{"k", "again"}, {"other", "o"}});
    ASSERT_TRUE(shown_within_window([&] { return cat("guest/k") == "again\n"; }));
    fd = ::open(mnt("guest/k").c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(::fsync(fd), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", ""}, {"other", "o"}}));
    EXPECT_EQ(::close(fd), 0);
}

// No deadline: however long the truncating process holds the file without writing (here
// stopped), the pool keeps the old value; its write replaces it in one change.
TEST_F(CacheAllTest, AnOTruncHeldOpenByAStoppedWriterKeepsTheOldValue) {
    set_pool(1, {{"k", "old"}, {"other", "o"}});
    ASSERT_TRUE(shown_within_window([&] { return cat("guest/k") == "old\n"; }));
    const std::string before = pool_raw(1);
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const std::string path = mnt("guest/k");
    const pid_t child = ::fork();
    if (child == 0) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC);
        (void)!::write(ready[1], "r", 1);
        ::raise(SIGSTOP);
        ::_exit(fd >= 0 && ::write(fd, "new\n", 4) == 4 && ::close(fd) == 0 ? 0 : 1);
    }
    ::close(ready[1]);
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ::close(ready[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, WUNTRACED), child);
    ASSERT_TRUE(WIFSTOPPED(status));
    EXPECT_EQ(cat("guest/k"), "\n");  // the mount shows the O_TRUNC at once
    // Longer than any deadline the mode ever had, on a loaded machine.
    for (int i = 0; i < 10; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        EXPECT_TRUE(pool_kept(1, before)) << "after " << (i + 1) * 50 << " ms";
    }
    ASSERT_EQ(::kill(child, SIGCONT), 0);
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "new"}, {"other", "o"}}));
}

// A writer killed while it holds an O_TRUNC it never wrote closes the file as it exits: the
// empty value arrives then, not before.
TEST_F(CacheAllTest, AnOTruncReachesThePoolWhenItsProcessExits) {
    set_pool(1, {{"k", "old"}});
    ASSERT_TRUE(shown_within_window([&] { return cat("guest/k") == "old\n"; }));
    std::string out;
    // Opened as fd 3, kept as fd 4: the close of fd 3 is not the last.
    (void)run_program(
        {"bash", "-c", "exec 3> \"$1\"; exec 4>&3; exec 3>&-; kill -9 $$", "bash", mnt("guest/k")},
        &out);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", ""}}));
}

TEST_F(CacheAllTest, ATruncationWithNoWriteReachesThePoolAtTheClose) {
    for (int round = 0; round < 5; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        set_pool(1, {{"k", "old"}});
        ASSERT_TRUE(shown_within_window([&] { return cat("guest/k") == "old\n"; }));
        const int fd = ::open(mnt("guest/k").c_str(), O_WRONLY | O_TRUNC);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::close(fd), 0);
        EXPECT_EQ(pool_recs(1), (Recs{{"k", ""}})) << daemon_log();
        // The kernel drops its unused entries and inodes and sends FORGET for k: nothing
        // changes.
        const int drop = ::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
        ASSERT_GE(drop, 0);
        ASSERT_EQ(::write(drop, "2", 1), 1);
        ::close(drop);
        EXPECT_EQ(pool_recs(1), (Recs{{"k", ""}})) << daemon_log();
    }
}

TEST_F(CacheAllTest, ACreateOnlyReservesTheNameAndAnAppendStartsIt) {
    set_pool(1, {{"other", "o"}});
    const std::string before = pool_raw(1);
    const int fd = ::open(mnt("guest/new").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(pool_kept(1, before));
    EXPECT_EQ(stat_errno("guest/new"), 0);
    const std::string big(1100, 'b');
    EXPECT_EQ(::write(fd, big.data(), big.size()), -1);
    EXPECT_EQ(errno, EFBIG);
    EXPECT_EQ(::close(fd), -1);
    EXPECT_EQ(errno, EFBIG);
    EXPECT_TRUE(pool_kept(1, before));
    EXPECT_EQ(stat_errno("guest/new"), ENOENT);
    // `echo x >> new`: a create, then an append to its empty value: just the data.
    ASSERT_EQ(run_program({"sh", "-c",
                           "echo x >> " + mnt("guest/log") + " && echo y >> " + mnt("guest/log")}),
              0);
    EXPECT_EQ(cat("guest/log"), "x\ny\n");
    EXPECT_EQ(pool_recs(1).back(), (Rec{"log", "x\ny"}));
}

// A create only reserves the name and reads nothing back, so another process rewriting the
// pool meanwhile cannot make open(O_CREAT) fail with ENOENT (it did when the create stored the
// empty key and then looked it up).
TEST_F(CacheAllTest, ACreateNeverFailsWithEnoent) {
    set_pool(1, {{"other", "o"}});
    std::atomic<bool> stop{false};
    std::thread rewriter([&] {
        while (!stop) {
            set_pool(1, {{"other", "o"}});
        }
    });
    int enoent = 0;
    for (int i = 0; i < 300; ++i) {
        const IoResult r = write_file("guest/n" + std::to_string(i), "v\n");
        if (r.err == ENOENT) {
            ++enoent;
        } else {
            EXPECT_EQ(r.err, 0) << i << ": " << r.step;
        }
    }
    stop = true;
    rewriter.join();
    EXPECT_EQ(enoent, 0) << daemon_log();
}

TEST_F(CacheAllTest, ChangesOutsideGuestAreRefusedAtTheWriteOrTheTruncate) {
    set_pool(0, {{"Host", "data"}});
    const std::string before = pool_raw(0);
    ASSERT_EQ(cat("external/Host"), "data\n");  // opens are the kernel's own from here on
    const int fd = ::open(mnt("external/Host").c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0) << "root opens a 0444 file for writing; only the write is refused";
    EXPECT_EQ(::write(fd, "x\n", 2), -1);
    EXPECT_EQ(errno, EACCES);
    EXPECT_EQ(::close(fd), 0);
    EXPECT_EQ(::open(mnt("external/Host").c_str(), O_WRONLY | O_TRUNC), -1);
    EXPECT_EQ(errno, EACCES);
    EXPECT_EQ(pool_raw(0), before);
    EXPECT_EQ(cat("external/Host"), "data\n");
    EXPECT_NE(daemon_log().find("external/Host"), std::string::npos) << daemon_log();
}

TEST_F(CacheAllTest, AnOutsideChangeOfTheSameLengthReplacesTheCachedContents) {
    set_pool(1, {{"k", "aaaa"}});
    ASSERT_EQ(cat("guest/k"), "aaaa\n");
    ASSERT_EQ(cat("guest/k"), "aaaa\n");
    set_pool(1, {{"k", "bbbb"}});  // same size: only the invalidation can tell
    EXPECT_TRUE(shown_within_window([&] { return cat("guest/k") == "bbbb\n"; }));
}

TEST_F(CacheAllTest, WritesThroughTheMountAreReadBackAtOnce) {
    set_pool(1, {{"k", "one"}});
    ASSERT_EQ(cat("guest/k"), "one\n");
    for (const std::string v : {"two", "three", "x", "four!"}) {
        ASSERT_EQ(write_file("guest/k", v + "\n").err, 0);
        EXPECT_EQ(cat("guest/k"), v + "\n");
        struct stat st {};
        ASSERT_EQ(stat_errno("guest/k", &st), 0);
        EXPECT_EQ(st.st_size, static_cast<off_t>(v.size() + 1));
    }
    // Text mode: a write without its newline still reads back with one.
    ASSERT_EQ(write_file("guest/k", "bare").err, 0);
    EXPECT_EQ(cat("guest/k"), "bare\n");
    // An append placed at the value's real end, not where the kernel thought it was.
    const int fd = ::open(mnt("guest/k").c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    set_pool(1, {{"k", "longer value"}});
    ASSERT_TRUE(shown_within_window([&] { return cat("guest/k") == "longer value\n"; }));
    ASSERT_EQ(::write(fd, "+\n", 2), 2);
    ::close(fd);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "longer value\n+"}}));
    EXPECT_EQ(cat("guest/k"), "longer value\n+\n");
}

// A page dirtied through a shared mmap is written back before the kernel drops it, and the
// kernel holds every write-back of the inode while a truncate of it waits for its answer: the
// truncate must not wait for the page to go (it hung the truncating process and the daemon).
TEST_F(CacheAllTest, ATruncateOfAKeyWithPagesDirtiedThroughMmapAnswers) {
    set_pool(1, {{"k", "hello"}, {"other", "o"}});
    ASSERT_EQ(cat("guest/k"), "hello\n");
    struct stat mount_st {};
    ASSERT_EQ(::stat(mnt().c_str(), &mount_st), 0);
    const std::string path = mnt("guest/k");
    const pid_t child = ::fork();
    if (child == 0) {
        const int fd = ::open(path.c_str(), O_RDWR);
        void* map =
            fd >= 0 ? ::mmap(nullptr, 6, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
        if (map == MAP_FAILED) {
            ::_exit(2);
        }
        static_cast<char*>(map)[0] = 'J';
        const int rc = ::ftruncate(fd, 3);
        ::munmap(map, 6);
        ::close(fd);
        ::_exit(rc == 0 ? 0 : 1);
    }
    ASSERT_GT(child, 0);
    ASSERT_TRUE(exits_within(child, std::chrono::milliseconds(5000), mount_st.st_dev))
        << "ftruncate of a key with a dirty mapped page did not answer (or failed)";
    // The truncate is stored, and so is the mapped write when its page is written back (in
    // text mode the mapping holds the newline a read shows: it is cut with the value).
    std::string value;
    EXPECT_TRUE(shown_within_window([&] {
        const Recs recs = pool_recs(1);
        value = recs.size() == 2 ? recs[0].value : "?";
        return recs.size() == 2 && recs[1] == Rec{"other", "o"} &&
               (value == "hel" || value == "Jell") && cat("guest/k") == value + "\n";
    })) << value;
}

// install, rsync and tar create a file with one mode and chmod it to that mode (install -m
// 644 makes it 0600 first): without handles, the creating process's chmod to its create mode
// succeeds and changes nothing; any other chmod that would change the mode is still EPERM.
TEST_F(CacheAllTest, TheCreatorMayChmodANewKeyToItsCreateMode) {
    set_pool(1, {{"other", "o"}});
    const std::string src = base_dir() + "/src.txt";
    std::ofstream(src) << "line1\nline2\n";
    std::string out;
    ASSERT_EQ(run_program({"install", "-m", "644", src, mnt("guest/inst")}, &out), 0) << out;
    EXPECT_EQ(cat("guest/inst"), "line1\nline2\n");

    const std::string path = mnt("guest/new");
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(::fchmod(fd, 0600), 0) << std::strerror(errno);
    EXPECT_EQ(::fchmod(fd, 0700), -1);
    EXPECT_EQ(errno, EPERM);
    ::close(fd);
    const pid_t child = ::fork();
    if (child == 0) {
        ::_exit(::chmod(path.c_str(), 0600) == -1 && errno == EPERM ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "another process's chmod to a mode the key does not show was not EPERM";
    struct stat st {};
    ASSERT_EQ(stat_errno("guest/new", &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644U);
    EXPECT_EQ(pool_recs(1), (Recs{{"other", "o"}, {"inst", "line1\nline2"}, {"new", ""}}));
}

// The cache thread tells a change from a load by comparing it with what it knew of each key:
// a change made through the mount must count, or another process that puts back the value the
// thread saw before it (a same-value rewrite by the host) is never shown.
TEST_F(CacheAllTest, AnOutsideChangeBackToAValueSeenBeforeAWriteThroughTheMountIsShown) {
    set_pool(1, {{"k", "x"}, {"other", "o"}});
    ASSERT_TRUE(shown_within_window([&] { return cat("guest/k") == "x\n"; }));
    for (const int flags : {O_WRONLY | O_APPEND, O_WRONLY | O_TRUNC}) {
        ASSERT_EQ(write_file("guest/k", "through the mount\n", flags).err, 0);
        ASSERT_NE(cat("guest/k"), "x\n");
        set_pool(1, {{"k", "x"}, {"other", "o"}});
        EXPECT_TRUE(shown_within_window([&] { return cat("guest/k") == "x\n"; }))
            << "flags " << flags << ": " << cat("guest/k");
        struct stat st {};
        EXPECT_EQ(stat_errno("guest/k", &st), 0);
        EXPECT_EQ(st.st_size, 2);
    }
    // The same for a key removed through the mount and made again outside with its value.
    ASSERT_EQ(::unlink(mnt("guest/k").c_str()), 0);
    set_pool(1, {{"k", "x"}, {"other", "o"}});
    EXPECT_TRUE(shown_within_window([&] { return read_errno("guest/k") == 0; }));
    EXPECT_TRUE(shown_within_window([&] { return list("guest").size() == 2; }));
}

TEST_F(CacheAllTest, AWriteThroughAStaleEntryOfARemovedKeyCreatesIt) {
    write_through_a_stale_entry();
}

TEST_F(CacheAllTest, AnOutsideChangeBackToTheStateBeforeAnOwnChangeShows) {
    outside_change_back_to_before_an_own_change();
}

TEST_F(CacheNamesTest, AnOutsideChangeBackToTheStateBeforeAnOwnChangeShows) {
    outside_change_back_to_before_an_own_change();
}

TEST_F(CacheNamesTest, AWriteThroughAStaleEntryOfARemovedKeyCreatesIt) {
    write_through_a_stale_entry();
}

}  // namespace
}  // namespace kvptest
