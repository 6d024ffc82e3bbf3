// docs/behaviour.md §5 writing through guest/, and §2's rules for what a change rewrites.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "mount_fixture.hpp"

namespace kvptest {
namespace {

using Recs = std::vector<Rec>;

TEST_F(KvpfsTest, EchoCreatesAndReplaces) {
    ASSERT_EQ(write_file("guest/k", "hello\n").err, 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "hello"}}));
    EXPECT_EQ(cat("guest/k"), "hello\n");
    ASSERT_EQ(write_file("guest/k", "bye\n").err, 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "bye"}}));
    // Every record kvpfs writes is zero-filled.
    EXPECT_EQ(pool_raw(1), encode_record("k", "bye"));
}

TEST_F(KvpfsTest, TextModeDropsExactlyOneNewline) {
    ASSERT_EQ(write_file("guest/a", "x\n\n").err, 0);
    ASSERT_EQ(write_file("guest/b", "y").err, 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"a", "x\n"}, {"b", "y"}}));
}

TEST_F(KvpfsTest, CopyOfAValueEndingInNewlineIsExact) {
    set_pool(1, {{"src", "line one\nline two\n"}});
    std::string out;
    ASSERT_EQ(run_program({"cp", mnt("guest/src"), mnt("guest/dst")}, &out), 0) << out;
    EXPECT_EQ(pool_recs(1),
              (Recs{{"src", "line one\nline two\n"}, {"dst", "line one\nline two\n"}}));
    // And out of the mount and back in again.
    ASSERT_EQ(run_program({"cp", mnt("guest/src"), base_dir() + "/copy"}, &out), 0) << out;
    ASSERT_EQ(run_program({"cp", base_dir() + "/copy", mnt("guest/back")}, &out), 0) << out;
    EXPECT_EQ(pool_recs(1).back(), (Rec{"back", "line one\nline two\n"}));
}

TEST_F(KvpfsTest, AppendAddsToTheCurrentValue) {
    set_pool(1, {{"log", "a"}});
    ASSERT_EQ(write_file("guest/log", "b\n", O_WRONLY | O_APPEND).err, 0);
    EXPECT_EQ(cat("guest/log"), "a\nb\n");
    EXPECT_EQ(pool_recs(1), (Recs{{"log", "a\nb"}}));
}

TEST_F(KvpfsTest, AnAppendToAnEmptyValueStoresJustTheData) {
    // Blank lines at the start are data: "\n\n" holds one line, as a file would.
    set_pool(1, {{"blank", ""}});
    ASSERT_EQ(write_file("guest/blank", "\n\n", O_WRONLY | O_APPEND).err, 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"blank", "\n"}}));
    set_pool(1, {{"touched", ""}});
    ASSERT_EQ(write_file("guest/touched", "x\n", O_WRONLY | O_APPEND).err, 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"touched", "x"}}));
    set_pool(1, {{"emptied", "old"}});
    ASSERT_EQ(write_file("guest/emptied", "", O_WRONLY | O_TRUNC).err, 0);
    ASSERT_EQ(write_file("guest/emptied", "z\n", O_WRONLY | O_APPEND).err, 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"emptied", "z"}}));
    // One writer's own first line left the value empty: its next append goes after it.
    set_pool(1, {{"two", ""}});
    const int fd = ::open(mnt("guest/two").c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "\n", 1), 1);
    ASSERT_EQ(::write(fd, "b\n", 2), 2);
    ASSERT_EQ(::close(fd), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"two", "\nb"}}));
}

// Each redirection of one shell is its own open: a line one left open is not continued by the
// next (a shell's builtins write from one process).
TEST_F(KvpfsTest, AppendsOfOneShellFromSeparateRedirectionsAreSeparateLines) {
    std::string out;
    ASSERT_EQ(run_program({"bash", "-c", "echo a > \"$1\"; printf b >> \"$1\"; printf c >> \"$1\"",
                           "bash", mnt("guest/k")},
                          &out),
              0)
        << out;
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "a\nb\nc"}}));
    // Within one redirection the line goes on; the writer's own first blank line is kept.
    ASSERT_EQ(run_program({"bash", "-c",
                           "{ printf x; printf y; } >> \"$1\"; : > \"$2\"; "
                           "{ echo; echo b; } >> \"$2\"",
                           "bash", mnt("guest/k"), mnt("guest/blank")},
                          &out),
              0)
        << out;
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "a\nb\nc\nxy"}, {"blank", "\nb"}}));
}

TEST_F(KvpfsTest, WritesAtOffsetsAreStoredWhenTheyReturn) {
    set_pool(1, {{"k", "abcdef"}});
    int fd = ::open(mnt("guest/k").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, "XY", 2, 2), 2);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "abXYef"}}));  // stored before write() returned
    char buf[16] = {};
    ASSERT_EQ(::pread(fd, buf, sizeof buf, 0), 7);
    EXPECT_EQ(std::string(buf, 7), "abXYef\n");
    const std::string before = pool_raw(1);
    ASSERT_EQ(::pwrite(fd, "Z", 1, 9), -1);  // a hole would be NUL bytes
    EXPECT_EQ(errno, EINVAL);
    EXPECT_TRUE(pool_kept(1, before));
    ASSERT_EQ(::pwrite(fd, "Q", 1, 0), 1);  // a refusal does not stop later writes
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "QbXYef"}}));
    EXPECT_EQ(::close(fd), -1);  // close answers the refused write's errno again
    EXPECT_EQ(errno, EINVAL);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "QbXYef"}}));
}

TEST_F(KvpfsTest, ValueIsInThePoolBeforeCloseReturnsAndOnFsync) {
    int fd = ::open(mnt("guest/k").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(pool_raw(1), "");  // the name is reserved, not in the pool
    ASSERT_EQ(::write(fd, "one\n", 4), 4);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "one"}}));  // created by the first stored write
    ASSERT_EQ(::fsync(fd), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "one"}}));
    ASSERT_EQ(::pwrite(fd, "two\n", 4, 0), 4);
    ASSERT_EQ(::close(fd), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "two"}}));
}

TEST_F(KvpfsTest, TouchCreatesEmptyAndChangesNothingWhenPresent) {
    set_pool(1, {{"old", "keep"}});
    const std::string before = pool_raw(1);
    std::string out;
    ASSERT_EQ(run_program({"touch", mnt("guest/old")}, &out), 0) << out;
    EXPECT_TRUE(pool_kept(1, before));
    ASSERT_EQ(run_program({"touch", mnt("guest/new")}, &out), 0) << out;
    EXPECT_EQ(pool_recs(1), (Recs{{"old", "keep"}, {"new", ""}}));
    EXPECT_EQ(cat("guest/new"), "\n");
}

TEST_F(KvpfsTest, TruncateCutsAndGrowingFails) {
    set_pool(1, {{"k", "abcdef"}});
    ASSERT_EQ(::truncate(mnt("guest/k").c_str(), 3), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "abc"}}));
    ASSERT_EQ(::truncate(mnt("guest/k").c_str(), 4), 0);  // value + its newline: no change
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "abc"}}));
    const std::string before = pool_raw(1);
    EXPECT_EQ(::truncate(mnt("guest/k").c_str(), 10), -1);
    EXPECT_EQ(errno, EINVAL);
    EXPECT_TRUE(pool_kept(1, before));
    std::string out;
    ASSERT_EQ(run_program({"truncate", "-s", "1", mnt("guest/k")}, &out), 0) << out;
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "a"}}));
    ASSERT_EQ(run_program({"truncate", "-s", "0", mnt("guest/k")}, &out), 0) << out;
    EXPECT_EQ(cat("guest/k"), "\n");
    EXPECT_EQ(pool_recs(1), (Recs{{"k", ""}}));  // stored when truncate returned
    // truncate(2) by path to 0 too.
    set_pool(1, {{"k", "abc"}});
    ASSERT_TRUE(shown_after_outside_change([&] { return cat("guest/k") == "abc\n"; }));
    ASSERT_EQ(::truncate(mnt("guest/k").c_str(), 0), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", ""}}));
}

TEST_F(KvpfsTest, OTruncWithoutWriteEmptiesAtTheLastClose) {
    set_pool(1, {{"k", "abc"}});
    const std::string before = pool_raw(1);
    int fd = ::open(mnt("guest/k").c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    EXPECT_TRUE(pool_kept(1, before));  // atomic O_TRUNC: nothing yet
    ASSERT_EQ(::close(fd), 0);
    // Committed by release, which the kernel sends just after the last close returns.
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (pool_recs(1) != Recs{{"k", ""}} && std::chrono::steady_clock::now() < end) {
        std::this_thread::yield();
    }
    EXPECT_EQ(pool_recs(1), (Recs{{"k", ""}})) << daemon_log();
}

// The shell's `cmd > guest/k`: open(O_TRUNC) as fd 3, dup2 to 1, close(3) (a flush),
// then the command writes. That first flush must not store an empty value.
TEST_F(KvpfsTest, ShellRedirectionCommitsOnlyTheWrittenValue) {
    set_pool(1, {{"k", "old"}});
    const std::string before = pool_raw(1);
    int fd = ::open(mnt("guest/k").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    int dup = ::dup(fd);
    ASSERT_EQ(::close(fd), 0);
    EXPECT_TRUE(pool_kept(1, before));
    const std::string big(1500, 'a');
    EXPECT_EQ(::write(dup, big.data(), big.size()), -1);
    EXPECT_EQ(errno, EFBIG);
    ::close(dup);
    EXPECT_TRUE(pool_kept(1, before));
    // And a good value through the same pattern.
    fd = ::open(mnt("guest/k").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    dup = ::dup(fd);
    ASSERT_EQ(::close(fd), 0);
    EXPECT_TRUE(pool_kept(1, before));
    ASSERT_EQ(::write(dup, "new\n", 4), 4);
    ASSERT_EQ(::close(dup), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "new"}}));
}

TEST_F(KvpfsTest, NewKeyWhoseWriteIsRefusedIsNotCreated) {
    set_pool(1, {{"other", "o"}});
    const std::string before = pool_raw(1);
    IoResult r = write_file("guest/new", std::string(1500, 'a'));
    EXPECT_EQ(r.err, EFBIG);
    EXPECT_TRUE(pool_kept(1, before));
    EXPECT_EQ(stat_errno("guest/new"), ENOENT);
    r = write_file("guest/new", std::string("a\0", 2));
    EXPECT_EQ(r.err, EINVAL);
    EXPECT_TRUE(pool_kept(1, before));
}

TEST_F(KvpfsTest, NewKeyIsThereForItsWriterBeforeTheFirstCommit) {
    int fd = ::open(mnt("guest/new").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    struct stat st {};
    EXPECT_EQ(stat_errno("guest/new", &st), 0);
    EXPECT_EQ(st.st_size, 1);  // reads as an empty value
    EXPECT_EQ(cat("guest/new"), "\n");
    EXPECT_EQ(list("guest"), std::vector<std::string>{});  // not listed: not in the pool
    EXPECT_EQ(pool_raw(1), "");
    ASSERT_EQ(::write(fd, "v\n", 2), 2);
    EXPECT_EQ(pool_recs(1), (Recs{{"new", "v"}}));
    ASSERT_EQ(::close(fd), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"new", "v"}}));
}

TEST_F(KvpfsTest, WritingADuplicateKeyLeavesOneRecordInPlace) {
    set_pool(1, {{"d", "1"}, {"x", "x"}, {"d", "2"}, {"y", "y"}, {"d", "3"}});
    ASSERT_EQ(write_file("guest/d", "new\n").err, 0);
    auto recs = pool_recs(1);
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs[0], (Rec{"d", "new"}));
    EXPECT_EQ(std::count_if(recs.begin(), recs.end(), [](const Rec& r) { return r.key == "d"; }),
              1);
    EXPECT_EQ(recs.size(), 3u);
}

TEST_F(KvpfsTest, RmDeletesEveryRecord) {
    set_pool(1, {{"d", "1"}, {"x", "x"}, {"d", "2"}});
    ASSERT_EQ(::unlink(mnt("guest/d").c_str()), 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"x", "x"}}));
    EXPECT_EQ(stat_errno("guest/d"), ENOENT);
    EXPECT_EQ(::unlink(mnt("guest/d").c_str()), -1);
    EXPECT_EQ(errno, ENOENT);
}

TEST_F(KvpfsTest, MvRenamesReplacingTheTarget) {
    set_pool(1, {{"a", "A"}, {"b", "B"}, {"c", "C"}});
    ASSERT_EQ(::rename(mnt("guest/a").c_str(), mnt("guest/b").c_str()), 0);
    auto recs = pool_recs(1);
    EXPECT_EQ(recs.size(), 2u);
    EXPECT_EQ(cat("guest/b"), "A\n");
    EXPECT_EQ(stat_errno("guest/a"), ENOENT);
    std::string out;
    ASSERT_EQ(run_program({"mv", mnt("guest/c"), mnt("guest/d%2Fe")}, &out), 0) << out;
    EXPECT_EQ(cat("guest/d%2Fe"), "C\n");
    bool found = false;
    for (const Rec& r : pool_recs(1)) {
        found = found || (r.key == "d/e" && r.value == "C");
    }
    EXPECT_TRUE(found);
}

TEST_F(KvpfsTest, CreatedNamesDecodeToKeys) {
    ASSERT_EQ(write_file("guest/a%2Fb", "1\n").err, 0);
    ASSERT_EQ(write_file("guest/%2E%2E", "2\n").err, 0);
    ASSERT_EQ(write_file("guest/50%25", "3\n").err, 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"a/b", "1"}, {"..", "2"}, {"50%", "3"}}));
    EXPECT_EQ(write_file("guest/bad%zz", "x").err, EINVAL);
    EXPECT_EQ(pool_recs(1).size(), 3u);
}

TEST_F(KvpfsTest, ValueOverTheHostLimitIsEfbigAndNothingIsStored) {
    set_pool(1, {{"k", "old"}});
    const std::string before = pool_raw(1);
    // 1022 UTF-16 units fit (plus the dropped newline); 1023 do not.
    ASSERT_EQ(write_file("guest/fits", std::string(1022, 'a') + "\n").err, 0);
    set_pool(1, {{"k", "old"}});
    IoResult r = write_file("guest/k", std::string(1023, 'b'));
    EXPECT_EQ(r.err, EFBIG);
    EXPECT_EQ(r.step, "write");
    EXPECT_TRUE(pool_kept(1, before));
    // A small write that passes is stored; one that crosses is refused and stores nothing.
    int fd = ::open(mnt("guest/k").c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "short", 5), 5);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", "short"}}));
    const std::string after_short = pool_raw(1);
    const std::string big(2000, 'c');
    EXPECT_EQ(::write(fd, big.data(), big.size()), -1);
    EXPECT_EQ(errno, EFBIG);
    EXPECT_EQ(::close(fd), -1);
    EXPECT_EQ(errno, EFBIG);
    EXPECT_EQ(pool_raw(1), after_short);
    set_pool(1, {{"k", "old"}});
    // Four-byte UTF-8 sequences count two units: 511 of them are 1022 units.
    std::string emoji;
    for (int i = 0; i < 512; ++i) {
        emoji += "\xF0\x9F\x98\x80";
    }
    EXPECT_EQ(write_file("guest/k", emoji).err, EFBIG);
    EXPECT_TRUE(pool_kept(1, before));
    EXPECT_NE(daemon_log().find("guest/k"), std::string::npos) << daemon_log();
}

TEST_F(KvpfsTest, NulByteInDataIsEinval) {
    set_pool(1, {{"k", "old"}});
    const std::string before = pool_raw(1);
    IoResult r = write_file("guest/k", std::string("a\0b", 3));
    EXPECT_EQ(r.err, EINVAL);
    EXPECT_EQ(r.step, "write");
    EXPECT_TRUE(pool_kept(1, before));
}

TEST_F(KvpfsTest, InvalidUtf8FailsTheWriteUnderHostLimits) {
    set_pool(1, {{"k", "old"}});
    const std::string before = pool_raw(1);
    IoResult r = write_file("guest/k", "bad \xC3\x28 utf8\n");
    EXPECT_EQ(r.err, EINVAL);
    EXPECT_EQ(r.step, "write");
    EXPECT_TRUE(pool_kept(1, before));
    r = write_file("guest/k", "\xff\xfe");
    EXPECT_EQ(r.err, EINVAL);
    EXPECT_EQ(r.step, "write");
    EXPECT_TRUE(pool_kept(1, before));
}

TEST_F(KvpfsTest, KeyOverTheHostLimitIsEnametoolong) {
    const std::string before = pool_raw(1);
    EXPECT_EQ(write_file("guest/" + std::string(255, 'k'), "v").err, ENAMETOOLONG);
    EXPECT_EQ(write_file("guest/bad\xFFkey", "v").err, EINVAL);
    EXPECT_TRUE(pool_kept(1, before));
    ASSERT_EQ(write_file("guest/" + std::string(254, 'k'), "v").err, 0);
    EXPECT_EQ(pool_recs(1).size(), 1u);
}

TEST_F(KvpfsTest, RenameToAnOverlongKeyFailsAndChangesNothing) {
    set_pool(1, {{"a", "A"}});
    const std::string before = pool_raw(1);
    EXPECT_EQ(::rename(mnt("guest/a").c_str(), mnt("guest/" + std::string(300, 'n')).c_str()), -1);
    EXPECT_EQ(errno, ENAMETOOLONG);
    EXPECT_TRUE(pool_kept(1, before));
}

class PoolLimitsTest : public KvpfsTest {
  protected:
    std::vector<std::string> daemon_options() const override { return {"-o", "limits=pool"}; }
};

TEST_F(PoolLimitsTest, FormatLimitsApply) {
    ASSERT_EQ(write_file("guest/k", std::string(2047, 'a') + "\n").err, 0);
    EXPECT_EQ(pool_recs(1), (Recs{{"k", std::string(2047, 'a')}}));
    const std::string before = pool_raw(1);
    EXPECT_EQ(write_file("guest/k", std::string(2048, 'b')).err, EFBIG);
    EXPECT_TRUE(pool_kept(1, before));
    ASSERT_EQ(write_file("guest/" + std::string(511, 'k'), "v").err, 0);
    EXPECT_EQ(write_file("guest/" + std::string(512, 'k'), "v").err, ENAMETOOLONG);
    ASSERT_EQ(write_file("guest/latin", "caf\xE9\n").err, 0);  // not UTF-8: fine here
    EXPECT_EQ(pool_recs(1).back(), (Rec{"latin", "caf\xE9"}));
}

}  // namespace
}  // namespace kvptest
