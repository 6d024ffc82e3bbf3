// docs/behaviour.md §1 layout, §4 reading, §2 duplicates/garbage/partial tail, §6 names (reading).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "mount_fixture.hpp"

namespace kvptest {
namespace {

using Strings = std::vector<std::string>;

TEST_F(KvpfsTest, RootShowsTheFourPoolsOnly) {
    EXPECT_EQ(list(""), (Strings{"auto", "external", "guest", "parameter"}));
    EXPECT_EQ(stat_errno(".kvp_pool_4"), ENOENT);
    EXPECT_EQ(stat_errno("internal"), ENOENT);
}

TEST_F(KvpfsTest, EachPoolFileIsItsDirectory) {
    set_pool(0, {{"ext", "0"}});
    set_pool(1, {{"gst", "1"}});
    set_pool(2, {{"aut", "2"}});
    set_pool(3, {{"par", "3"}});
    set_pool(4, {{"internal", "4"}});
    EXPECT_EQ(list("external"), Strings{"ext"});
    EXPECT_EQ(list("guest"), Strings{"gst"});
    const Strings autos = list("auto");  // the record, then the intrinsic items (auto_test.cpp)
    EXPECT_EQ(std::count(autos.begin(), autos.end(), "aut"), 1);
    EXPECT_EQ(autos.size(), 11u);
    EXPECT_EQ(list("parameter"), Strings{"par"});
    EXPECT_EQ(cat("parameter/par"), "3\n");
}

TEST_F(KvpfsTest, TextModeAddsOneNewlineAndSizeIsLengthPlusOne) {
    set_pool(3, {{"HostName", "host-01"}, {"Empty", ""}, {"NL", "two\n"}});
    EXPECT_EQ(cat("parameter/HostName"), "host-01\n");
    EXPECT_EQ(cat("parameter/Empty"), "\n");
    EXPECT_EQ(cat("parameter/NL"), "two\n\n");
    struct stat st {};
    ASSERT_EQ(stat_errno("parameter/HostName", &st), 0);
    EXPECT_EQ(st.st_size, 8);
    ASSERT_EQ(stat_errno("parameter/Empty", &st), 0);
    EXPECT_EQ(st.st_size, 1);
}

TEST_F(KvpfsTest, ReadsAtOffsetsAndInSmallPieces) {
    set_pool(3, {{"k", "abcdef"}});
    int fd = ::open(mnt("parameter/k").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    char buf[16] = {};
    EXPECT_EQ(::pread(fd, buf, 3, 2), 3);
    EXPECT_EQ(std::string(buf, 3), "cde");
    EXPECT_EQ(::pread(fd, buf, 16, 5), 2);
    EXPECT_EQ(std::string(buf, 2), "f\n");
    EXPECT_EQ(::pread(fd, buf, 16, 7), 0);
    EXPECT_EQ(::pread(fd, buf, 16, 100), 0);
    std::string all;
    while (::read(fd, buf, 1) > 0) {
        all.append(buf, 1);
    }
    EXPECT_EQ(all, "abcdef\n");
    ::close(fd);
}

TEST_F(KvpfsTest, GarbageAfterTheNulNeverShows) {
    set_pool(3, {{"key", "value"}, {"other", ""}}, /*garbage=*/true);
    EXPECT_EQ(list("parameter"), (Strings{"key", "other"}));
    EXPECT_EQ(cat("parameter/key"), "value\n");
    EXPECT_EQ(cat("parameter/other"), "\n");
}

TEST_F(KvpfsTest, ModesAndOwners) {
    set_pool(1, {{"g", "1"}});
    set_pool(0, {{"e", "1"}});
    struct stat st {};
    ASSERT_EQ(stat_errno("guest/g", &st), 0);
    EXPECT_EQ(st.st_mode, S_IFREG | 0644);
    EXPECT_EQ(st.st_uid, 0u);
    ASSERT_EQ(stat_errno("external/e", &st), 0);
    EXPECT_EQ(st.st_mode, S_IFREG | 0444);
    ASSERT_EQ(stat_errno("guest", &st), 0);
    EXPECT_EQ(st.st_mode, S_IFDIR | 0755);
    for (const char* d : {"", "external", "auto", "parameter"}) {
        ASSERT_EQ(stat_errno(d, &st), 0);
        EXPECT_EQ(st.st_mode, S_IFDIR | 0555) << d;
    }
}

TEST_F(KvpfsTest, DuplicatesReadTheFirstAndListOnce) {
    set_pool(0, {{"dup", "first"}, {"x", "1"}, {"dup", "second"}, {"dup", "third"}});
    EXPECT_EQ(list("external"), (Strings{"dup", "x"}));
    EXPECT_EQ(cat("external/dup"), "first\n");
}

TEST_F(KvpfsTest, EmptyKeysAndAPartialTailAreNotShown) {
    std::string bytes = encode_records({{"a", "1"}, {"", "hidden"}, {"b", "2"}});
    bytes += std::string(100, 'Z');
    write_locked(pool_path(0), bytes);
    EXPECT_EQ(list("external"), (Strings{"a", "b"}));
    EXPECT_EQ(cat("external/b"), "2\n");
    EXPECT_EQ(pool_raw(0), bytes);  // reading changes nothing
}

TEST_F(KvpfsTest, MissingPoolFileIsAnEmptyDirectory) {
    ASSERT_EQ(::unlink(pool_path(0).c_str()), 0);
    ASSERT_EQ(::unlink(pool_path(1).c_str()), 0);
    EXPECT_TRUE(list("external").empty());
    EXPECT_TRUE(list("guest").empty());
    EXPECT_EQ(stat_errno("external/x"), ENOENT);
    // The first write to guest/ creates .kvp_pool_1, mode 0644; nothing else is created.
    ASSERT_EQ(write_file("guest/new", "v\n").err, 0);
    struct stat st {};
    ASSERT_EQ(::stat(pool_path(1).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    EXPECT_EQ(pool_recs(1), (std::vector<Rec>{{"new", "v"}}));
    EXPECT_EQ(pool_raw(0), "<missing>");
}

TEST_F(KvpfsTest, FiveThousandKeysListedExactlyOnce) {
    std::vector<Rec> recs;
    std::set<std::string> want;
    for (int i = 0; i < 5000; ++i) {
        std::string k =
            "key-" + std::to_string(i) + std::string(static_cast<std::size_t>(i % 40), 'x');
        recs.push_back({k, std::to_string(i)});
        want.insert(k);
    }
    recs.push_back({recs[7].key, "duplicate"});  // listed once
    set_pool(0, recs);
    DIR* d = ::opendir(mnt("external").c_str());
    ASSERT_NE(d, nullptr);
    std::multiset<std::string> seen;
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") {
            seen.insert(n);
            EXPECT_EQ(e->d_type, DT_REG);
        }
    }
    ::closedir(d);
    EXPECT_EQ(seen.size(), 5000u);
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), want);
}

TEST_F(KvpfsTest, ListingStaysWholeWhileThePoolChanges) {
    std::vector<Rec> recs;
    recs.reserve(2000);
    for (int i = 0; i < 2000; ++i) {
        recs.push_back({"k" + std::to_string(i), "v"});
    }
    set_pool(0, recs);
    DIR* d = ::opendir(mnt("external").c_str());
    ASSERT_NE(d, nullptr);
    std::multiset<std::string> seen;
    int count = 0;
    while (struct dirent* e = ::readdir(d)) {
        if (++count == 10) {
            // A writer rewrites the pool mid-listing: every key gets a new value, one is added.
            std::vector<Rec> rewritten;
            for (int i = 0; i < 2000; ++i) {
                rewritten.push_back({"k" + std::to_string(i), "w"});
            }
            rewritten.push_back({"other", "x"});
            set_pool(0, rewritten);
        }
        std::string n = e->d_name;
        if (n != "." && n != "..") {
            seen.insert(n);
        }
    }
    ::closedir(d);
    // Keys that exist throughout are listed exactly once; the one added meanwhile may or may
    // not be (POSIX). The open directory holds no copy of the pool (memory, docs/behaviour.md §8).
    seen.erase("other");
    EXPECT_EQ(seen.size(), 2000u);
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 2000u);
    EXPECT_EQ(list("external").size(), 2001u);
}

TEST_F(KvpfsTest, NamesEscapeExactlyThreeCases) {
    set_pool(0, {{"CLOUD_INIT|1700000000|start|init-network/check-cache|uuid", "e"},
                 {"100%", "p"},
                 {".", "dot"},
                 {"..", "dotdot"},
                 {"sp ace\ttab", "s"}});
    EXPECT_EQ(
        list("external"),
        (Strings{"%2E", "%2E%2E", "100%25",
                 "CLOUD_INIT|1700000000|start|init-network%2Fcheck-cache|uuid", "sp ace\ttab"}));
    EXPECT_EQ(cat("external/%2E"), "dot\n");
    EXPECT_EQ(cat("external/%2E%2E"), "dotdot\n");
    EXPECT_EQ(cat("external/100%25"), "p\n");
    EXPECT_EQ(cat("external/CLOUD_INIT|1700000000|start|init-network%2Fcheck-cache|uuid"), "e\n");
    // Non-canonical escapes name no key.
    EXPECT_EQ(stat_errno("external/%41"), EINVAL);
    EXPECT_EQ(stat_errno("external/100%"), EINVAL);
    EXPECT_EQ(stat_errno("external/%2f"), EINVAL);
    EXPECT_EQ(stat_errno("external/%2Ex"), EINVAL);
}

TEST_F(KvpfsTest, MtimeIsWhenTheValueChanged) {
    set_pool(3, {{"a", "1"}, {"b", "1"}});
    struct stat a1 {
    }, b1{};
    ASSERT_EQ(stat_errno("parameter/a", &a1), 0);
    ASSERT_EQ(stat_errno("parameter/b", &b1), 0);
    // Change b only, with a pool mtime surely later.
    struct timespec later[2] = {{0, UTIME_OMIT}, {b1.st_mtim.tv_sec + 100, 0}};
    set_pool(3, {{"a", "1"}, {"b", "2"}});
    struct stat written {};
    ASSERT_EQ(::stat(pool_path(3).c_str(), &written), 0);
    if (cache_mode()) {
        // -o cache: the daemon reads the change as soon as it is made, so b's mtime is the
        // pool's mtime right after the write; the later touch changes no value and no mtime.
        ASSERT_TRUE(shown_after_outside_change([&] { return cat("parameter/b") == "2\n"; }));
    }
    ASSERT_EQ(::utimensat(AT_FDCWD, pool_path(3).c_str(), later, 0), 0);
    struct stat a2 {
    }, b2{};
    ASSERT_EQ(stat_errno("parameter/a", &a2), 0);
    ASSERT_EQ(stat_errno("parameter/b", &b2), 0);
    EXPECT_EQ(a2.st_mtim.tv_sec, a1.st_mtim.tv_sec);
    EXPECT_EQ(b2.st_mtim.tv_sec, cache_mode() ? written.st_mtim.tv_sec : b1.st_mtim.tv_sec + 100);
}

class RawTest : public KvpfsTest {
  protected:
    std::vector<std::string> daemon_options() const override { return {"-o", "raw"}; }
};

TEST_F(RawTest, FileIsExactlyTheValue) {
    set_pool(1, {{"k", "no newline"}, {"n", "with\n"}});
    EXPECT_EQ(cat("guest/k"), "no newline");
    EXPECT_EQ(cat("guest/n"), "with\n");
    struct stat st {};
    ASSERT_EQ(stat_errno("guest/k", &st), 0);
    EXPECT_EQ(st.st_size, 10);
    ASSERT_EQ(write_file("guest/w", "kept\n").err, 0);
    EXPECT_EQ(pool_recs(1).back(), (Rec{"w", "kept\n"}));
}

class OwnerTest : public KvpfsTest {
  protected:
    std::vector<std::string> daemon_options() const override { return {"-o", "uid=1234,gid=5678"}; }
};

TEST_F(OwnerTest, UidAndGidOptionsOwnEverything) {
    set_pool(1, {{"g", "1"}});
    for (const char* p : {"", "guest", "guest/g"}) {
        struct stat st {};
        ASSERT_EQ(stat_errno(p, &st), 0);
        EXPECT_EQ(st.st_uid, 1234u) << p;
        EXPECT_EQ(st.st_gid, 5678u) << p;
    }
}

}  // namespace
}  // namespace kvptest
