// kvpctl's command line, run in-process (kvpctl::run) over real pool files on tmpfs
// (/dev/shm): every command, its output and its exit code, damaged pools included.
// `watch` and the process-level behaviour (signals, pipes) are in tests/shell/kvpctl.bats;
// `wait` against real writers in tests/shell/kvpctl_wait.bats.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pool_codec.hpp"
#include "wait_bounds.hpp"

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

using kvptest::kRecord;

// One record as hv_kvp_daemon may leave it: the string, a NUL, then `fill` (garbage); a
// string that fills its field is left unterminated (the tests' own codec, pool_codec.hpp).
std::string record(const std::string& key, const std::string& value, char fill = '\0') {
    return kvptest::encode_record_cut(key, value, fill);
}

struct Result {
    int code = -1;
    std::string out;
    std::string err;
};

class KvpctlTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char pattern[] = "/dev/shm/kvpctl_test.XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        root_ = pattern;
        dir_ = root_ + "/pools";
        ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0);
    }
    void TearDown() override {
        const std::string cmd = "rm -rf '" + root_ + "'";
        ASSERT_EQ(std::system(cmd.c_str()), 0);
    }

    // Runs kvpctl with --pool-dir set to this test's directory.
    Result run(std::vector<std::string> args, bool with_dir = true) const {
        std::vector<std::string> all{"kvpctl"};
        if (with_dir) {
            all.insert(all.end(), {"--pool-dir", dir_});
        }
        all.insert(all.end(), args.begin(), args.end());
        std::vector<const char*> argv;
        for (const auto& a : all) {
            argv.push_back(a.c_str());
        }
        argv.push_back(nullptr);
        std::ostringstream out;
        std::ostringstream err;
        Result r;
        r.code = kvpctl::run(static_cast<int>(all.size()), argv.data(), out, err);
        r.out = out.str();
        r.err = err.str();
        return r;
    }

    std::string pool_path(int n) const { return dir_ + "/.kvp_pool_" + std::to_string(n); }
    void write_pool(int n, const std::string& bytes) const {
        std::ofstream(pool_path(n), std::ios::binary | std::ios::trunc) << bytes;
    }
    std::string read_pool(int n) const {
        std::ifstream in(pool_path(n), std::ios::binary);
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }
    bool exists(int n) const {
        struct stat st {};
        return ::stat(pool_path(n).c_str(), &st) == 0;
    }

    std::string root_;
    std::string dir_;
};

// --- the command line ------------------------------------------------------------------

TEST_F(KvpctlTest, VersionAndHelpExitZero) {
    Result r = run({"--version"}, false);
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.out, StartsWith("kvpctl 0."));
    r = run({"--help"}, false);
    EXPECT_EQ(r.code, 0);
    for (const char* cmd : {"list", "get", "set", "delete", "dump", "check", "compact", "init",
                            "watch", "wait", "--pool-dir", "Exit status"}) {
        EXPECT_THAT(r.out, HasSubstr(cmd)) << cmd;
    }
}

TEST_F(KvpctlTest, EveryCommandHasHelp) {
    for (const char* cmd :
         {"list", "get", "set", "delete", "dump", "check", "compact", "init", "watch", "wait"}) {
        const Result r = run({cmd, "--help"}, false);
        EXPECT_EQ(r.code, 0) << cmd;
        EXPECT_THAT(r.out, HasSubstr(cmd)) << cmd;
        EXPECT_THAT(r.out, HasSubstr(std::string(cmd) == "init" ? "DIR" : "POOL")) << cmd;
    }
}

TEST_F(KvpctlTest, BadUseExitsTwo) {
    const std::vector<std::vector<std::string>> bad = {
        {},                           // no command
        {"frobnicate"},               // unknown command
        {"list"},                     // missing POOL
        {"list", "bogus"},            // unknown pool
        {"list", "5"},                // pools are 0-4
        {"get", "guest"},             // missing KEY
        {"set", "guest", "k"},        // missing VALUE
        {"list", "guest", "--frob"},  // unknown option
        {"set", "guest", "k", "v", "--limits", "none"},
        {"--lock-timeout", "x", "list", "guest"},
    };
    for (const auto& args : bad) {
        const Result r = run(args);
        EXPECT_EQ(r.code, 2) << ::testing::PrintToString(args);
        EXPECT_FALSE(r.err.empty()) << ::testing::PrintToString(args);
    }
}

TEST_F(KvpctlTest, MissingPoolDirectoryExitsTwoWithReason) {
    for (const auto& args : std::vector<std::vector<std::string>>{{"list", "guest"},
                                                                  {"get", "guest", "k"},
                                                                  {"set", "guest", "k", "v"},
                                                                  {"delete", "guest", "k"},
                                                                  {"dump"},
                                                                  {"check"},
                                                                  {"compact", "1"},
                                                                  {"watch"}}) {
        std::vector<std::string> all{"--pool-dir", root_ + "/nope"};
        all.insert(all.end(), args.begin(), args.end());
        const Result r = run(all, false);
        EXPECT_EQ(r.code, 2) << args[0];
        EXPECT_THAT(r.err, HasSubstr(root_ + "/nope")) << args[0];
    }
}

TEST_F(KvpctlTest, PoolDirFromEnvironmentAndOptionWins) {
    write_pool(1, record("FromEnv", "yes"));
    ::setenv("KVP_POOL_DIR", dir_.c_str(), 1);
    Result r = run({"get", "guest", "FromEnv"}, false);
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "yes\n");
    r = run({"--pool-dir", root_ + "/nope", "get", "guest", "FromEnv"}, false);
    EXPECT_EQ(r.code, 2);
    ::unsetenv("KVP_POOL_DIR");
}

TEST_F(KvpctlTest, GlobalOptionsMayFollowTheCommand) {
    write_pool(1, record("A", "1"));
    const Result r = run({"get", "guest", "A", "--pool-dir", dir_}, false);
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "1\n");
}

// --- list / get / set / delete ---------------------------------------------------------

TEST_F(KvpctlTest, ListShowsEachKeyOnceInFileOrderWithoutGarbage) {
    write_pool(1, record("B", "1", 'G') + record("", "hidden") + record("A", "2", 'G') +
                      record("B", "3") + record("C", "4").substr(0, 100));
    const Result r = run({"list", "guest"});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "B\nA\n");
    // The partial tail is ignored, and named: a pool file of the wrong size is said so.
    EXPECT_EQ(r.err, "kvpctl: warning: " + pool_path(1) +
                         " is 10340 bytes, not a whole number of 2560-byte records: its last 100 "
                         "bytes are a partial record, which every KVP reader ignores (kvpctl "
                         "check guest)\n");
}

TEST_F(KvpctlTest, ListOfMissingPoolFileIsEmpty) {
    write_pool(1, record("A", "1"));  // a pool directory, without pool 0's file
    const Result r = run({"list", "external"});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "");
    EXPECT_FALSE(exists(0));
}

TEST_F(KvpctlTest, GetPrintsFirstRecordsValueAndNewline) {
    write_pool(3, record("HostName", "first", 'X') + record("HostName", "second"));
    for (const char* pool : {"parameter", "3"}) {
        const Result r = run({"get", pool, "HostName"});
        EXPECT_EQ(r.code, 0);
        EXPECT_EQ(r.out, "first\n");
    }
}

TEST_F(KvpctlTest, GetOfAbsentKeyExitsOne) {
    write_pool(1, record("A", "1"));
    const Result r = run({"get", "guest", "B"});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_THAT(r.err, HasSubstr("no key \"B\""));
    EXPECT_EQ(run({"get", "external", "B"}).code, 1);  // no pool file at all
}

TEST_F(KvpctlTest, SetCreatesAnyPoolFileZeroFilledMode0644) {
    const mode_t old = ::umask(077);
    for (int n : {0, 4}) {
        const Result r = run({"set", std::to_string(n), "Key", "Value"});
        EXPECT_EQ(r.code, 0) << r.err;
        struct stat st {};
        ASSERT_EQ(::stat(pool_path(n).c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0644u);
        EXPECT_EQ(read_pool(n), record("Key", "Value"));
    }
    ::umask(old);
}

TEST_F(KvpctlTest, SetReplacesFirstRecordAndDropsLaterDuplicates) {
    write_pool(1, record("A", "old") + record("B", "b") + record("A", "older"));
    Result r = run({"set", "guest", "A", "new"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(read_pool(1), record("A", "new") + record("B", "b"));
    r = run({"set", "guest", "C", ""});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(run({"get", "guest", "C"}).out, "\n");
}

TEST_F(KvpctlTest, SetRefusesWhatTheLimitsForbid) {
    const std::string long_key(512, 'k');
    const std::string long_value(2048, 'v');
    EXPECT_EQ(run({"set", "guest", long_key, "v"}).code, 2);
    EXPECT_EQ(run({"set", "guest", "k", long_value}).code, 2);
    // The default is the mount's: what the host receives intact (UTF-8, 254/1022 UTF-16
    // units), for every pool.
    for (const char* pool : {"guest", "parameter", "4"}) {
        const Result r = run({"set", pool, "k", "\xff"});
        EXPECT_EQ(r.code, 2) << pool;
        EXPECT_THAT(r.err, HasSubstr("value"));
        EXPECT_EQ(run({"set", pool, "k", std::string(1023, 'v')}).code, 2) << pool;
        EXPECT_EQ(run({"set", pool, std::string(255, 'k'), "v"}).code, 2) << pool;
    }
    EXPECT_EQ(run({"set", "guest", std::string(254, 'k'), std::string(1022, 'v')}).code, 0);
    EXPECT_EQ(run({"list", "parameter"}).out, "");
    // --limits pool relaxes them to the file format's: 511/2047 bytes, any bytes but NUL.
    EXPECT_EQ(
        run({"set", "guest", std::string(511, 'k'), std::string(2047, 'v'), "--limits", "pool"})
            .code,
        0);
    EXPECT_EQ(run({"set", "guest", "k", "\xff", "--limits", "pool"}).code, 0);
    EXPECT_EQ(run({"set", "guest", "", "v"}).code, 2);  // an empty key is no key
}

// Holes are filled from the end of the file (docs/behaviour.md §2), so only the set of keys left is
// fixed. Deleting two records of one key is where a hole can be filled from a hole.
std::vector<std::string> sorted_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    std::sort(lines.begin(), lines.end());
    return lines;
}

TEST_F(KvpctlTest, DeleteRemovesEveryRecordOfTheKey) {
    write_pool(1, record("A", "1") + record("B", "2") + record("A", "3") + record("C", "4"));
    Result r = run({"delete", "guest", "A"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(sorted_lines(run({"list", "guest"}).out), ElementsAre("B", "C"));
    EXPECT_EQ(run({"get", "guest", "C"}).out, "4\n");
    EXPECT_EQ(read_pool(1).size(), 2 * kRecord);
    r = run({"delete", "guest", "A"});
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err, HasSubstr("no key \"A\""));
}

TEST_F(KvpctlTest, DeleteInMissingPoolExitsOneAndCreatesNothing) {
    write_pool(1, record("A", "1"));  // a pool directory, without pool 0's file
    EXPECT_EQ(run({"delete", "external", "A"}).code, 1);
    EXPECT_FALSE(exists(0));
}

TEST_F(KvpctlTest, LockHeldElsewhereFailsWithEagainAfterTimeout) {
    write_pool(1, record("A", "1"));
    const int fd = ::open(pool_path(1).c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);  // cloud-init's kind of lock, another description
    const Result r = run({"--lock-timeout", "1", "dump", "guest"});
    EXPECT_EQ(r.code, 2);
    EXPECT_THAT(r.err, HasSubstr("Resource temporarily unavailable"));
    ::close(fd);
    EXPECT_EQ(run({"--lock-timeout", "1", "dump", "guest"}).code, 0);
}

// --- dump ------------------------------------------------------------------------------

std::string damaged_pool() {
    return record("A", "1", 'G') +                // #0, garbage after the NULs
           record("", "orphan") +                 // #1 empty key
           record("A", "old") +                   // #2 duplicate of #0
           record(std::string(512, 'K'), "x") +   // #3 key without NUL
           record("U", "\xff\xfe") +              // #4 value not UTF-8
           record("V", std::string(2048, 'v')) +  // #5 value without NUL
           record("Line", "a\nb\t\"c\"\\") +      // #6 needs escaping
           record("T", "tail").substr(0, 700);    // #7 partial
}

TEST_F(KvpctlTest, DumpShowsEveryRecordAsItIsInFileOrder) {
    write_pool(1, damaged_pool());
    const Result r = run({"dump", "guest"});
    EXPECT_EQ(r.code, 0) << r.err;
    std::vector<std::string> lines;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    ASSERT_EQ(lines.size(), 9u) << r.out;
    EXPECT_EQ(lines[0], "# guest: " + pool_path(1) + ", 7 records, 18620 bytes");
    EXPECT_EQ(lines[1], "guest #0 \"A\" = \"1\"");
    EXPECT_EQ(lines[2], "guest #1 \"\" = \"orphan\"  (empty key: not listed)");
    EXPECT_EQ(lines[3], "guest #2 \"A\" = \"old\"  (duplicate of #0)");
    EXPECT_EQ(lines[4],
              "guest #3 \"" + std::string(512, 'K') + "\" = \"x\"  (key field has no NUL)");
    EXPECT_EQ(lines[5], "guest #4 \"U\" = \"\\xff\\xfe\"");
    EXPECT_EQ(lines[6],
              "guest #5 \"V\" = \"" + std::string(2048, 'v') + "\"  (value field has no NUL)");
    EXPECT_EQ(lines[7], R"(guest #6 "Line" = "a\nb\t\"c\"\\")");
    EXPECT_EQ(lines[8], "guest #7 \"T\" = \"tail\"  (partial record: 700 of 2560 bytes)");
}

TEST_F(KvpctlTest, DumpWithoutPoolShowsAllFiveAndMissingOnes) {
    write_pool(2, record("OSName", "Debian"));
    write_pool(4, "");
    const Result r = run({"dump"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out,
              "# external: " + pool_path(0) + " does not exist\n" + "# guest: " + pool_path(1) +
                  " does not exist\n" + "# auto: " + pool_path(2) + ", 1 record, 2560 bytes\n" +
                  "auto #0 \"OSName\" = \"Debian\"\n" + "# parameter: " + pool_path(3) +
                  " does not exist\n" + "# internal: " + pool_path(4) + ", 0 records, 0 bytes\n");
}

TEST_F(KvpctlTest, DumpJsonHasPoolIndexKeyValue) {
    write_pool(1, damaged_pool());
    const Result r = run({"dump", "--json", "1"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto json = nlohmann::json::parse(r.out);
    ASSERT_TRUE(json.is_array());
    ASSERT_EQ(json.size(), 8u);
    for (std::size_t i = 0; i < json.size(); ++i) {
        EXPECT_EQ(json[i]["pool"], "guest");
        EXPECT_EQ(json[i]["index"], i);
        EXPECT_TRUE(json[i]["key"].is_string());
        EXPECT_TRUE(json[i]["value"].is_string());
        EXPECT_EQ(json[i]["offset"], i * kRecord);
        EXPECT_EQ(json[i]["partial"], i == 7);
    }
    EXPECT_EQ(json[0]["key"], "A");
    EXPECT_EQ(json[0]["value"], "1");
    EXPECT_EQ(json[2]["duplicate_of"], 0);
    EXPECT_TRUE(json[0]["duplicate_of"].is_null());
    EXPECT_EQ(json[3]["key_unterminated"], true);
    EXPECT_EQ(json[4]["value_hex"], "fffe");  // the exact bytes where UTF-8 cannot say them
    EXPECT_EQ(json[5]["value_unterminated"], true);
    EXPECT_EQ(json[6]["value"], "a\nb\t\"c\"\\");
    EXPECT_EQ(json[7]["key"], "T");
    EXPECT_EQ(json[7]["bytes"], 700);
}

TEST_F(KvpctlTest, DumpJsonOfNothingIsAnEmptyArray) {
    const Result r = run({"dump", "--json"});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json::array());
}

// --- check -----------------------------------------------------------------------------

TEST_F(KvpctlTest, CheckNamesEveryProblemWithItsIndex) {
    write_pool(1, damaged_pool() + "");
    write_pool(2, record("A", "1") + record("B", "2"));
    const Result r = run({"check"});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(
        r.out,
        "external: no pool file (" + pool_path(0) +
            ")\n"
            "guest #2: duplicate of key \"A\" (first record #0; this one is never read)\n"
            "guest #3: key field has no NUL terminator (512 bytes)\n"
            "guest #4: value of \"U\" is not valid UTF-8: \"\\xff\\xfe\"\n"
            "guest #5: value field has no NUL terminator (2048 bytes)\n"
            "guest #7: partial record at offset 17920: 700 of 2560 bytes (ignored when reading)\n"
            "guest: 5 problems in 7 records and a partial tail\n"
            "auto: ok, 2 records\n"
            "parameter: no pool file (" +
            pool_path(3) +
            ")\n"
            "internal: no pool file (" +
            pool_path(4) + ")\n");
}

TEST_F(KvpctlTest, CheckFindsKeysThatAreNotUtf8) {
    write_pool(0, record("\xc3\x28", "v"));
    const Result r = run({"check", "external"});
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.out, HasSubstr("external #0: key is not valid UTF-8: \"\\xc3(\""));
}

TEST_F(KvpctlTest, CheckOfHealthyPoolExitsZero) {
    write_pool(1, record("A", "1", 'G') + record("", "") + record("B", "\xc3\xa9t\xc3\xa9"));
    const Result r = run({"check", "guest"});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "guest: ok, 3 records\n");
}

// --- compact ---------------------------------------------------------------------------

TEST_F(KvpctlTest, CompactDropsDuplicatesAndTailAndSaysSo) {
    write_pool(1, record("A", "1") + record("B", "2") + record("A", "old") + record("C", "3") +
                      record("B", "older") + record("T", "tail").substr(0, 100));
    const Result r = run({"compact", "guest"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out,
              "guest: dropped #2 \"A\" = \"old\" (duplicate of #0)\n"
              "guest: dropped #4 \"B\" = \"older\" (duplicate of #1)\n"
              "guest: cut a partial record of 100 bytes at offset 12800\n"
              "guest: compacted: 5 -> 3 records, 12900 -> 7680 bytes\n");
    EXPECT_THAT(r.err, HasSubstr("partial record"));  // the engine's warning
    const std::string after = read_pool(1);
    ASSERT_EQ(after.size(), 3 * kRecord);
    EXPECT_EQ(run({"get", "guest", "A"}).out, "1\n");
    EXPECT_EQ(run({"get", "guest", "B"}).out, "2\n");
    EXPECT_EQ(run({"get", "guest", "C"}).out, "3\n");
    EXPECT_EQ(run({"check", "guest"}).code, 0);
}

TEST_F(KvpctlTest, CompactKeepsEveryKeyWhenHolesAreNextToEachOther) {
    write_pool(1, record("A", "a1") + record("B", "b1") + record("A", "a2") + record("B", "b2") +
                      record("C", "c"));
    const Result r = run({"compact", "guest"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(sorted_lines(run({"list", "guest"}).out), ElementsAre("A", "B", "C"));
    EXPECT_EQ(run({"get", "guest", "A"}).out, "a1\n");
    EXPECT_EQ(run({"get", "guest", "B"}).out, "b1\n");
    EXPECT_EQ(run({"get", "guest", "C"}).out, "c\n");
    EXPECT_EQ(read_pool(1).size(), 3 * kRecord);
}

TEST_F(KvpctlTest, CompactOfCleanOrMissingPoolChangesNothing) {
    const std::string clean = record("A", "1", 'G') + record("B", "2");
    write_pool(1, clean);
    Result r = run({"compact", "guest"});
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, "guest: nothing to compact, 2 records\n");
    EXPECT_EQ(read_pool(1), clean);  // garbage after the NULs stays: nothing asked for it
    r = run({"compact", "0"});
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.out, HasSubstr("no pool file"));
    EXPECT_FALSE(exists(0));
}

// Compacting moves the file's last record into a hole; a record whose key field has no NUL
// must move byte for byte (the engine once re-encoded it and failed).
TEST_F(KvpctlTest, CompactMovesAnUnterminatedRecordIntact) {
    const std::string odd = record(std::string(512, 'K'), "x");
    write_pool(1, record("A", "1") + record("A", "2") + odd);
    const Result r = run({"compact", "guest"});
    EXPECT_EQ(r.code, 0) << r.err;
    // Compared as a bool: a failure would print 5 KiB of NULs.
    EXPECT_TRUE(read_pool(1) == record("A", "1") + odd) << "pool size " << read_pool(1).size();
}

// --- init ------------------------------------------------------------------------------

TEST_F(KvpctlTest, InitCreatesFivePoolFilesMode0644AndKeepsExisting) {
    const std::string dir = root_ + "/new/pools";
    const mode_t old = ::umask(077);
    Result r = run({"init", dir}, false);
    ::umask(old);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, dir + ": created 5 pool files (0 already there)\n");
    for (int n = 0; n < 5; ++n) {
        struct stat st {};
        ASSERT_EQ(::stat((dir + "/.kvp_pool_" + std::to_string(n)).c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 07777, 0644u);
        EXPECT_EQ(st.st_size, 0);
    }
    write_pool(1, record("Keep", "me"));
    r = run({"init", dir_}, false);
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out, dir_ + ": created 4 pool files (1 already there)\n");
    EXPECT_EQ(read_pool(1), record("Keep", "me"));
}

TEST_F(KvpctlTest, InitSampleWritesAnAzureHostsParameterPoolAndLeavesAutoEmpty) {
    const Result r = run({"init", dir_, "--sample"}, false);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("parameter: wrote 16 sample keys"));
    EXPECT_THAT(r.out, Not(HasSubstr("auto:")));
    EXPECT_EQ(run({"list", "parameter"}).out,
              "HostName\nHostingSystemEditionId\nHostingSystemNestedLevel\n"
              "HostingSystemOsMajor\nHostingSystemOsMinor\nHostingSystemProcessorArchitecture\n"
              "HostingSystemProcessorIdleStateMax\nHostingSystemProcessorThrottleMax\n"
              "HostingSystemProcessorThrottleMin\nHostingSystemSpMajor\nHostingSystemSpMinor\n"
              "PhysicalHostName\nPhysicalHostNameFullyQualified\n"
              "VirtualMachineDynamicMemoryBalancingEnabled\nVirtualMachineId\n"
              "VirtualMachineName\n");
    // As on a real VM: hv_kvp_daemon never stores the auto pool.
    EXPECT_EQ(run({"list", "auto"}).out, "");
    EXPECT_EQ(read_pool(2), "");
    EXPECT_EQ(run({"get", "parameter", "HostingSystemOsMajor"}).out, "10\n");
    EXPECT_EQ(run({"check"}).code, 0);  // sample data is clean and within the host's limits
    EXPECT_EQ(run({"list", "guest"}).out, "");
}

constexpr const char* kIntrinsicList =
    "FullyQualifiedDomainName\nIntegrationServicesVersion\nNetworkAddressIPv4\n"
    "NetworkAddressIPv6\nOSBuildNumber\nOSName\nOSMajorVersion\nOSMinorVersion\n"
    "OSVersion\nProcessorArchitecture\n";

TEST_F(KvpctlTest, IntrinsicShowsAutoAsTheHostSeesIt) {
    ASSERT_EQ(run({"init", dir_}, false).code, 0);
    EXPECT_EQ(run({"list", "auto", "--intrinsic"}).out, kIntrinsicList);
    struct utsname uts {};
    ASSERT_EQ(::uname(&uts), 0);
    const std::string release = uts.release;
    EXPECT_EQ(run({"get", "auto", "OSBuildNumber", "--intrinsic"}).out, release + "\n");
    EXPECT_EQ(run({"get", "auto", "OSVersion", "--intrinsic"}).out,
              release.substr(0, release.find('-')) + "\n");
    EXPECT_EQ(run({"get", "auto", "ProcessorArchitecture", "--intrinsic"}).out,
              std::string(uts.machine) + "\n");
    EXPECT_EQ(run({"get", "auto", "IntegrationServicesVersion", "--intrinsic"}).out, "3.1\n");
    EXPECT_EQ(run({"get", "auto", "OSMinorVersion", "--intrinsic"}).out, "\n");
    EXPECT_EQ(run({"get", "auto", "FullyQualifiedDomainName", "--intrinsic"}).code, 0);
    // Without --intrinsic, the file alone.
    EXPECT_EQ(run({"get", "auto", "OSBuildNumber"}).code, 1);
    // A record of the file comes first and wins.
    write_pool(2, record("b", "1") + record("OSName", "Custom"));
    EXPECT_EQ(run({"list", "auto", "--intrinsic"}).out,
              "b\nOSName\nFullyQualifiedDomainName\nIntegrationServicesVersion\n"
              "NetworkAddressIPv4\nNetworkAddressIPv6\nOSBuildNumber\nOSMajorVersion\n"
              "OSMinorVersion\nOSVersion\nProcessorArchitecture\n");
    EXPECT_EQ(run({"get", "auto", "OSName", "--intrinsic"}).out, "Custom\n");
    const Result absent = run({"get", "auto", "Nothing", "--intrinsic"});
    EXPECT_EQ(absent.code, 1);
    EXPECT_EQ(absent.err, "kvpctl: auto: no key \"Nothing\"\n");
    // A missing pool file is an empty pool.
    ASSERT_EQ(::unlink(pool_path(2).c_str()), 0);
    EXPECT_EQ(run({"list", "2", "--intrinsic"}).out, kIntrinsicList);
}

TEST_F(KvpctlTest, IntrinsicIsOnlyForAuto) {
    ASSERT_EQ(run({"init", dir_}, false).code, 0);
    for (const char* pool : {"guest", "parameter", "0", "4"}) {
        Result r = run({"list", pool, "--intrinsic"});
        EXPECT_EQ(r.code, 2) << pool;
        EXPECT_THAT(r.err, HasSubstr("only auto (pool 2) has intrinsic items")) << pool;
        r = run({"get", pool, "OSName", "--intrinsic"});
        EXPECT_EQ(r.code, 2) << pool;
    }
}

TEST_F(KvpctlTest, InitOverAFileFails) {
    write_pool(1, "");
    const Result r = run({"init", pool_path(1)}, false);
    EXPECT_EQ(r.code, 2);
    EXPECT_FALSE(r.err.empty());
}

// --- the display escaping --------------------------------------------------------------

TEST(Escape, KeepsUtf8AndEscapesTheRest) {
    EXPECT_EQ(kvpctl::escape("plain", false), "plain");
    EXPECT_EQ(kvpctl::escape("plain", true), "\"plain\"");
    EXPECT_EQ(kvpctl::escape("\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80", false),
              "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80");
    EXPECT_EQ(kvpctl::escape("a\"b", true), R"("a\"b")");
    EXPECT_EQ(kvpctl::escape("a\"b", false), "a\"b");
    EXPECT_EQ(kvpctl::escape("\x01\x7f\r", false), "\\x01\\x7f\\r");
    EXPECT_EQ(kvpctl::escape("\xed\xa0\x80", false), "\\xed\\xa0\\x80");  // a surrogate
    EXPECT_EQ(kvpctl::escape("\xc0\xaf", false), "\\xc0\\xaf");           // overlong
    EXPECT_EQ(kvpctl::escape("\xe2\x82", false), "\\xe2\\x82");           // cut short
}

}  // namespace

// --- one way to open a pool file (docs/reliability.md) -----------------------------------

namespace {

const std::vector<std::vector<std::string>> kEveryPoolCommand{
    {"get", "guest", "k"},    {"list", "guest"},    {"set", "guest", "k", "v"},
    {"delete", "guest", "k"}, {"dump", "guest"},    {"dump", "--json", "guest"},
    {"check", "guest"},       {"compact", "guest"}, {"wait", "guest", "k", "--timeout", "0"}};

}  // namespace

TEST_F(KvpctlTest, EveryCommandRefusesASymlinkedPoolFileTheSameWay) {
    write_pool(2, record("k", "v"));
    ASSERT_EQ(::symlink(pool_path(2).c_str(), pool_path(1).c_str()), 0);
    for (const auto& args : kEveryPoolCommand) {
        const Result r = run(args);
        EXPECT_EQ(r.code, 2) << args[0];
        EXPECT_THAT(r.err, HasSubstr("is a symbolic link; pool files are never followed"))
            << args[0];
    }
    EXPECT_EQ(read_pool(2), record("k", "v"));
}

TEST_F(KvpctlTest, EveryCommandRefusesADirectoryInAPoolFilesPlaceTheSameWay) {
    ASSERT_EQ(::mkdir(pool_path(1).c_str(), 0755), 0);
    for (const auto& args : kEveryPoolCommand) {
        const Result r = run(args);
        EXPECT_EQ(r.code, 2) << args[0];
        EXPECT_THAT(r.err, HasSubstr("is a directory, not a pool file")) << args[0];
    }
}

TEST_F(KvpctlTest, NoCommandHangsOnAFifoInAPoolFilesPlace) {
    ASSERT_EQ(::mkfifo(pool_path(1).c_str(), 0644), 0);
    for (const auto& args : kEveryPoolCommand) {
        // In a child with an alarm: a hang would otherwise hang the test.
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::alarm(10);
            const Result r = run(args);
            const bool said = r.err.find("is not a regular file") != std::string::npos;
            ::_exit(r.code == 2 && said ? 0 : 1);
        }
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        EXPECT_TRUE(WIFEXITED(status)) << args[0] << " hung (killed by signal)";
        EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0) << args[0];
    }
}

TEST_F(KvpctlTest, CheckOfAHugeSparsePoolFailsAtOnceWithASentence) {
    write_pool(1, "");
    ASSERT_EQ(::truncate(pool_path(1).c_str(), 20LL * 1024 * 1024 * 1024), 0);
    const auto start = std::chrono::steady_clock::now();
    for (const auto& args : kEveryPoolCommand) {
        const Result r = run(args);
        EXPECT_EQ(r.code, 2) << args[0];
        EXPECT_THAT(r.err, HasSubstr("more than any pool file can be")) << args[0];
    }
    // Reading 20 GiB would take minutes: "at once" is far below that.
    EXPECT_LT(std::chrono::steady_clock::now() - start, kvptest::scaled(std::chrono::seconds(5)));
}

TEST_F(KvpctlTest, CheckStreamsALargePoolInBoundedMemory) {
    write_pool(1, record("first", "v"));
    constexpr long long kSize = 300LL * 1024 * 1024 / kRecord * kRecord;  // sparse: no memory
    ASSERT_EQ(::truncate(pool_path(1).c_str(), kSize), 0);
    struct rusage before {};
    ::getrusage(RUSAGE_SELF, &before);
    const Result r = run({"check", "guest"});
    struct rusage after {};
    ::getrusage(RUSAGE_SELF, &after);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.out, HasSubstr("guest: ok, " + std::to_string(kSize / kRecord) + " records"));
    // ru_maxrss is in KiB: the file is 300 MiB, the check may not come near it.
    EXPECT_LT(after.ru_maxrss - before.ru_maxrss, 64 * 1024);
}

// --- wait: what needs no second process (the rest: tests/shell/kvpctl_wait.bats) ---------

TEST_F(KvpctlTest, WaitForAKeyThatIsThereAnswersAtOnceWithTheFirstRecord) {
    write_pool(1, record("k", "v") + record("k", "dup"));
    Result r = run({"wait", "guest", "k"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "v\n");
    r = run({"wait", "1", "k", "--value", "v", "--timeout", "0"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "v\n");
    EXPECT_EQ(r.err, "");
}

TEST_F(KvpctlTest, WaitTimesOutWithExitOneAndASentence) {
    write_pool(1, record("k", "v"));
    Result r = run({"wait", "guest", "absent", "--timeout", "0"});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err,
              "kvpctl: timed out after 0 s waiting for guest key \"absent\" to exist (still "
              "absent)\n");
    r = run({"wait", "guest", "k", "--value", "w", "--timeout", "0.05"});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err,
              "kvpctl: timed out after 0.05 s waiting for guest key \"k\" to be \"w\" (it is "
              "\"v\")\n");
    r = run({"wait", "guest", "k", "--changed", "--timeout", "0"});
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err, HasSubstr("to change (still \"v\")"));
}

TEST_F(KvpctlTest, WaitBadUseExitsTwo) {
    write_pool(1, record("k", "v"));
    const std::vector<std::vector<std::string>> bad = {
        {"wait", "guest"},
        {"wait", "bogus", "k"},
        {"wait", "guest", "k", "--value", "v", "--changed"},
        {"wait", "guest", "k", "--timeout", "-1"},
        {"wait", "guest", "k", "--timeout", "nan"},
        {"wait", "guest", "k", "--timeout", "inf"},
        {"wait", "guest", "k", "--timeout", "1e10"},
        {"wait", "guest", "k", "--timeout", "1s"},
        {"wait", "guest", "k", "--timeout"},
        {"wait", "guest", ""},
        {"wait", "guest", std::string(512, 'k')},
        {"wait", "guest", "k", "--value", std::string(2048, 'v')},
    };
    for (const auto& args : bad) {
        const Result r = run(args);
        EXPECT_EQ(r.code, 2) << ::testing::PrintToString(args);
        EXPECT_FALSE(r.err.empty()) << ::testing::PrintToString(args);
    }
    write_pool(0, "");
    const Result r = run({"--pool-dir", pool_path(0), "wait", "guest", "k"}, false);
    EXPECT_EQ(r.code, 2);
    EXPECT_THAT(r.err, HasSubstr("Not a directory"));
}

TEST_F(KvpctlTest, WaitOnAMissingPoolDirectorySaysItWaitsForIt) {
    const Result r =
        run({"--pool-dir", root_ + "/later", "wait", "guest", "k", "--timeout", "0"}, false);
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err, HasSubstr(root_ + "/later does not exist (yet); waiting for it"));
    EXPECT_THAT(r.err, HasSubstr("timed out after 0 s"));
}

TEST_F(KvpctlTest, WaitKeepsItsTimeoutWhileAnotherProcessHoldsTheLock) {
    write_pool(1, record("k", "v"));
    // Another open file description: its flock conflicts with kvpctl's like another process's.
    const int fd = ::open(pool_path(1).c_str(), O_RDWR | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::flock(fd, LOCK_EX), 0);
    const auto start = std::chrono::steady_clock::now();
    const Result r = run({"wait", "guest", "k", "--timeout", "0.3"});
    const auto took = std::chrono::steady_clock::now() - start;
    ::close(fd);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_THAT(r.err, HasSubstr("timed out after 0.3 s"));
    EXPECT_THAT(r.err, HasSubstr("lock is held"));
    // The feature under test: the 0.3 s timeout wins over the 10 s lock timeout.
    EXPECT_LT(took, std::chrono::seconds(8));
}

// --- Saying what is wrong -------------------------------------------------------------------

TEST_F(KvpctlTest, ADirectoryWithoutPoolFilesIsRefusedNamingTheLikelyMistake) {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"list", "guest"}, {"get", "guest", "A"}, {"delete", "guest", "A"}, {"check"}}) {
        const Result r = run(args);
        EXPECT_EQ(r.code, 2) << args[0];
        EXPECT_EQ(r.out, "") << args[0];
        EXPECT_THAT(r.err, HasSubstr(dir_ + " holds no pool file")) << args[0];
        EXPECT_THAT(r.err, HasSubstr("--pool-dir")) << args[0];
    }
    EXPECT_FALSE(exists(1));
}

TEST_F(KvpctlTest, ASetThatMakesTheFirstPoolFileSaysSo) {
    Result r = run({"set", "guest", "A", "1"});
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.err, HasSubstr("warning: " + dir_ + " held no pool file before"));
    EXPECT_EQ(read_pool(1), record("A", "1"));
    r = run({"set", "guest", "B", "2"});
    EXPECT_EQ(r.code, 0);
    EXPECT_THAT(r.err, Not(HasSubstr("held no pool file")));
}

TEST_F(KvpctlTest, AFileShorterThanARecordIsNamedAsNoPoolFile) {
    write_pool(1, "hello\n");
    const Result r = run({"list", "guest"});
    EXPECT_EQ(r.out, "");
    EXPECT_THAT(r.err, HasSubstr(pool_path(1) + " is 6 bytes, less than one 2560-byte record"));
    EXPECT_EQ(read_pool(1), "hello\n");
}

TEST_F(KvpctlTest, ATextFileInAPoolFilesPlaceIsNamed) {
    std::string text;
    while (text.size() < 3 * 2560) {
        text += "# a line of a text file, no NUL in it\n";
    }
    write_pool(1, text);
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{{"list", "guest"}, {"get", "guest", "x"}}) {
        const Result r = run(args);
        EXPECT_THAT(r.err, HasSubstr(pool_path(1) + " does not look like a pool file")) << args[0];
    }
    EXPECT_EQ(read_pool(1), text);
}

TEST_F(KvpctlTest, AKeyGivenAsTheMountsFileNameGetsAHint) {
    write_pool(1, record("a/b", "1"));
    Result r = run({"get", "guest", "a%2Fb"});
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err, HasSubstr("\"a%2Fb\" is how a kvpfs mount names the key \"a/b\""));
    r = run({"delete", "guest", "a%2Fb"});
    EXPECT_EQ(r.code, 1);
    EXPECT_THAT(r.err, HasSubstr("names the key \"a/b\""));
    r = run({"get", "guest", "x"});
    EXPECT_EQ(r.err, "kvpctl: guest: no key \"x\"\n");
    EXPECT_EQ(run({"get", "guest", "a/b"}).out, "1\n");
}

TEST_F(KvpctlTest, AMistypedCommandIsNamedWithTheNearestOne) {
    write_pool(1, "");
    Result r = run({"sett", "guest", "a", "b"});
    EXPECT_EQ(r.code, 2);
    EXPECT_THAT(r.err, StartsWith("kvpctl: unknown command \"sett\" (did you mean \"set\"?)"));
    EXPECT_EQ(read_pool(1), "");
    r = run({"--lock-timeout", "1", "frobnicate"});
    EXPECT_EQ(r.code, 2);
    EXPECT_THAT(r.err, StartsWith("kvpctl: unknown command \"frobnicate\"\n"));
}

TEST_F(KvpctlTest, EveryArgumentErrorCarriesThePrefix) {
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{{"set", "guest"},
                                               {"get"},
                                               {"list", "nosuchpool"},
                                               {"--lock-timeout", "abc", "list", "guest"}}) {
        const Result r = run(args);
        EXPECT_EQ(r.code, 2) << args[0];
        EXPECT_THAT(r.err, StartsWith("kvpctl: ")) << args[0];
    }
}

TEST_F(KvpctlTest, LimitsMayComeBeforeTheCommand) {
    write_pool(1, "");
    const std::string bytes_not_utf8(3, '\xff');
    EXPECT_EQ(run({"set", "guest", "A", bytes_not_utf8}).code, 2);  // host limits: refused
    const Result r = run({"--limits", "pool", "set", "guest", "A", bytes_not_utf8});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(read_pool(1), record("A", bytes_not_utf8));
}
