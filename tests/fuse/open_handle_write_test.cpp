// docs/behaviour.md §5: each write() stored when it returns, applied to the key's current
// value; keys created by their first stored write; handles that follow renames and store
// nothing after rm; errors that stay the same on retry; unfinished UTF-8 held back.
// Every refusal is checked to leave the pool byte-identical.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "mount_fixture.hpp"

namespace kvptest {
namespace {

using Recs = std::vector<Rec>;

// Opens `rel` through the mount; fails the test when it cannot.
class Fd {
  public:
    Fd(const std::string& path, int flags) : fd_(::open(path.c_str(), flags, 0644)) {}
    ~Fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    [[nodiscard]] int get() const { return fd_; }
    // close() now: 0 or the errno it answered.
    int close() {
        const int rc = ::close(fd_);
        fd_ = -1;
        return rc == 0 ? 0 : errno;
    }
    // write() of all of `data`: 0 or its errno.
    [[nodiscard]] int write(const std::string& data) const {
        const ssize_t n = ::write(fd_, data.data(), data.size());
        return n == static_cast<ssize_t>(data.size()) ? 0 : errno;
    }

  private:
    int fd_;
};

// Waits (bounded) for the pool to hold `want`: release, which stores an O_TRUNC or a create
// with nothing written, comes just after the last close() returns.
bool pool_becomes(const KvpfsTest& /*t*/, const std::function<Recs()>& read, const Recs& want) {
    return eventually([&] { return read() == want; });
}

TEST_F(KvpfsTest, AppendsFromTwoOpenHandlesKeepBothLines) {
    set_pool(1, {{"log", "start"}});
    Fd a(mnt("guest/log"), O_WRONLY | O_APPEND);
    Fd b(mnt("guest/log"), O_WRONLY | O_APPEND);
    ASSERT_GE(a.get(), 0);
    ASSERT_GE(b.get(), 0);
    EXPECT_EQ(a.write("from a\n"), 0);
    EXPECT_EQ(b.write("from b\n"), 0);
    EXPECT_EQ(a.write("a again\n"), 0);
    EXPECT_EQ(a.close(), 0);
    EXPECT_EQ(b.close(), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"log", "start\nfrom a\nfrom b\na again"}}));
}

TEST_F(KvpfsTest, AppendOfALineInPiecesReadsAsOneLine) {
    set_pool(1, {{"log", "one"}});
    Fd a(mnt("guest/log"), O_WRONLY | O_APPEND);
    ASSERT_GE(a.get(), 0);
    EXPECT_EQ(a.write("tw"), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"log", "one\ntw"}}));
    EXPECT_EQ(a.write("o\n"), 0);
    EXPECT_EQ(a.write("three\n"), 0);
    EXPECT_EQ(a.close(), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"log", "one\ntwo\nthree"}}));
}

TEST_F(KvpfsTest, PwriteChangesOnlyTheBytesItCovers) {
    set_pool(1, {{"k", "abcdef"}});
    Fd fd(mnt("guest/k"), O_RDWR);
    ASSERT_GE(fd.get(), 0);
    set_pool(1, {{"k", "ABCDEF"}});  // another process changes the key after the open
    ASSERT_EQ(::pwrite(fd.get(), "x", 1, 2), 1);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "ABxDEF"}}));
    char buf[16] = {};
    ASSERT_EQ(::pread(fd.get(), buf, sizeof buf, 0), 7);  // reads show the current value
    EXPECT_EQ(std::string(buf, 7), "ABxDEF\n");
    EXPECT_EQ(fd.close(), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "ABxDEF"}}));
}

TEST_F(KvpfsTest, HandleFollowsARenameThroughTheMount) {
    set_pool(1, {{"a", "old"}, {"b", "replaced"}});
    Fd fd(mnt("guest/a"), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd.get(), 0);
    ASSERT_EQ(::rename(mnt("guest/a").c_str(), mnt("guest/b").c_str()), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"b", "old"}}));
    EXPECT_EQ(fd.write("new\n"), 0);
    EXPECT_EQ(fd.close(), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"b", "new"}}));  // no resurrected `a`
    EXPECT_EQ(stat_errno("guest/a"), ENOENT);
}

TEST_F(KvpfsTest, HandleOfAReplacedTargetStoresNothing) {
    set_pool(1, {{"a", "A"}, {"b", "B"}});
    Fd fd(mnt("guest/b"), O_WRONLY | O_APPEND);
    ASSERT_GE(fd.get(), 0);
    ASSERT_EQ(::rename(mnt("guest/a").c_str(), mnt("guest/b").c_str()), 0);
    const std::string before = pool_raw(1);
    EXPECT_EQ(fd.write("lost\n"), 0);
    EXPECT_EQ(fd.close(), 0);
    EXPECT_TRUE(pool_kept(1, before));
    EXPECT_EQ(pool_recs(1), (Recs{{"b", "A"}}));
    // An O_TRUNC of the replaced target, nothing written: its release empties nothing.
    set_pool(1, {{"a", "A"}, {"b", "B"}});
    Fd trunc(mnt("guest/b"), O_WRONLY | O_TRUNC);
    ASSERT_GE(trunc.get(), 0);
    ASSERT_EQ(::rename(mnt("guest/a").c_str(), mnt("guest/b").c_str()), 0);
    EXPECT_EQ(trunc.close(), 0);
    ASSERT_TRUE(requests_answered());  // the release that comes after close
    EXPECT_EQ(pool_recs(1), (Recs{{"b", "A"}}));
}

TEST_F(KvpfsTest, HandleAfterRmWritesSucceedAndStoreNothing) {
    set_pool(1, {{"c", "C"}, {"other", "o"}});
    Fd fd(mnt("guest/c"), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd.get(), 0);
    ASSERT_EQ(::unlink(mnt("guest/c").c_str()), 0);
    const std::string before = pool_raw(1);
    EXPECT_EQ(fd.write("back?\n"), 0);
    EXPECT_EQ(::fsync(fd.get()), 0);
    EXPECT_EQ(fd.close(), 0);
    EXPECT_TRUE(pool_becomes(
        *this, [&] { return pool_recs(1); }, Recs{{"other", "o"}}));
    EXPECT_TRUE(pool_kept(1, before));
    EXPECT_EQ(stat_errno("guest/c"), ENOENT);
}

TEST_F(KvpfsTest, CreateWhoseWritesAreAllRefusedLeavesNoKey) {
    set_pool(1, {{"other", "o"}});
    const std::string before = pool_raw(1);
    for (int flags : {O_WRONLY | O_CREAT, O_WRONLY | O_CREAT | O_EXCL, O_WRONLY | O_CREAT | O_TRUNC,
                      O_WRONLY | O_CREAT | O_APPEND}) {
        Fd fd(mnt("guest/new"), flags);
        ASSERT_GE(fd.get(), 0) << flags;
        EXPECT_TRUE(pool_kept(1, before)) << "the open only reserves the name";
        EXPECT_EQ(stat_errno("guest/new"), 0);
        EXPECT_EQ(fd.write(std::string(1100, 'x')), EFBIG);
        EXPECT_EQ(fd.write(std::string("a\0b", 3)), EINVAL);
        EXPECT_EQ(fd.close(), EINVAL);  // the last refused write's errno
        EXPECT_TRUE(pool_kept(1, before));
        EXPECT_EQ(stat_errno("guest/new"), ENOENT) << "the name goes with the last close";
    }
}

TEST_F(KvpfsTest, CreateWithNothingWrittenMakesAnEmptyKeyAtClose) {
    Fd fd(mnt("guest/flag"), O_WRONLY | O_CREAT | O_EXCL);
    ASSERT_GE(fd.get(), 0);
    EXPECT_EQ(pool_raw(1), "");
    EXPECT_EQ(fd.close(), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"flag", ""}})) << "stored before close() returns";
    // O_EXCL on a reserved or existing name is EEXIST.
    Fd again(mnt("guest/flag"), O_WRONLY | O_CREAT | O_EXCL);
    EXPECT_EQ(again.get(), -1);
    EXPECT_EQ(errno, EEXIST);
}

// "A change made through the mount is in the pool file before close() returns": an O_TRUNC
// with nothing written stores the empty value at the process's last close, not at the
// release the kernel sends after close() returned (which could land after the process's next
// command wrote).
TEST_F(KvpfsTest, OTruncWithNothingWrittenIsStoredWhenCloseReturns) {
    for (int i = 0; i < 20; ++i) {
        set_pool(1, {{"k", "old"}});
        Fd fd(mnt("guest/k"), O_WRONLY | O_TRUNC);
        ASSERT_GE(fd.get(), 0);
        ASSERT_EQ(fd.close(), 0);
        ASSERT_EQ(pool_recs(1), (Recs{{"k", ""}})) << "trial " << i;
    }
    // A shell's `: > K` opens, dup2()s and closes twice: stored when the command returns.
    for (int i = 0; i < 10; ++i) {
        set_pool(1, {{"k", "old"}});
        std::string out;
        ASSERT_EQ(run_program({"bash", "-c", ": > \"$1\"", "bash", mnt("guest/k")}, &out), 0)
            << out;
        ASSERT_EQ(pool_recs(1), (Recs{{"k", ""}})) << "trial " << i;
    }
}

// While another process holds the pool's lock, `: > K; echo zz > K` ends with zz: the empty
// value waits in the first command's close, never behind the second command's write.
TEST_F(KvpfsTest, ATruncationThatWaitedForTheLockNeverLandsAfterTheNextWrite) {
    for (int i = 0; i < 4; ++i) {
        set_pool(1, {{"k", "old"}});
        auto held = std::make_unique<HeldLock>(pool_path(1));
        std::thread release([&held] {
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            held.reset();
        });
        std::string out;
        const int rc = run_program(
            {"bash", "-c", ": > \"$1\"; echo zz > \"$1\"", "bash", mnt("guest/k")}, &out);
        release.join();
        ASSERT_EQ(rc, 0) << out;
        ASSERT_TRUE(requests_answered());
        ASSERT_EQ(pool_recs(1), (Recs{{"k", "zz"}})) << "trial " << i;
    }
}

TEST_F(KvpfsTest, MknodReservesTheNameUntilAWriteStoresIt) {
    set_pool(1, {{"other", "o"}});
    const std::string before = pool_raw(1);
    ASSERT_EQ(::mknod(mnt("guest/node").c_str(), S_IFREG | 0644, 0), 0);
    EXPECT_TRUE(pool_kept(1, before));
    EXPECT_EQ(stat_errno("guest/node"), 0);
    EXPECT_EQ(::mknod(mnt("guest/node").c_str(), S_IFREG | 0644, 0), -1);
    EXPECT_EQ(errno, EEXIST);
    Fd fd(mnt("guest/node"), O_WRONLY);
    ASSERT_GE(fd.get(), 0);
    EXPECT_EQ(fd.write("v\n"), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"other", "o"}, {"node", "v"}}));
    EXPECT_EQ(fd.close(), 0);
}

TEST_F(KvpfsTest, RefusedFirstWriteAfterOTruncKeepsTheOldValue) {
    set_pool(1, {{"k", "old"}});
    const std::string before = pool_raw(1);
    for (const std::string& bad :
         {std::string(1100, 'x'), std::string("a\0", 2), std::string("\xff")}) {
        Fd fd(mnt("guest/k"), O_WRONLY | O_TRUNC);
        ASSERT_GE(fd.get(), 0);
        EXPECT_NE(fd.write(bad), 0);
        EXPECT_NE(fd.close(), 0);  // the refused write's errno again
        // Also after release: a refused write means the O_TRUNC is never applied.
        ASSERT_TRUE(requests_answered());
        EXPECT_TRUE(pool_kept(1, before));
    }
}

TEST_F(KvpfsTest, ErrorsStayTheSameOnRetry) {
    set_pool(1, {{"big", "old"}});
    const std::string before = pool_raw(1);
    Fd fd(mnt("guest/big"), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd.get(), 0);
    const std::string big(2000, 'a');
    EXPECT_EQ(fd.write(big), EFBIG);
    EXPECT_EQ(fd.write(big), EFBIG);  // Python's close retries the flush: the same answer
    EXPECT_EQ(::fsync(fd.get()), -1);
    EXPECT_EQ(errno, EFBIG);
    const int dup = ::dup(fd.get());
    EXPECT_EQ(::close(dup), -1);
    EXPECT_EQ(errno, EFBIG);
    EXPECT_EQ(fd.close(), EFBIG);
    EXPECT_TRUE(pool_kept(1, before));
    // The same through Python's own file objects (never EIO).
    std::string out;
    const int rc = run_program({"python3", "-c",
                                "import pathlib,sys\n"
                                "try:\n pathlib.Path(sys.argv[1]).write_text('a'*2000)\n"
                                "except OSError as e:\n print(e.errno); sys.exit(3)\n",
                                mnt("guest/big")},
                               &out);
    EXPECT_EQ(rc, 3) << out;
    EXPECT_EQ(out, std::to_string(EFBIG) + "\n");
    EXPECT_TRUE(pool_kept(1, before));
}

TEST_F(KvpfsTest, UnfinishedUtf8IsHeldUntilALaterWriteFinishesIt) {
    set_pool(1, {{"k", "old"}});
    const std::string before = pool_raw(1);
    {
        Fd fd(mnt("guest/k"), O_WRONLY | O_TRUNC);
        ASSERT_GE(fd.get(), 0);
        EXPECT_EQ(fd.write("\xE2"), 0);
        EXPECT_TRUE(pool_kept(1, before));  // held: nothing stored, the O_TRUNC not applied
        EXPECT_EQ(fd.write("\x82"), 0);
        EXPECT_TRUE(pool_kept(1, before));
        EXPECT_EQ(fd.write("\xAC"), 0);  // € finished
        EXPECT_EQ(pool_recs(1), (Recs{{"k", "\xE2\x82\xAC"}}));
        EXPECT_EQ(fd.write("1\xC3"), 0);  // "1" stored, the lead byte held
        EXPECT_EQ(pool_recs(1), (Recs{{"k",
                                       "\xE2\x82\xAC"
                                       "1"}}));
        EXPECT_EQ(fd.write("\xA9\n"), 0);
        EXPECT_EQ(fd.close(), 0);
        EXPECT_EQ(pool_recs(1), (Recs{{"k",
                                       "\xE2\x82\xAC"
                                       "1\xC3\xA9"}}));
    }
    set_pool(1, {{"k", "old"}});
    // close() before the sequence is finished: EINVAL, and that part is not stored.
    Fd fd(mnt("guest/k"), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd.get(), 0);
    EXPECT_EQ(fd.write("\xF0\x9F"), 0);
    EXPECT_EQ(fd.close(), EINVAL);
    ASSERT_TRUE(requests_answered());
    EXPECT_TRUE(pool_kept(1, before));
    EXPECT_NE(daemon_log().find("unfinished UTF-8"), std::string::npos) << daemon_log();
    // A byte no continuation can make valid is refused at once.
    Fd bad(mnt("guest/k"), O_WRONLY | O_TRUNC);
    EXPECT_EQ(bad.write("\xE0\x80"), EINVAL);
    EXPECT_EQ(bad.close(), EINVAL);
    EXPECT_TRUE(pool_kept(1, before));
}

// Every close() of a descriptor flushes, also a child's that only inherited the handle (a
// fork, an exec closing FD_CLOEXEC descriptors): that close answers EINVAL while a sequence is
// unfinished, but the held bytes stay for the write that finishes them.
TEST_F(KvpfsTest, CloseOfAnotherDescriptorKeepsTheHeldUtf8) {
    set_pool(1, {{"k", "old"}});
    const std::string before = pool_raw(1);
    Fd fd(mnt("guest/k"), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd.get(), 0);
    EXPECT_EQ(fd.write("caf\xC3"), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "caf"}}));
    const int dup = ::dup(fd.get());
    EXPECT_EQ(::close(dup), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(fd.write("\xA9\n"), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "caf\xC3\xA9"}}));
    EXPECT_EQ(fd.close(), 0);
    // The same through the shell: each external printf's exit closes its copy of the handle.
    set_pool(1, {});
    std::string out;
    EXPECT_EQ(run_program({"bash", "-c",
                           "{ /usr/bin/printf 'caf\\xc3'; /usr/bin/printf '\\xa9\\n'; } > \"$1\"",
                           "bash", mnt("guest/shell")},
                          &out),
              0)
        << out;
    EXPECT_EQ(pool_recs(1), (Recs{{"shell", "caf\xC3\xA9"}}));
    // A create whose last close comes inside the sequence leaves no key.
    Fd create(mnt("guest/new"), O_WRONLY | O_CREAT | O_EXCL);
    ASSERT_GE(create.get(), 0);
    EXPECT_EQ(create.write("\xE2\x82"), 0);
    EXPECT_EQ(::close(::dup(create.get())), -1);
    EXPECT_EQ(create.close(), EINVAL);
    // The release comes just after the last close.
    EXPECT_TRUE(eventually([&] { return stat_errno("guest/new") == ENOENT; }));
    EXPECT_EQ(pool_recs(1), (Recs{{"shell", "caf\xC3\xA9"}}));
}

// A refused ftruncate, like a refused write, stores nothing: `truncate -s 5 guest/new` fails
// with EINVAL and leaves no empty key behind; an O_TRUNC whose ftruncate was refused keeps the
// old value.
TEST_F(KvpfsTest, CreateWhoseTruncateIsRefusedLeavesNoKey) {
    set_pool(1, {{"k", "old"}});
    const std::string before = pool_raw(1);
    std::string out;
    EXPECT_NE(run_program({"truncate", "-s", "5", mnt("guest/new")}, &out), 0);
    EXPECT_NE(out.find("Invalid argument"), std::string::npos) << out;
    {
        Fd fd(mnt("guest/k"), O_WRONLY | O_TRUNC);
        ASSERT_GE(fd.get(), 0);
        EXPECT_EQ(::ftruncate(fd.get(), 5), -1);
        EXPECT_EQ(errno, EINVAL);
        EXPECT_EQ(fd.close(), 0);
    }
    // The release comes just after the last close.
    EXPECT_TRUE(eventually([&] { return stat_errno("guest/new") == ENOENT; }));
    ASSERT_TRUE(requests_answered());  // k's release, too
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "old"}}));
    EXPECT_TRUE(pool_raw(1) == before);
}

TEST_F(KvpfsTest, FtruncateCutsTheCurrentValue) {
    set_pool(1, {{"k", "abcdef"}});
    Fd fd(mnt("guest/k"), O_RDWR);
    ASSERT_GE(fd.get(), 0);
    ASSERT_EQ(::ftruncate(fd.get(), 3), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "abc"}}));
    const std::string before = pool_raw(1);
    EXPECT_EQ(::ftruncate(fd.get(), 10), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_TRUE(pool_kept(1, before));
    EXPECT_EQ(fd.close(), 0);
}

// Writes through one handle race renames of its key back and forth (and one more write after
// each rename): every write lands under the name the handle has at that moment, so the pool
// never holds both names.
TEST_F(KvpfsTest, WritesRacingRenamesNeverLandUnderAnOldName) {
    set_pool(1, {{"a", "start"}});
    Fd fd(mnt("guest/a"), O_WRONLY);
    ASSERT_GE(fd.get(), 0);
    std::atomic<bool> stop{false};
    std::atomic<int> writes{0};
    std::thread writer([&] {
        while (!stop.load()) {
            if (::pwrite(fd.get(), "w", 1, 0) == 1) {
                writes.fetch_add(1);
            }
        }
    });
    int renames = 0;
    for (int i = 0; i < 200; ++i) {
        const bool at_a = i % 2 == 0;
        if (::rename(mnt(at_a ? "guest/a" : "guest/b").c_str(),
                     mnt(at_a ? "guest/b" : "guest/a").c_str()) == 0) {
            ++renames;
        }
        ASSERT_EQ(::pwrite(fd.get(), "w", 1, 0), 1);  // goes to the new name
        const auto recs = pool_recs(1);
        ASSERT_EQ(recs.size(), 1u) << "after rename " << i;
        ASSERT_EQ(recs[0].key, at_a ? "b" : "a");
    }
    stop = true;
    writer.join();
    EXPECT_EQ(renames, 200);
    EXPECT_GT(writes.load(), 0);
    const auto recs = pool_recs(1);
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].key, "a");
    EXPECT_EQ(recs[0].value, "wtart");
    EXPECT_EQ(fd.close(), 0);
}

class RawWriteTest : public KvpfsTest {
  protected:
    std::vector<std::string> daemon_options() const override { return {"-o", "raw"}; }
};

TEST_F(RawWriteTest, EachWriteStoresTheBytesAsWritten) {
    set_pool(1, {{"k", "ab"}});
    Fd fd(mnt("guest/k"), O_WRONLY | O_APPEND);
    ASSERT_GE(fd.get(), 0);
    EXPECT_EQ(fd.write("c\n"), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "abc\n"}}));
    EXPECT_EQ(fd.write("d"), 0);
    EXPECT_EQ(fd.close(), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "abc\nd"}}));
}

}  // namespace
}  // namespace kvptest
