// A deterministic look at one interleaving: the engine finds a pool file missing, and
// another process creates it (and writes it, under its lock) before the engine has re-armed
// its change watch. docs/behaviour.md §3: once that writer released its lock, the next read shows
// the change. To land the creation exactly there, this program interposes open(): when the
// engine's open of the pool file fails with ENOENT, the hook runs a forked writer before
// open() returns. This lives in its own executable so the interposer touches no other test.

#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <memory>
#include <string>

#include "pool_file.hpp"
#include "test_support.hpp"

namespace {

std::string g_hook_path;
std::function<void()> g_hook;

int real_open(const char* path, int flags, mode_t mode) {
    return static_cast<int>(::syscall(SYS_openat, AT_FDCWD, path, flags, mode));
}

int hooked_open(const char* path, int flags, mode_t mode) {
    const int fd = real_open(path, flags, mode);
    if (fd < 0 && errno == ENOENT && g_hook && path == g_hook_path) {
        const auto hook = std::move(g_hook);
        g_hook = nullptr;
        hook();
        errno = ENOENT;
    }
    return fd;
}

}  // namespace

extern "C" int open(const char* path, int flags, ...) {
    mode_t mode = 0;
    if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
        va_list ap;
        va_start(ap, flags);
        mode = static_cast<mode_t>(va_arg(ap, int));
        va_end(ap);
    }
    return hooked_open(path, flags, mode);
}

extern "C" int open64(const char* path, int flags, ...) {
    mode_t mode = 0;
    if ((flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE) {
        va_list ap;
        va_start(ap, flags);
        mode = static_cast<mode_t>(va_arg(ap, int));
        va_end(ap);
    }
    return hooked_open(path, flags, mode);
}

namespace {

using kvptest::encode_records;

// Creates `path` holding `records`, the way cloud-init does (O_APPEND|O_CREAT, flock), in
// a forked process, and waits for it.
void create_in_other_process(const std::string& path, const std::string& bytes) {
    const int status = kvptest::run_in_child([&]() -> int {
        const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || ::flock(fd, LOCK_EX) != 0) {
            return 10;
        }
        const bool ok =
            ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
        ::flock(fd, LOCK_UN);
        ::close(fd);
        return ok ? 0 : 11;
    });
    ASSERT_EQ(status, 0);
}

class MissingFileRaceTest : public kvptest::PoolDirTest {
  protected:
    void TearDown() override {
        g_hook = nullptr;
        PoolDirTest::TearDown();
    }
    std::unique_ptr<kvp::PoolFile> open_pool() {
        kvp::PoolOptions options;
        options.lock_timeout = std::chrono::milliseconds(2000);
        return std::make_unique<kvp::PoolFile>(pool(), options);
    }
    // Arms the hook: the next failed open of the pool file creates it in another process.
    void create_when_engine_finds_it_missing(const std::string& bytes) {
        g_hook_path = pool();
        g_hook = [this, bytes] { create_in_other_process(pool(), bytes); };
    }
    bool hook_ran() const { return !g_hook; }
};

TEST_F(MissingFileRaceTest, TheInterposerWorks) {
    create_when_engine_finds_it_missing(encode_records({{"k", "v"}}));
    EXPECT_LT(::open(pool().c_str(), O_RDONLY), 0);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_TRUE(hook_ran());
    EXPECT_EQ(kvptest::read_file(pool()), encode_records({{"k", "v"}}));
}

TEST_F(MissingFileRaceTest, CreationDuringAReadOfTheMissingFileIsSeenNext) {
    auto p = open_pool();
    create_when_engine_finds_it_missing(encode_records({{"k", "v"}}));
    // Either answer is right for this read: it overlapped the creation.
    (void)p->get("k");
    ASSERT_TRUE(hook_ran()) << "the engine did not open the pool file by its path";
    // The writer has finished and released its lock: the next read must show its record.
    EXPECT_EQ(p->get("k"), "v");
    EXPECT_EQ(p->list(), std::vector<std::string>{"k"});
}

TEST_F(MissingFileRaceTest, CreationDuringAReadAfterARemovalIsSeenNext) {
    kvptest::write_file(pool(), encode_records({{"k", "old"}}));
    auto p = open_pool();
    ASSERT_EQ(p->get("k"), "old");
    ASSERT_EQ(::unlink(pool().c_str()), 0);
    create_when_engine_finds_it_missing(encode_records({{"k", "new"}}));
    (void)p->get("k");
    ASSERT_TRUE(hook_ran());
    EXPECT_EQ(p->get("k"), "new");
}

TEST_F(MissingFileRaceTest, CreationDuringAChangeOfTheMissingFileIsSeenNext) {
    // A remove() of a missing pool (nothing to do) overlapping the creation.
    auto p = open_pool();
    create_when_engine_finds_it_missing(encode_records({{"k", "v"}}));
    (void)p->remove("other");
    ASSERT_TRUE(hook_ran());
    EXPECT_EQ(p->get("k"), "v");
}

}  // namespace
