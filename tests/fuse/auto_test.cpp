// docs/behaviour.md §1 "auto/ as the host sees it": the records of .kvp_pool_2, then the intrinsic
// items hv_kvp_daemon computes for the host, live; -o auto=file; read-only like all of auto/.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>

#include "../intrinsic/netns_guard.hpp"
#include "mount_fixture.hpp"

namespace kvptest {
namespace {

using Strings = std::vector<std::string>;
using Clock = std::chrono::steady_clock;

const Strings kIntrinsic = {"FullyQualifiedDomainName",
                            "IntegrationServicesVersion",
                            "NetworkAddressIPv4",
                            "NetworkAddressIPv6",
                            "OSBuildNumber",
                            "OSName",
                            "OSMajorVersion",
                            "OSMinorVersion",
                            "OSVersion",
                            "ProcessorArchitecture"};

Strings plus(Strings a, const Strings& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}
Strings without(Strings a, const std::string& name) {
    a.erase(std::remove(a.begin(), a.end(), name), a.end());
    return a;
}

// What the shell makes of a variable of /etc/os-release ("" when the file is missing).
std::string os_release(const std::string& name) {
    std::string out;
    run_program({"/bin/sh", "-c", ". /etc/os-release 2>/dev/null && printf %s \"$" + name + "\""},
                &out);
    return out;
}

class AutoTest : public KvpfsTest {
  protected:
    // The names of a directory in readdir order (the fixture's list() sorts).
    [[nodiscard]] Strings listing(const std::string& rel) const {
        Strings names;
        DIR* d = ::opendir(mnt(rel).c_str());
        if (d == nullptr) {
            ADD_FAILURE() << "opendir " << rel << ": " << std::strerror(errno);
            return names;
        }
        while (const struct dirent* e = ::readdir(d)) {
            if (names.size() > 10000) {
                ADD_FAILURE() << "a listing of " << rel << " that never ends";
                break;
            }
            const std::string n = e->d_name;
            if (n != "." && n != "..") {
                names.push_back(n);
                EXPECT_EQ(e->d_type, DT_REG) << n;
            }
        }
        ::closedir(d);
        return names;
    }
};

TEST_F(AutoTest, FileRecordsThenTheTenIntrinsicItemsInTheDaemonsOrder) {
    set_pool(2, {{"zeta", "1"}, {"alpha", "2"}, {"a/b", "3"}});
    EXPECT_EQ(listing("auto"), plus({"zeta", "alpha", "a%2Fb"}, kIntrinsic));
    EXPECT_EQ(cat("auto/a%2Fb"), "3\n");
    // Only auto/ has them.
    EXPECT_EQ(listing("parameter"), Strings{});
    EXPECT_EQ(stat_errno("parameter/OSName"), ENOENT);
    EXPECT_EQ(stat_errno("guest/OSName"), ENOENT);
}

TEST_F(AutoTest, ValuesAreWhatHvKvpDaemonAnswers) {
    struct utsname uts {};
    ASSERT_EQ(::uname(&uts), 0);
    const std::string release = uts.release;
    EXPECT_EQ(cat("auto/IntegrationServicesVersion"), "3.1\n");
    EXPECT_EQ(cat("auto/OSBuildNumber"), release + "\n");
    EXPECT_EQ(cat("auto/OSVersion"), release.substr(0, release.find('-')) + "\n");
    EXPECT_EQ(cat("auto/ProcessorArchitecture"), std::string(uts.machine) + "\n");
    EXPECT_EQ(cat("auto/OSMinorVersion"), "\n");
    if (::access("/etc/os-release", R_OK) == 0) {
        EXPECT_EQ(cat("auto/OSName"), os_release("NAME") + "\n");
        EXPECT_EQ(cat("auto/OSMajorVersion"), os_release("VERSION_ID") + "\n");
    } else {
        EXPECT_EQ(cat("auto/OSName"), std::string(uts.sysname) + "\n");
    }
    // The host name, or its canonical name once the background lookup has it.
    char host[256] = {};
    ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
    const std::string fqdn = cat("auto/FullyQualifiedDomainName");
    EXPECT_TRUE(fqdn == std::string(host) + "\n" || fqdn.rfind(std::string(host) + ".", 0) == 0)
        << fqdn;
    // Like any key file: size = value + newline, read-only mode, owner root.
    struct stat st {};
    ASSERT_EQ(stat_errno("auto/IntegrationServicesVersion", &st), 0);
    EXPECT_EQ(st.st_size, 4);
    EXPECT_EQ(st.st_mode, S_IFREG | 0444);
    EXPECT_EQ(st.st_uid, 0u);
    // mtime: the mount's start while the value has not been seen to change.
    struct stat dir {};
    ASSERT_EQ(stat_errno("auto", &dir), 0);
    EXPECT_EQ(st.st_mtim.tv_sec, dir.st_mtim.tv_sec);
    EXPECT_EQ(st.st_mtim.tv_nsec, dir.st_mtim.tv_nsec);
}

TEST_F(AutoTest, AFileRecordOfTheSameNameWins) {
    set_pool(2, {{"x", "1"}, {"OSName", "Custom OS"}, {"osname", "other key"}});
    EXPECT_EQ(listing("auto"), plus({"x", "OSName", "osname"}, without(kIntrinsic, "OSName")));
    EXPECT_EQ(cat("auto/OSName"), "Custom OS\n");
    struct stat st {};
    ASSERT_EQ(stat_errno("auto/OSName", &st), 0);
    EXPECT_EQ(st.st_size, 10);
    // The record goes, the computed item is back (at the end, in its place).
    set_pool(2, {{"x", "1"}});
    EXPECT_EQ(listing("auto"), plus({"x"}, kIntrinsic));
    EXPECT_NE(cat("auto/OSName"), "Custom OS\n");
}

TEST_F(AutoTest, MissingPoolFileStillShowsTheItems) {
    ASSERT_EQ(::unlink(pool_path(2).c_str()), 0);
    EXPECT_EQ(listing("auto"), kIntrinsic);
    EXPECT_EQ(cat("auto/IntegrationServicesVersion"), "3.1\n");
    EXPECT_EQ(stat_errno("auto/NoSuchKey"), ENOENT);
    EXPECT_EQ(stat_errno("auto/%41"), EINVAL);
    EXPECT_EQ(pool_raw(2), "<missing>");  // reading creates nothing
}

TEST_F(AutoTest, ListingInSmallPiecesStaysWhole) {
    // getdents64 with a buffer of a few entries: every later READDIR starts at the offset
    // after the last entry taken, so listings resume inside the file's keys, at the switch
    // to the items and inside the items, whatever reply size the kernel asks for.
    std::vector<Rec> recs;
    Strings want;
    for (int i = 0; i < 30; ++i) {
        recs.push_back({"key-" + std::to_string(i) + std::string(40, 'x'), "v"});
        want.push_back(recs.back().key);
    }
    set_pool(2, recs);
    const int fd = ::open(mnt("auto").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    Strings seen;
    alignas(8) char buf[160];
    for (;;) {
        const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
        ASSERT_GE(n, 0) << std::strerror(errno);
        if (n == 0 || seen.size() > 10000) {
            break;
        }
        for (long at = 0; at < n;) {
            const auto* d = reinterpret_cast<const struct dirent64*>(buf + at);
            const std::string name = d->d_name;
            if (name != "." && name != "..") {
                seen.push_back(name);
            }
            at += d->d_reclen;
        }
    }
    ::close(fd);
    EXPECT_EQ(seen, plus(want, kIntrinsic));
}

TEST_F(AutoTest, EveryChangeIsRefusedAndThePoolsStayByteIdentical) {
    set_pool(2, {{"k", "v"}});
    std::array<std::string, 5> before;
    for (int n = 0; n < 5; ++n) {
        before[static_cast<std::size_t>(n)] = pool_raw(n);
    }
    auto refused = [&](const char* what, int rc, int err) {
        const int saved = errno;
        EXPECT_EQ(rc, -1) << what;
        EXPECT_EQ(saved, err) << what << ": " << std::strerror(saved);
    };
    for (const std::string name : {"OSName", "NetworkAddressIPv4", "k"}) {
        const std::string p = mnt("auto/" + name);
        refused("open for writing", ::open(p.c_str(), O_WRONLY), EACCES);
        refused("open rdwr", ::open(p.c_str(), O_RDWR), EACCES);
        refused("open trunc", ::open(p.c_str(), O_WRONLY | O_TRUNC), EACCES);
        refused("open append", ::open(p.c_str(), O_WRONLY | O_APPEND), EACCES);
        refused("unlink", ::unlink(p.c_str()), EACCES);
        refused("rename", ::rename(p.c_str(), mnt("auto/other").c_str()), EACCES);
        if (name != "k") {
            refused("rename onto", ::rename(mnt("auto/k").c_str(), p.c_str()), EACCES);
        }
        refused("rename out", ::rename(p.c_str(), mnt("guest/x").c_str()), EXDEV);
        refused("truncate", ::truncate(p.c_str(), 0), EACCES);
        refused("chmod", ::chmod(p.c_str(), 0644), EACCES);
        refused("utimes", ::utimes(p.c_str(), nullptr), EACCES);
        refused("mkdir", ::mkdir((p + "x").c_str(), 0755), EPERM);
    }
    refused("create", ::open(mnt("auto/New").c_str(), O_WRONLY | O_CREAT, 0644), EACCES);
    for (int n = 0; n < 5; ++n) {
        EXPECT_EQ(pool_raw(n), before[static_cast<std::size_t>(n)]) << "pool " << n;
    }
    EXPECT_EQ(cat("auto/IntegrationServicesVersion"), "3.1\n");
}

class AutoFileTest : public AutoTest {
  protected:
    std::vector<std::string> daemon_options() const override { return {"-o", "auto=file"}; }
};

TEST_F(AutoFileTest, ShowsThePoolFileAlone) {
    set_pool(2, {{"a", "1"}, {"OSName", "from the file"}});
    EXPECT_EQ(listing("auto"), (Strings{"a", "OSName"}));
    EXPECT_EQ(cat("auto/OSName"), "from the file\n");
    EXPECT_EQ(stat_errno("auto/IntegrationServicesVersion"), ENOENT);
    ASSERT_EQ(::unlink(pool_path(2).c_str()), 0);
    // -o cache keeps auto/ when it shows the file alone: the removal shows within the window.
    EXPECT_TRUE(shown_after_outside_change([&] { return listing("auto").empty(); }));
}

TEST(AutoOption, BadValueFailsBeforeMounting) {
    std::string out;
    EXPECT_EQ(run_program({kvpfs_binary(), "-o", "auto=both", "/tmp", "/tmp"}, &out), 2);
    EXPECT_NE(out.find("bad value for option auto: 'both' (use host or file)"), std::string::npos)
        << out;
}

class AutoRawTest : public AutoTest {
  protected:
    std::vector<std::string> daemon_options() const override { return {"-o", "raw"}; }
};

TEST_F(AutoRawTest, FilesHoldExactlyTheValue) {
    EXPECT_EQ(cat("auto/IntegrationServicesVersion"), "3.1");
    struct stat st {};
    ASSERT_EQ(stat_errno("auto/IntegrationServicesVersion", &st), 0);
    EXPECT_EQ(st.st_size, 3);
    ASSERT_EQ(stat_errno("auto/OSMinorVersion", &st), 0);
    EXPECT_EQ(st.st_size, 0);
    EXPECT_EQ(cat("auto/OSMinorVersion"), "");
}

class AutoReadOnlyTest : public AutoTest {
  protected:
    std::vector<std::string> daemon_options() const override { return {"-o", "ro"}; }
};

TEST_F(AutoReadOnlyTest, ChangesAreEroFs) {
    EXPECT_EQ(::open(mnt("auto/OSName").c_str(), O_WRONLY), -1);
    EXPECT_EQ(errno, EROFS);
    EXPECT_EQ(::unlink(mnt("auto/OSName").c_str()), -1);
    EXPECT_EQ(errno, EROFS);
    EXPECT_EQ(cat("auto/IntegrationServicesVersion"), "3.1\n");
}

// The daemon runs in a network namespace (and UTS namespace) made for the test, so the
// test knows every address there is and can pick a host name no resolver knows.
class AutoNetnsTest : public AutoTest {
  protected:
    AutoNetnsTest() : netns_(/*own_host_name=*/true) {}
    void SetUp() override {
        if (!netns_.error().empty()) {
            GTEST_SKIP() << "needs its own network namespace (root): " << netns_.error();
        }
        ASSERT_EQ(::sethostname(kHost, std::strlen(kHost)), 0) << std::strerror(errno);
        ASSERT_TRUE(ip({"link", "set", "lo", "up"}));
        ASSERT_TRUE(add_interface("kvp0"));
        KvpfsTest::SetUp();
    }
    static constexpr const char* kHost = "kvpfs-test-host-nobody-knows";
    NetnsGuard netns_;
};

TEST_F(AutoNetnsTest, AnAddressAddedWhileMountedShowsAtTheNextRead) {
    EXPECT_EQ(cat("auto/NetworkAddressIPv4"), "\n");  // loopback is left out
    EXPECT_EQ(cat("auto/NetworkAddressIPv6"), "\n");
    struct stat st1 {};
    ASSERT_EQ(stat_errno("auto/NetworkAddressIPv4", &st1), 0);
    EXPECT_EQ(st1.st_size, 1);

    ASSERT_TRUE(ip({"addr", "add", "10.9.0.1/24", "dev", "kvp0"}));
    struct stat st2 {};
    ASSERT_EQ(stat_errno("auto/NetworkAddressIPv4", &st2), 0);
    EXPECT_EQ(st2.st_size, 9);
    EXPECT_EQ(cat("auto/NetworkAddressIPv4"), "10.9.0.1\n");
    // mtime: when the change was seen, later than the mount's start.
    EXPECT_GT(st2.st_mtim.tv_sec * 1000000000L + st2.st_mtim.tv_nsec,
              st1.st_mtim.tv_sec * 1000000000L + st1.st_mtim.tv_nsec);

    ASSERT_TRUE(add_interface("kvp1"));
    ASSERT_TRUE(ip({"addr", "add", "10.9.1.1/24", "dev", "kvp1"}));
    ASSERT_TRUE(ip({"-6", "addr", "add", "2001:db8::7/64", "dev", "kvp1", "nodad"}));
    EXPECT_EQ(cat("auto/NetworkAddressIPv4"), "10.9.0.1;10.9.1.1\n");
    EXPECT_EQ(cat("auto/NetworkAddressIPv6"), "2001:db8::7\n");

    // An interface that goes away between the listing and the read: the name stays (as in
    // hv_kvp_daemon, the ten items always exist), the value follows.
    EXPECT_EQ(listing("auto"), kIntrinsic);
    ASSERT_TRUE(ip({"link", "del", "kvp1"}));
    EXPECT_EQ(cat("auto/NetworkAddressIPv4"), "10.9.0.1\n");
    EXPECT_EQ(cat("auto/NetworkAddressIPv6"), "\n");
}

TEST_F(AutoNetnsTest, AThousandAddressesAreCutAsHvKvpDaemonCutsThem) {
    std::string batch;
    for (int i = 0; i < 1000; ++i) {
        const std::string a =
            "10.30." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
        batch += "addr add " + a + "/32 dev kvp0\n";
    }
    const std::string file = base_dir() + "/batch";
    { std::ofstream(file) << batch; }
    ASSERT_TRUE(ip({"-batch", file}));
    const std::string v4 = cat("auto/NetworkAddressIPv4");
    struct stat st {};
    ASSERT_EQ(stat_errno("auto/NetworkAddressIPv4", &st), 0);
    EXPECT_EQ(static_cast<std::size_t>(st.st_size), v4.size());
    // Whole addresses only, while 18 bytes of the 2048-byte buffer are left: at most 2045.
    EXPECT_LE(v4.size(), 2046u);
    EXPECT_GT(v4.size(), 2048u - 18 - 16);
    EXPECT_EQ(v4.back(), '\n');
    EXPECT_NE(v4[v4.size() - 2], ';');
    EXPECT_EQ(v4.rfind("10.30.0.1;", 0), 0u) << v4.substr(0, 40);
}

TEST_F(AutoNetnsTest, AHangingHostNameLookupBlocksNoRequest) {
    // Route everything into an interface where nothing answers: a DNS query for this
    // host name (in no hosts file) waits for the resolver's timeouts.
    ASSERT_TRUE(ip({"addr", "add", "10.0.0.1/8", "dev", "kvp0"}));
    ASSERT_TRUE(ip({"route", "add", "default", "dev", "kvp0"}));
    std::string out;
    const int rc = run_program({"timeout", "2", "getent", "ahostsv4", kHost}, &out);
    std::printf("  getent ahostsv4 %s: exit %d (124: the lookup hangs)\n", kHost, rc);
    for (int i = 0; i < 20; ++i) {
        const auto start = Clock::now();
        EXPECT_EQ(cat("auto/FullyQualifiedDomainName"), std::string(kHost) + "\n");
        struct stat st {};
        EXPECT_EQ(stat_errno("auto/FullyQualifiedDomainName", &st), 0);
        EXPECT_EQ(listing("auto").size(), kIntrinsic.size());
        // The resolver's own timeout is 5 s a try: a blocked request takes that long.
        EXPECT_LT(Clock::now() - start, scaled(std::chrono::seconds(2))) << "read " << i;
    }
    // SIGTERM unmounts and exits at once, the lookup thread still waiting.
    const auto start = Clock::now();
    const int status = stop_daemon(SIGTERM);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << daemon_log();
    EXPECT_LT(Clock::now() - start, scaled(std::chrono::seconds(3)));
    EXPECT_FALSE(mounted());
}

}  // namespace
}  // namespace kvptest
