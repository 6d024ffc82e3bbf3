// The change path against a world that does not hold still (docs/behaviour.md §3): the pool
// directory replaced under a PoolFile, the pool file replaced while a change waits for its
// lock, and lock waits that must not add up or hold up reads of the cache.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pool_file.hpp"
#include "test_support.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using kvptest::decode_records;
using kvptest::encode_records;
using kvptest::read_file;
using kvptest::write_file;
using Records = std::vector<kvptest::Rec>;

class ChangePathTest : public kvptest::PoolDirTest {
  protected:
    // `replace` changes the name while the read waits; returns what list() shows afterwards.
    std::vector<std::string> list_after_a_waiting_read(
        const std::function<void(const std::string& pool)>& replace);
    [[nodiscard]] std::string sub() const { return dir() + "/pools"; }
    [[nodiscard]] std::string sub_pool() const { return sub() + "/.kvp_pool_1"; }
    static kvp::PoolOptions options(std::chrono::steady_clock::duration timeout) {
        kvp::PoolOptions o;
        o.lock_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
        o.create_on_write = true;
        return o;
    }
};

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

using kvptest::descriptors_on;

// Waits (bounded) until this process has a descriptor open on `path` (the lock holder is
// another process).
void wait_for_waiter(const std::string& path) {
    ASSERT_TRUE(kvptest::eventually([&] { return descriptors_on(path) >= 1; }))
        << "the change never opened the file";
}

TEST_F(ChangePathTest, ARemovedAndRemadeDirectoryIsFollowedByItsPath) {
    ASSERT_EQ(::mkdir(sub().c_str(), 0755), 0);
    write_file(sub_pool(), encode_records({{"Old", "1"}}));
    kvp::PoolFile pf(sub_pool(), options(kvptest::scaled(std::chrono::milliseconds(1000))));
    ASSERT_EQ(pf.list(), std::vector<std::string>{"Old"});

    std::filesystem::remove_all(sub());
    ASSERT_EQ(::mkdir(sub().c_str(), 0755), 0);
    EXPECT_TRUE(pf.list().empty()) << "the removed directory's pool is still shown";
    write_file(sub_pool(), encode_records({{"HostKey", "precious"}}));
    EXPECT_EQ(pf.list(), std::vector<std::string>{"HostKey"});
    pf.set("New", "mine");
    EXPECT_EQ(decode_records(read_file(sub_pool())),
              (Records{{"HostKey", "precious"}, {"New", "mine"}}));
    // The watch moved to the new directory: a same-size rewrite in the same tick shows.
    write_file(sub_pool(), encode_records({{"HostKey", "precioux"}, {"New", "mine"}}));
    EXPECT_EQ(pf.get("HostKey"), "precioux");
}

TEST_F(ChangePathTest, ADirectoryRenamedAwayAndReplacedIsFollowedByItsPath) {
    ASSERT_EQ(::mkdir(sub().c_str(), 0755), 0);
    write_file(sub_pool(), encode_records({{"Old", "1"}}));
    kvp::PoolFile pf(sub_pool(), options(kvptest::scaled(std::chrono::milliseconds(1000))));
    ASSERT_EQ(pf.list(), std::vector<std::string>{"Old"});

    ASSERT_EQ(::rename(sub().c_str(), (dir() + "/pools.old").c_str()), 0);
    ASSERT_EQ(::mkdir(sub().c_str(), 0755), 0);
    write_file(sub_pool(), encode_records({{"HostKey", "precious"}}));
    EXPECT_EQ(pf.list(), std::vector<std::string>{"HostKey"});
    pf.set("New", "mine");
    EXPECT_EQ(decode_records(read_file(sub_pool())),
              (Records{{"HostKey", "precious"}, {"New", "mine"}}));
    EXPECT_EQ(decode_records(read_file(dir() + "/pools.old/.kvp_pool_1")), (Records{{"Old", "1"}}));
}

TEST_F(ChangePathTest, AChangeWaitingForTheLockLandsInTheFileThePathNamesWhenItGetsIt) {
    write_file(pool(), encode_records({{"Old", "1"}}));
    kvp::PoolFile pf(pool(), options(kvptest::scaled(std::chrono::milliseconds(5000))));
    (void)pf.snapshot();
    auto holder = std::make_unique<kvptest::LockHolder>(pool(), kvptest::LockKind::flock_exclusive);
    auto change = std::async(std::launch::async, [&] { pf.set("New", "mine"); });
    wait_for_waiter(pool());
    // While the change waits, the file is replaced by rename (as a tool that rewrites it would).
    const std::string replacement = dir() + "/replacement";
    write_file(replacement, encode_records({{"HostKey", "precious"}}));
    ASSERT_EQ(::rename(replacement.c_str(), pool().c_str()), 0);
    EXPECT_EQ(holder->release(), 0);
    change.get();
    EXPECT_EQ(decode_records(read_file(pool())),
              (Records{{"HostKey", "precious"}, {"New", "mine"}}));
}

TEST_F(ChangePathTest, AReplacementAnotherReaderLoadedMeanwhileIsStillFound) {
    write_file(pool(), encode_records({{"Old", "1"}}));
    kvp::PoolFile pf(pool(), options(kvptest::scaled(std::chrono::milliseconds(5000))));
    (void)pf.snapshot();
    auto holder = std::make_unique<kvptest::LockHolder>(pool(), kvptest::LockKind::flock_exclusive);
    auto change = std::async(std::launch::async, [&] { pf.set("New", "mine"); });
    wait_for_waiter(pool());
    const std::string replacement = dir() + "/replacement";
    write_file(replacement, encode_records({{"HostKey", "precious"}}));
    ASSERT_EQ(::rename(replacement.c_str(), pool().c_str()), 0);
    // A read loads the new file and takes the replacement's events with it: the waiting change
    // then finds no event, and must still notice that its descriptor is the old file.
    ASSERT_TRUE(kvptest::eventually([&] { return pf.get("HostKey").has_value(); }));
    ASSERT_EQ(pf.get("HostKey"), "precious");
    EXPECT_EQ(holder->release(), 0);
    change.get();
    EXPECT_EQ(decode_records(read_file(pool())),
              (Records{{"HostKey", "precious"}, {"New", "mine"}}));
}

TEST_F(ChangePathTest, AnUnlockedTruncationIsNeverEditedByTheStaleSize) {
    Records many;
    for (int i = 0; i < 400; ++i) {
        many.push_back({"k" + std::to_string(i), "v"});
    }
    write_file(pool(), encode_records(many));
    kvp::PoolFile pf(pool(), options(kvptest::scaled(std::chrono::milliseconds(1000))));
    ASSERT_EQ(pf.list().size(), 400U);
    // Truncated without a lock (cloud-init at boot): whatever the cache says, the change is
    // placed by the file under the lock.
    const int fd = ::open(pool().c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    ::close(fd);
    pf.set("Status", "Ready");
    EXPECT_EQ(read_file(pool()).size(), kvptest::kRecord);
    EXPECT_EQ(decode_records(read_file(pool())), (Records{{"Status", "Ready"}}));
}

TEST_F(ChangePathTest, LockWaitsDoNotAddUpAndCachedReadsAnswerAtOnce) {
    write_file(pool(), encode_records({{"Cached", "yes"}}));
    write_file(pool_path(2), encode_records({{"Other", "pool"}}));
    // Bounds derive from lock_timeout (scaled with the machine's slack): a read that waited
    // for the lock takes all of it; writers whose waits added up take twice and more.
    const auto timeout = kvptest::scaled(std::chrono::seconds(2));
    const double timeout_s = std::chrono::duration<double>(timeout).count();
    kvp::PoolFile pf(pool(), options(timeout));
    kvp::PoolFile other(pool_path(2), options(timeout));
    ASSERT_EQ(pf.get("Cached"), "yes");
    kvptest::LockHolder holder(pool(), kvptest::LockKind::fcntl_write);

    constexpr int kWriters = 12;
    std::vector<std::future<std::pair<int, double>>> writers;
    const auto all_start = Clock::now();
    for (int i = 0; i < kWriters; ++i) {
        writers.push_back(std::async(std::launch::async, [&pf, i] {
            const auto start = Clock::now();
            const int err = kvptest::errno_of([&] { pf.set("K" + std::to_string(i), "v"); });
            return std::make_pair(err, seconds_since(start));
        }));
    }
    // Meanwhile: the cache and the other pool answer at once.
    for (int i = 0; i < 20; ++i) {
        const auto start = Clock::now();
        EXPECT_EQ(pf.get("Cached"), "yes");
        EXPECT_EQ(other.get("Other"), "pool");
        EXPECT_LT(seconds_since(start), timeout_s / 2)
            << "a cached read waited behind the held lock";
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (auto& w : writers) {
        const auto [err, took] = w.get();
        EXPECT_EQ(err, EAGAIN);
        EXPECT_LT(took, 1.5 * timeout_s + 0.5) << "one wait was added to another";
    }
    EXPECT_LT(seconds_since(all_start), 1.5 * timeout_s + 0.5);
    EXPECT_EQ(holder.release(), 0);
}

// A pool changed by another process that still holds its lock: a read that may answer from
// the last released state (a lookup of a name) does so at once; one that waits takes the whole
// lock_timeout and fails. Once the lock is released, both read the new state.
TEST_F(ChangePathTest, AReadThatNeedNotWaitAnswersTheLastReleasedStateWhileTheLockIsHeld) {
    write_file(pool(), encode_records({{"k", "released"}}));
    const auto timeout = kvptest::scaled(std::chrono::seconds(2));
    const double timeout_s = std::chrono::duration<double>(timeout).count();
    kvp::PoolFile pf(pool(), options(timeout));
    ASSERT_EQ(pf.get("k"), "released");
    const std::string changed = encode_records({{"k", "unreleased"}, {"new", "1"}});
    kvptest::LockHolder holder(pool(), kvptest::LockKind::fcntl_write, {}, [&](int fd) {
        (void)!::pwrite(fd, changed.data(), changed.size(), 0);
    });
    for (int i = 0; i < 5; ++i) {
        const auto start = Clock::now();
        const auto snap = pf.snapshot(kvp::PoolFile::LockWait::none);
        ASSERT_NE(snap->find("k"), nullptr);
        EXPECT_EQ(snap->find("k")->record.value, "released");
        EXPECT_EQ(snap->find("new"), nullptr);
        EXPECT_LT(seconds_since(start), timeout_s / 2) << "it waited for the held lock";
    }
    const auto start = Clock::now();
    EXPECT_EQ(kvptest::errno_of([&] { (void)pf.snapshot(); }), EAGAIN);
    EXPECT_GE(seconds_since(start), timeout_s * 0.9);
    EXPECT_EQ(holder.release(), 0);
    const auto snap = pf.snapshot(kvp::PoolFile::LockWait::none);
    ASSERT_NE(snap->find("new"), nullptr);
    EXPECT_EQ(snap->find("k")->record.value, "unreleased");
}

TEST_F(ChangePathTest, ConcurrentChangesNeverLoseAnAppendMadeUnderFlock) {
    // Threads of one process change the pool while another process appends records under
    // flock (cloud-init): no append may be lost. (A lock released on a descriptor number that
    // another thread reused once let appends in mid-change; that window is too narrow to hit
    // here reliably: Stress.WritersThroughMount... caught it in about half of its runs.)
    write_file(pool(), encode_records({{"seed", "0"}}));
    kvp::PoolFile pf(pool(), options(kvptest::scaled(std::chrono::milliseconds(5000))));
    constexpr int kAppends = 300;
    const pid_t appender = kvptest::fork_child([&] {
        for (int i = 0; i < kAppends; ++i) {
            const int fd = ::open(pool().c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
            if (fd < 0 || ::flock(fd, LOCK_EX) != 0) {
                return 10;
            }
            const std::string rec = kvptest::encode_record("ci" + std::to_string(i), "e");
            if (::write(fd, rec.data(), rec.size()) != static_cast<ssize_t>(rec.size())) {
                return 11;
            }
            ::close(fd);
        }
        return 0;
    });
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; !stop.load(); ++i) {
                const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i % 3);
                pf.set(key, std::to_string(i));
                if (i % 2 == 0) {
                    (void)pf.remove(key);  // a delete moves the last record and cuts the file
                }
            }
        });
    }
    EXPECT_EQ(kvptest::wait_child(appender), 0);
    stop = true;
    for (auto& t : threads) {
        t.join();
    }
    std::set<std::string> keys;
    for (const auto& r : decode_records(read_file(pool()))) {
        keys.insert(r.key);
    }
    for (int i = 0; i < kAppends; ++i) {
        EXPECT_TRUE(keys.count("ci" + std::to_string(i)) == 1) << "ci" << i << " was lost";
    }
}

// A read that waits for the shared lock holds a descriptor opened before the wait. When the
// name is replaced (renamed over) or removed meanwhile, that read may answer with the old file,
// but the next read, which starts after the replacement, must show what the path names now.
std::vector<std::string> ChangePathTest::list_after_a_waiting_read(
    const std::function<void(const std::string& pool)>& replace) {
    write_file(pool(), encode_records({{"Old", "1"}}));
    kvp::PoolFile pf(pool(), options(kvptest::scaled(std::chrono::milliseconds(5000))));
    EXPECT_EQ(pf.get("Old"), "1");
    auto holder = std::make_unique<kvptest::LockHolder>(pool(), kvptest::LockKind::flock_exclusive);
    {
        // An attribute change: the next read must load, so it waits for the held lock.
        const int fd = ::open(pool().c_str(), O_WRONLY | O_CLOEXEC);
        EXPECT_GE(fd, 0);
        EXPECT_EQ(::futimens(fd, nullptr), 0);
        ::close(fd);
    }
    auto read = std::async(std::launch::async, [&] { return pf.get("Old"); });
    wait_for_waiter(pool());
    replace(pool());
    EXPECT_EQ(holder->release(), 0);
    (void)read.get();  // the overlapping read may show either file
    return pf.list();
}

TEST_F(ChangePathTest, AReadWaitingForTheLockWhileThePoolIsRenamedOverLeavesNoStaleView) {
    const std::string replacement = dir() + "/replacement";
    const auto listed = list_after_a_waiting_read([&](const std::string& pool) {
        write_file(replacement, encode_records({{"HostKey", "precious"}}));
        ASSERT_EQ(::rename(replacement.c_str(), pool.c_str()), 0);
    });
    EXPECT_EQ(listed, std::vector<std::string>{"HostKey"})
        << "the renamed-over file is shown after the replacement finished";
}

TEST_F(ChangePathTest, AReadWaitingForTheLockWhileThePoolIsRemovedLeavesNoStaleView) {
    const auto listed = list_after_a_waiting_read(
        [](const std::string& pool) { ASSERT_EQ(::unlink(pool.c_str()), 0); });
    EXPECT_TRUE(listed.empty()) << "a removed pool file is still listed";
}

// inotify reports a write to a directory's watch only when the file was opened through that
// directory: a hard link elsewhere reaches the same bytes without an event there.
TEST_F(ChangePathTest, AWriteThroughAHardLinkInAnotherDirectoryIsSeen) {
    write_file(pool(), encode_records({{"HostKey", "aaaa"}}));
    kvp::PoolFile pf(pool(), options(kvptest::scaled(std::chrono::milliseconds(1000))));
    ASSERT_EQ(pf.get("HostKey"), "aaaa");
    ASSERT_EQ(::mkdir(sub().c_str(), 0755), 0);
    const std::string link = sub() + "/hardlink";
    ASSERT_EQ(::link(pool().c_str(), link.c_str()), 0);
    const int fd = ::open(link.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);
    ASSERT_EQ(::pwrite(fd, "bbbb", 4, kvptest::kKeyField), 4);
    ::close(fd);
    EXPECT_EQ(pf.get("HostKey"), "bbbb") << "a locked write through a hard link is not shown";
}

// A process whose working directory (or an open descriptor) is the pool directory keeps the
// removed directory's inode alive: its watch hears nothing more, not even that it went.
TEST_F(ChangePathTest, ADirectoryRemovedWhileStillOpenSomewhereAndMadeAgainIsFollowed) {
    ASSERT_EQ(::mkdir(sub().c_str(), 0755), 0);
    write_file(sub_pool(), encode_records({{"Old", "1"}}));
    kvp::PoolFile pf(sub_pool(), options(kvptest::scaled(std::chrono::milliseconds(1000))));
    ASSERT_EQ(pf.list(), std::vector<std::string>{"Old"});
    const int held = ::open(sub().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(held, 0);
    std::filesystem::remove_all(sub());
    EXPECT_TRUE(pf.list().empty()) << "the removed directory's pool is still shown";
    ASSERT_EQ(::mkdir(sub().c_str(), 0755), 0);
    write_file(sub_pool(), encode_records({{"HostKey", "precious"}}));
    EXPECT_EQ(pf.list(), std::vector<std::string>{"HostKey"}) << "the new directory is not seen";
    ::close(held);
}

// A bind mount over the pool file itself changes what the name leads to without any inotify
// event; only the mount table says so.
TEST_F(ChangePathTest, APoolFileMountedOverIsShownAndSoIsItsUnmount) {
    write_file(pool(), encode_records({{"Old", "1"}}));
    const std::string other = dir() + "/other";
    write_file(other, encode_records({{"HostKey", "precious"}}));
    kvp::PoolFile pf(pool(), options(kvptest::scaled(std::chrono::milliseconds(1000))));
    ASSERT_EQ(pf.list(), std::vector<std::string>{"Old"});
    if (::mount(other.c_str(), pool().c_str(), nullptr, MS_BIND, nullptr) != 0) {
        GTEST_SKIP() << "cannot bind-mount here (" << std::strerror(errno) << "): needs root";
    }
    struct Unmount {
        std::string path;
        ~Unmount() {
            if (!path.empty()) {
                ::umount2(path.c_str(), MNT_DETACH);
            }
        }
    } unmount{pool()};
    EXPECT_EQ(pf.list(), std::vector<std::string>{"HostKey"}) << "the mounted-over file is shown";
    ASSERT_EQ(::umount2(pool().c_str(), 0), 0);
    unmount.path.clear();
    EXPECT_EQ(pf.list(), std::vector<std::string>{"Old"}) << "the uncovered file is not shown";
}

}  // namespace
