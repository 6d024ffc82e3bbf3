// docs/behaviour.md §3: locking and coherence with other writers of the pool files.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "mount_fixture.hpp"
#include "process_probes.hpp"

namespace kvptest {
namespace {

using Clock = std::chrono::steady_clock;

// Same size, same timestamp tick: mtime + size alone cannot see these changes.
TEST_F(KvpfsTest, SameLengthChangeIsSeenAtOnceEveryTime) {
    set_pool(1, {{"a", "x"}, {"k", "value-0000"}, {"z", "y"}});
    ASSERT_EQ(cat("guest/k"), "value-0000\n");
    for (int i = 1; i <= 300; ++i) {
        char v[16];
        std::snprintf(v, sizeof v, "value-%04d", i);
        set_pool(1, {{"a", "x"}, {"k", v}, {"z", "y"}});
        ASSERT_TRUE(shown_after_outside_change([&] {
            return cat("guest/k") == std::string(v) + "\n";
        })) << "iteration "
            << i << ": " << cat("guest/k");
    }
}

TEST_F(KvpfsTest, ForeignChangesShowInStatAndReaddir) {
    const std::vector<std::string> only_a{"a"};
    const std::vector<std::string> only_b{"b"};
    set_pool(1, {{"a", "1"}});
    EXPECT_TRUE(shown_after_outside_change([&] { return list("guest") == only_a; }));
    set_pool(1, {{"b", "22"}});
    EXPECT_TRUE(shown_after_outside_change([&] { return list("guest") == only_b; }));
    EXPECT_TRUE(shown_after_outside_change([&] { return stat_errno("guest/a") == ENOENT; }));
    struct stat st {};
    EXPECT_TRUE(shown_after_outside_change(
        [&] { return stat_errno("guest/b", &st) == 0 && st.st_size == 3; }));
    set_pool(1, {{"b", "4444"}});
    EXPECT_TRUE(shown_after_outside_change([&] {
        return stat_errno("guest/b", &st) == 0 && st.st_size == 5;
    })) << st.st_size;
}

// A writer rewrites the whole pool (truncate to zero, then the records in pieces) under
// its locks, again and again; a reader through the mount must only ever see whole pools.
TEST_F(KvpfsTest, ReaderNeverSeesAPartialRewrite) {
    std::vector<Rec> recs;
    recs.reserve(40);
    for (int i = 0; i < 40; ++i) {
        recs.push_back({"key" + std::to_string(i), "value" + std::to_string(i)});
    }
    set_pool(0, recs);
    std::atomic<bool> stop{false};
    std::atomic<int> rewrites{0};
    const std::string path = pool_path(0);
    std::thread writer([&] {
        const std::string bytes = encode_records(recs);
        int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        while (!stop.load()) {
            ::flock(fd, LOCK_EX);
            struct flock fl {};
            fl.l_type = F_WRLCK;
            ::fcntl(fd, F_SETLKW, &fl);
            (void)!::ftruncate(fd, 0);
            for (std::size_t off = 0; off < bytes.size(); off += 1000) {
                (void)!::pwrite(fd, bytes.data() + off,
                                std::min<std::size_t>(1000, bytes.size() - off),
                                static_cast<off_t>(off));
            }
            fl.l_type = F_UNLCK;
            ::fcntl(fd, F_SETLK, &fl);
            ::flock(fd, LOCK_UN);
            rewrites.fetch_add(1);
            // Pacing, as a real writer has: flock and fcntl locks are not fair, and a
            // writer that relocks at once can starve readers past lock_timeout.
            std::this_thread::sleep_for(std::chrono::microseconds(500));
        }
        ::close(fd);
    });
    int reads = 0;
    // A fixed amount of work, not a fixed time: a loaded machine takes longer, not fewer.
    const auto end = Clock::now() + scaled(kEventually);
    bool ok = true;
    while ((reads < 300 || rewrites.load() < 30) && Clock::now() < end && ok) {
        std::vector<std::string> names;
        try {
            names = list("external");
        } catch (const std::exception& e) {
            names = {e.what()};
        }
        ok = names.size() == recs.size();
        EXPECT_EQ(names.size(), recs.size()) << "listing of a partial pool";
        const int i = reads % 40;
        std::string v;
        try {
            v = cat("external/key" + std::to_string(i));
        } catch (const std::exception& e) {
            v = e.what();
        }
        EXPECT_EQ(v, "value" + std::to_string(i) + "\n");
        ok = ok && v == "value" + std::to_string(i) + "\n";
        ++reads;
    }
    stop = true;
    writer.join();
    EXPECT_GT(rewrites.load(), 10);
    EXPECT_GT(reads, 10);
    std::printf("  %d reads during %d whole-pool rewrites\n", reads, rewrites.load());
}

// Inotify is a hint: a writer holding both locks stores through a shared mapping, which queues
// no inotify event, but its first store to a clean page moves the file's mtime and ctime. The
// next operation shows it (with -o cache, the cache thread's look at the file's metadata).
TEST_F(KvpfsTest, LockedStoreThroughASharedMappingShows) {
    set_pool(1, {{"a", "1"}, {"k", "value-000"}});
    ASSERT_EQ(cat("guest/k"), "value-000\n");
    for (int i = 1; i <= 20; ++i) {
        char v[16];
        std::snprintf(v, sizeof v, "value-%03d", i);
        {
            const HeldLock lock(pool_path(1));
            void* map =
                ::mmap(nullptr, 2 * kRecord, PROT_READ | PROT_WRITE, MAP_SHARED, lock.fd(), 0);
            ASSERT_NE(map, MAP_FAILED) << std::strerror(errno);
            std::memcpy(static_cast<char*>(map) + kRecord + kKeyField, v, std::strlen(v));
            ::munmap(map, 2 * kRecord);
        }
        ASSERT_TRUE(shown_after_outside_change([&] {
            return cat("guest/k") == std::string(v) + "\n";
        })) << "round "
            << i << ": " << cat("guest/k");
    }
}

class OneSecondLockTest : public KvpfsTest {
  protected:
    std::vector<std::string> daemon_options() const override { return {"-o", "lock_timeout=1"}; }
};

// Waits do not add up for creates: while a stopped process holds guest/'s locks, 8 bash shells
// create 8 new keys at once. The kernel holds the directory through each create's lookup and
// create; both answer from the last released state at once, and the wait is the write's: each
// shell gets EAGAIN within lock_timeout plus 1.5 s of its own start, not 1, 2, ... 8 s.
TEST_F(OneSecondLockTest, CreatesOfNewKeysWhileTheLockIsHeldDoNotWaitForEachOther) {
    set_pool(1, {{"k", "old"}});
    ASSERT_EQ(cat("guest/k"), "old\n");
    // The holder is a writer stopped in the middle of its change: the file has changed, so
    // every operation finds it changed and would read it again.
    const std::string holders = encode_records({{"k", "old"}, {"holder", "half-way"}});
    int ready[2];
    int release[2];
    ASSERT_EQ(::pipe(ready), 0);
    ASSERT_EQ(::pipe(release), 0);
    const pid_t holder = ::fork();
    ASSERT_GE(holder, 0);
    if (holder == 0) {
        {
            const HeldLock lock(pool_path(1));
            (void)!::pwrite(lock.fd(), holders.data(), holders.size(), 0);
            (void)!::write(ready[1], "r", 1);
            char c;
            (void)!::read(release[0], &c, 1);
        }
        ::_exit(0);
    }
    char c;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    constexpr int kShells = 8;
    struct Shell {
        std::string target;
        std::string out;
        int status = -1;
        double took = -1;
    };
    std::vector<Shell> shells(kShells);
    for (int i = 0; i < kShells; ++i) {
        shells[i].target = mnt("guest/new" + std::to_string(i));
        shells[i].out = base_dir() + "/shell" + std::to_string(i) + ".out";
    }
    std::vector<std::thread> threads;
    for (Shell& sh : shells) {
        threads.emplace_back([&sh] {
            const auto start = Clock::now();
            const pid_t pid = ::fork();
            if (pid == 0) {
                const int fd = ::open(sh.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
                ::dup2(fd, 1);
                ::dup2(fd, 2);
                // bash names the errno of a failed echo (dash says "I/O error" for any).
                ::execl("/bin/bash", "bash", "-c", "echo v > \"$0\"", sh.target.c_str(), nullptr);
                ::_exit(127);
            }
            int status = 0;
            ::waitpid(pid, &status, 0);
            sh.status = status;
            sh.took = std::chrono::duration<double>(Clock::now() - start).count();
        });
    }
    for (std::thread& t : threads) {
        t.join();
    }
    (void)!::write(release[1], "x", 1);
    int status = 0;
    ::waitpid(holder, &status, 0);
    for (int fd : {ready[0], ready[1], release[0], release[1]}) {
        ::close(fd);
    }
    const double bound =
        std::chrono::duration<double>(scaled(std::chrono::milliseconds(2500))).count();
    for (const Shell& sh : shells) {
        SCOPED_TRACE(sh.target);
        EXPECT_NE(sh.status, 0);
        EXPECT_NE(read_bytes(sh.out).find("Resource temporarily unavailable"), std::string::npos)
            << read_bytes(sh.out);
        EXPECT_LT(sh.took, bound) << "its wait was added to another's";
    }
    // The holder's change is kept. (Each create's empty key is stored by its release, which
    // waits for the lock as long as it takes: docs/behaviour.md §5.)
    const std::vector<Rec> after = pool_recs(1);
    ASSERT_GE(after.size(), 2U);
    EXPECT_EQ(std::vector<Rec>(after.begin(), after.begin() + 2),
              (std::vector<Rec>{{"k", "old"}, {"holder", "half-way"}}));
}

class LockTimeoutTest : public KvpfsTest {
  protected:
    std::vector<std::string> daemon_options() const override { return {"-o", "lock_timeout=0.5"}; }
};

TEST_F(LockTimeoutTest, ChangeFailsWithEagainPastTheTimeoutAndNamesTheHolder) {
    set_pool(1, {{"k", "old"}});
    ASSERT_EQ(cat("guest/k"), "old\n");
    const std::string before = pool_raw(1);
    // A refused write leaves the daemon's view of the pool valid: the open below needs no
    // lock, and the write itself reports the timeout.
    ASSERT_EQ(write_file("guest/k", std::string("a\0", 2)).err, EINVAL);
    // Another process holds both locks for longer than lock_timeout.
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    int release[2];
    ASSERT_EQ(::pipe(release), 0);
    pid_t holder = ::fork();
    ASSERT_GE(holder, 0);
    if (holder == 0) {
        {
            HeldLock lock(pool_path(1));
            (void)!::write(ready[1], "r", 1);
            char c;
            (void)!::read(release[0], &c, 1);
        }
        ::_exit(0);
    }
    char c;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    // A read answers with the last released state at once.
    EXPECT_EQ(cat("guest/k"), "old\n");
    const auto t0 = Clock::now();
    IoResult r = write_file("guest/k", "new\n");
    const auto waited = Clock::now() - t0;
    EXPECT_EQ(r.err, EAGAIN);
    EXPECT_EQ(r.step, "write");  // reported by write() itself, so bash's echo sees it
    EXPECT_GE(waited, std::chrono::milliseconds(450));
    EXPECT_LT(waited, scaled(std::chrono::seconds(5)));
    EXPECT_EQ(::unlink(mnt("guest/k").c_str()), -1);
    EXPECT_EQ(errno, EAGAIN);
    (void)!::write(release[1], "x", 1);
    int status = 0;
    ::waitpid(holder, &status, 0);
    ::close(ready[0]);
    ::close(ready[1]);
    ::close(release[0]);
    ::close(release[1]);
    EXPECT_TRUE(pool_kept(1, before));
    EXPECT_NE(daemon_log().find(std::to_string(holder)), std::string::npos)
        << "log should name the holder PID " << holder << ":\n"
        << daemon_log();
    // Once released, changes go through again.
    ASSERT_EQ(write_file("guest/k", "new\n").err, 0);
    EXPECT_EQ(pool_recs(1), (std::vector<Rec>{{"k", "new"}}));
}

// A change through the mount waits for a foreign exclusive lock, and what the holder
// wrote under it is kept: the engine re-reads the file under its own lock.
TEST_F(KvpfsTest, ChangeWaitsForALockAndKeepsTheHoldersChange) {
    set_pool(1, {{"k", "old"}});
    ASSERT_EQ(cat("guest/k"), "old\n");  // the daemon has the old pool cached
    std::atomic<bool> held{false};
    std::atomic<bool> waited{false};
    std::thread holder([&] {
        HeldLock lock(pool_path(1));
        held = true;
        // The holder's work ends once the daemon's change has opened the pool (it is then at
        // the lock); had the change not waited, the holder's bytes would overwrite it.
        waited = eventually([&] { return descriptors_on(daemon_pid(), pool_path(1)) > 0; });
        const std::string bytes = encode_records({{"k", "old"}, {"holder", "was here"}});
        (void)!::pwrite(lock.fd(), bytes.data(), bytes.size(), 0);
    });
    while (!held.load()) {
        std::this_thread::yield();
    }
    ASSERT_EQ(write_file("guest/k", "new\n").err, 0);
    holder.join();
    EXPECT_TRUE(waited.load()) << "the change never waited for the lock";
    EXPECT_EQ(pool_recs(1), (std::vector<Rec>{{"k", "new"}, {"holder", "was here"}}));
}

}  // namespace
}  // namespace kvptest
