// Locks: both families (an OFD fcntl record lock and flock), shared for reads and exclusive
// for changes, held only for the I/O; a forked child holding either kind of lock makes the
// engine wait, and a bounded wait ends with EAGAIN naming the holder's PID.

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "file_lock.hpp"
#include "pool_file.hpp"
#include "test_support.hpp"
#include "unique_fd.hpp"

namespace {

using namespace std::chrono_literals;
using kvptest::decode_records;
using kvptest::encode_record;
using kvptest::encode_records;
using kvptest::LockHolder;
using kvptest::LockKind;
using kvptest::read_file;
using kvptest::Rec;
using Records = std::vector<Rec>;
using Clock = std::chrono::steady_clock;

// What another process sees of the locks on `path`, as bits: 1 = a classic fcntl write
// lock would conflict, 2 = a classic read lock would conflict, 4 = flock(LOCK_EX) would
// block, 8 = flock(LOCK_SH) would block.
int conflicts_seen_by_another_process(const std::string& path) {
    return kvptest::run_in_child([&]() -> int {
        const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            return 64;
        }
        int bits = 0;
        for (const short type : {F_WRLCK, F_RDLCK}) {
            struct flock fl {};
            fl.l_type = type;
            fl.l_whence = SEEK_SET;
            if (::fcntl(fd, F_GETLK, &fl) != 0) {
                return 65;
            }
            if (fl.l_type != F_UNLCK) {
                bits |= type == F_WRLCK ? 1 : 2;
            }
        }
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            bits |= 4;
        } else {
            ::flock(fd, LOCK_UN);
        }
        if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
            bits |= 8;
        } else {
            ::flock(fd, LOCK_UN);
        }
        ::close(fd);
        return bits;
    });
}

class LockingTest : public kvptest::PoolDirTest {
  protected:
    void SetUp() override {
        PoolDirTest::SetUp();
        kvptest::write_file(pool(), encode_records({{"k", "old"}}));
    }
    kvp::UniqueFd open_fd() { return kvp::UniqueFd(::open(pool().c_str(), O_RDWR | O_CLOEXEC)); }
    std::unique_ptr<kvp::PoolFile> open_pool(std::chrono::milliseconds timeout) {
        kvp::PoolOptions options;
        options.lock_timeout = timeout;
        return std::make_unique<kvp::PoolFile>(pool(), options);
    }
};

TEST_F(LockingTest, ExclusiveFileLockHoldsBothFamilies) {
    auto fd = open_fd();
    ASSERT_TRUE(fd);
    EXPECT_EQ(conflicts_seen_by_another_process(pool()), 0);
    {
        kvp::FileLock lock(fd.get(), kvp::LockMode::exclusive, 1000ms, "pool");
        EXPECT_EQ(conflicts_seen_by_another_process(pool()), 1 | 2 | 4 | 8);
    }
    EXPECT_EQ(conflicts_seen_by_another_process(pool()), 0) << "the destructor must unlock";
}

TEST_F(LockingTest, SharedFileLockHoldsBothFamiliesAndAdmitsReaders) {
    auto fd = open_fd();
    {
        kvp::FileLock lock(fd.get(), kvp::LockMode::shared, 1000ms, "pool");
        EXPECT_EQ(conflicts_seen_by_another_process(pool()), 1 | 4);
    }
    EXPECT_EQ(conflicts_seen_by_another_process(pool()), 0);
}

TEST_F(LockingTest, RecordLockIsNotDroppedWhenAnotherDescriptorOfTheFileCloses) {
    auto fd = open_fd();
    kvp::FileLock lock(fd.get(), kvp::LockMode::exclusive, 1000ms, "pool");
    {
        // A classic fcntl lock would be dropped here (POSIX: any close by the process).
        auto other = open_fd();
        ASSERT_TRUE(other);
    }
    EXPECT_EQ(conflicts_seen_by_another_process(pool()), 1 | 2 | 4 | 8);
}

TEST_F(LockingTest, LocksSeparateDescriptorsOfOneProcess) {
    auto fd1 = open_fd();
    auto fd2 = open_fd();
    // The second lock of each pair is taken on another thread of this process: one thread
    // never holds two pool file locks (docs/threads.md), and the lock-order check says so.
    const auto on_other_thread = [](auto&& body) { std::thread(body).join(); };
    {
        kvp::FileLock a(fd1.get(), kvp::LockMode::shared, 1000ms, "pool");
        on_other_thread([&] { kvp::FileLock b(fd2.get(), kvp::LockMode::shared, 1000ms, "pool"); });
    }
    kvp::FileLock a(fd1.get(), kvp::LockMode::exclusive, 1000ms, "pool");
    const auto t0 = Clock::now();
    int err = 0;
    on_other_thread([&] {
        err = kvptest::errno_of(
            [&] { kvp::FileLock b(fd2.get(), kvp::LockMode::exclusive, 200ms, "pool"); });
    });
    EXPECT_EQ(err, EAGAIN);
    EXPECT_GE(Clock::now() - t0, 150ms);
    on_other_thread([&] {
        err = kvptest::errno_of(
            [&] { kvp::FileLock b(fd2.get(), kvp::LockMode::shared, 100ms, "pool"); });
    });
    EXPECT_EQ(err, EAGAIN);
}

TEST_F(LockingTest, FileLockTimesOutNamingTheFcntlHoldersPid) {
    LockHolder holder(pool(), LockKind::fcntl_write);
    auto fd = open_fd();
    const auto t0 = Clock::now();
    try {
        kvp::FileLock lock(fd.get(), kvp::LockMode::shared, 250ms, "pool");
        ADD_FAILURE() << "took a shared lock while another process holds a write lock";
    } catch (const kvp::Error& e) {
        EXPECT_EQ(e.errno_value(), EAGAIN);
        EXPECT_NE(std::string(e.what()).find(std::to_string(holder.pid())), std::string::npos)
            << e.what();
    }
    const auto waited = Clock::now() - t0;
    EXPECT_GE(waited, 200ms);
    EXPECT_LT(waited, kvptest::scaled(5s));
    EXPECT_EQ(holder.release(), 0);
}

TEST_F(LockingTest, FileLockTimesOutOnAFlockHolder) {
    LockHolder holder(pool(), LockKind::flock_exclusive);
    auto fd = open_fd();
    const auto t0 = Clock::now();
    EXPECT_EQ(kvptest::errno_of(
                  [&] { kvp::FileLock lock(fd.get(), kvp::LockMode::shared, 250ms, "pool"); }),
              EAGAIN);
    EXPECT_GE(Clock::now() - t0, 200ms);
    EXPECT_EQ(holder.release(), 0);
}

TEST_F(LockingTest, LockHolderPid) {
    auto fd = open_fd();
    EXPECT_EQ(kvp::lock_holder_pid(fd.get(), kvp::LockMode::exclusive), 0);
    {
        LockHolder holder(pool(), LockKind::fcntl_write);
        EXPECT_EQ(kvp::lock_holder_pid(fd.get(), kvp::LockMode::shared), holder.pid());
        EXPECT_EQ(kvp::lock_holder_pid(fd.get(), kvp::LockMode::exclusive), holder.pid());
    }
    {
        LockHolder holder(pool(), LockKind::fcntl_read);
        EXPECT_EQ(kvp::lock_holder_pid(fd.get(), kvp::LockMode::exclusive), holder.pid());
        EXPECT_EQ(kvp::lock_holder_pid(fd.get(), kvp::LockMode::shared), 0);
    }
    {
        // Found in /proc/locks by inode (file_lock.hpp).
        LockHolder holder(pool(), LockKind::flock_exclusive);
        EXPECT_EQ(kvp::lock_holder_pid(fd.get(), kvp::LockMode::exclusive), holder.pid());
    }
}

TEST_F(LockingTest, SetWaitsForAnFcntlHolderAndKeepsItsChange) {
    auto p = open_pool(kvptest::scaled(10s));
    ASSERT_EQ(p->get("k"), "old");
    // The holder appends a record right before it unlocks: the engine's change must be made
    // after it, on top of it.
    const std::string rec = encode_record("holder", "h");
    LockHolder holder(pool(), LockKind::fcntl_write, [rec](int fd) {
        (void)!::pwrite(fd, rec.data(), rec.size(), static_cast<off_t>(kvptest::kRecord));
    });
    auto done = std::async(std::launch::async, [&] { p->set("engine", "e"); });
    // Once the change has opened the file it is at the lock; it must still be there later.
    ASSERT_TRUE(kvptest::eventually([&] { return kvptest::descriptors_on(pool()) > 0; }))
        << "the change never started";
    EXPECT_EQ(done.wait_for(300ms), std::future_status::timeout)
        << "the change went through while another process held the write lock";
    EXPECT_EQ(holder.release(), 0);
    done.get();
    EXPECT_EQ(decode_records(read_file(pool())),
              (Records{{"k", "old"}, {"holder", "h"}, {"engine", "e"}}));
    EXPECT_EQ(p->get("holder"), "h");
}

TEST_F(LockingTest, SetWaitsForAFlockHolderAndKeepsItsChange) {
    auto p = open_pool(kvptest::scaled(10s));
    const std::string rec = encode_record("k", "by-holder");
    LockHolder holder(pool(), LockKind::flock_exclusive,
                      [rec](int fd) { (void)!::pwrite(fd, rec.data(), rec.size(), 0); });
    auto done = std::async(std::launch::async, [&] { p->set("engine", "e"); });
    // Once the change has opened the file it is at the lock; it must still be there later.
    ASSERT_TRUE(kvptest::eventually([&] { return kvptest::descriptors_on(pool()) > 0; }))
        << "the change never started";
    EXPECT_EQ(done.wait_for(300ms), std::future_status::timeout);
    EXPECT_EQ(holder.release(), 0);
    done.get();
    EXPECT_EQ(decode_records(read_file(pool())), (Records{{"k", "by-holder"}, {"engine", "e"}}));
}

TEST_F(LockingTest, BoundedChangeUnderAnFcntlHolderFailsWithEagainNamingThePid) {
    auto p = open_pool(250ms);
    const std::string before = read_file(pool());
    LockHolder holder(pool(), LockKind::fcntl_write);
    const auto t0 = Clock::now();
    try {
        p->set("k", "new");
        ADD_FAILURE() << "set succeeded while another process held the write lock";
    } catch (const kvp::Error& e) {
        EXPECT_EQ(e.errno_value(), EAGAIN) << e.what();
        EXPECT_NE(std::string(e.what()).find(std::to_string(holder.pid())), std::string::npos)
            << "message does not name holder " << holder.pid() << ": " << e.what();
    }
    const auto waited = Clock::now() - t0;
    EXPECT_GE(waited, 200ms);
    EXPECT_LT(waited, kvptest::scaled(5s));
    EXPECT_EQ(holder.release(), 0);
    EXPECT_EQ(read_file(pool()), before);
    p->set("k", "new");  // and once released, it works
    EXPECT_EQ(p->get("k"), "new");
}

TEST_F(LockingTest, BoundedChangeUnderAFlockHolderFailsWithEagain) {
    auto p = open_pool(250ms);
    const std::string before = read_file(pool());
    LockHolder holder(pool(), LockKind::flock_exclusive);
    const auto t0 = Clock::now();
    EXPECT_EQ(kvptest::errno_of([&] { p->set("k", "new"); }), EAGAIN);
    EXPECT_GE(Clock::now() - t0, 200ms);
    EXPECT_EQ(kvptest::errno_of([&] { (void)p->remove("k"); }), EAGAIN);
    EXPECT_EQ(kvptest::errno_of([&] { (void)p->rename("k", "j"); }), EAGAIN);
    EXPECT_EQ(kvptest::errno_of([&] { (void)p->create_if_absent("j"); }), EAGAIN);
    EXPECT_EQ(holder.release(), 0);
    EXPECT_EQ(read_file(pool()), before);
}

TEST_F(LockingTest, SharedHoldersAdmitReadsButNotChanges) {
    for (const auto kind : {LockKind::fcntl_read, LockKind::flock_shared}) {
        SCOPED_TRACE(kind == LockKind::fcntl_read ? "fcntl read lock" : "flock shared");
        LockHolder holder(pool(), kind);
        auto p = open_pool(250ms);  // nothing cached: it has to read the file
        EXPECT_EQ(p->get("k"), "old");
        EXPECT_EQ(p->list(), std::vector<std::string>{"k"});
        EXPECT_EQ(kvptest::errno_of([&] { p->set("k", "new"); }), EAGAIN);
        EXPECT_EQ(holder.release(), 0);
    }
    EXPECT_EQ(read_file(pool()), encode_records({{"k", "old"}}));
}

TEST_F(LockingTest, ReadUnderAWriterAnswersTheLastReleasedStateOrWaits) {
    auto p = open_pool(250ms);
    ASSERT_EQ(p->get("k"), "old");
    // The holder writes half a value while it holds the lock, then finishes it.
    LockHolder holder(pool(), LockKind::fcntl_write);
    const int fd = ::open(pool().c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, "HALF", 4, kvptest::kKeyField), 4);
    std::optional<std::string> seen;
    const int err = kvptest::errno_of([&] { seen = p->get("k"); });
    if (err == 0) {
        EXPECT_EQ(seen, "old") << "a read must show the last released state, never a torn one";
    } else {
        EXPECT_EQ(err, EAGAIN);
    }
    ASSERT_EQ(::pwrite(fd, "done", 5, kvptest::kKeyField), 5);
    ::close(fd);
    EXPECT_EQ(holder.release(), 0);
    EXPECT_EQ(p->get("k"), "done");
}

TEST_F(LockingTest, FirstReadWaitsForAWriterAndNeverShowsItsHalfDoneChange) {
    // A writer holds its lock across a two-step change (first "HALF", later "done"): a
    // reader with nothing cached has no released state to answer with, so it must wait
    // for the lock and then show the finished value - never the half-done one.
    for (const auto kind : {LockKind::fcntl_write, LockKind::flock_exclusive}) {
        SCOPED_TRACE(kind == LockKind::fcntl_write ? "fcntl" : "flock");
        kvptest::write_file(pool(), encode_records({{"k", "old"}}));
        LockHolder holder(
            pool(), kind, [](int fd) { (void)!::pwrite(fd, "done", 5, kvptest::kKeyField); },
            [](int fd) { (void)!::pwrite(fd, "HALF", 4, kvptest::kKeyField); });
        auto p = open_pool(kvptest::scaled(10s));
        auto read = std::async(std::launch::async, [&] { return p->get("k"); });
        ASSERT_TRUE(kvptest::eventually([&] { return kvptest::descriptors_on(pool()) > 0; }))
            << "the read never started";
        EXPECT_EQ(read.wait_for(300ms), std::future_status::timeout)
            << "the read did not wait for the writer's lock";
        EXPECT_EQ(holder.release(), 0);
        EXPECT_EQ(read.get(), "done");
    }
}

TEST_F(LockingTest, EngineHoldsNoLockBetweenOperations) {
    auto p = open_pool(1s);
    (void)p->get("k");
    EXPECT_EQ(conflicts_seen_by_another_process(pool()), 0);
    p->set("k", "v");
    EXPECT_EQ(conflicts_seen_by_another_process(pool()), 0);
    (void)p->remove("k");
    EXPECT_EQ(conflicts_seen_by_another_process(pool()), 0);
    (void)p->snapshot();
    EXPECT_EQ(conflicts_seen_by_another_process(pool()), 0);
}

}  // namespace
