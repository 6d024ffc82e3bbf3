// The auto pool's intrinsic items, each against this machine or a namespace made for it.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include "auto_pool_view.hpp"
#include "canonical_name.hpp"
#include "interface_addresses.hpp"
#include "intrinsic_items.hpp"
#include "netns_guard.hpp"
#include "os_release.hpp"
#include "wait_bounds.hpp"

namespace kvptest {
namespace {

using Clock = std::chrono::steady_clock;
using Strings = std::vector<std::string>;

class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/kvp-intrinsic.XXXXXX";
        path_ = ::mkdtemp(tmpl);
    }
    ~TempDir() { (void)std::system(("rm -rf '" + path_ + "'").c_str()); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] std::string file(const std::string& name, const std::string& text) const {
        const std::string p = path_ + "/" + name;
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }
    [[nodiscard]] const std::string& path() const { return path_; }

  private:
    std::string path_;
};

// What a POSIX shell makes of `name` after sourcing `file`: the oracle os-release(5) names.
std::string shell_value(const std::string& file, const std::string& name) {
    std::string out;
    const std::string cmd = "sh -c '. \"$0\" && printf %s \"$" + name + "\"' '" + file + "'";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) {
        return "<popen failed>";
    }
    char buf[512];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
        out.append(buf, n);
    }
    const int status = ::pclose(p);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? out : "<shell failed>";
}

kvp::OsReleaseVars parse(const std::string& text) {
    return kvp::parse_os_release(text);
}

// --- os-release ---------------------------------------------------------------------

TEST(OsRelease, QuotesEscapesAndCommentsAsAShellReadsThem) {
    const std::string text =
        "# a comment line\n"
        "NAME=\"Debian GNU/Linux\"\n"
        "VERSION_ID=\"22.04.3\"\n"
        "PRETTY_NAME='It''s \"quoted\" $HOME'\n"
        "ID=debian # trailing comment\n"
        "ID_LIKE=a\\ b\\#c\n"
        "HASH=x#y\n"
        "ESC=\"a \\\"b\\\" \\\\ \\$x \\`y\\` \\n\"\n"
        "JOIN=\"ab\"'cd'ef\n"
        "EMPTY=\n"
        "EMPTYQ=\"\"\n"
        "\n"
        "   # indented comment\n"
        "MULTI=\"line1\nline2\"\n"
        "CONT=one\\\ntwo\n";
    TempDir dir;
    const std::string file = dir.file("os-release", text);
    const auto vars = parse(text);
    for (const char* name : {"NAME", "VERSION_ID", "PRETTY_NAME", "ID", "ID_LIKE", "HASH", "ESC",
                             "JOIN", "EMPTY", "EMPTYQ", "MULTI", "CONT"}) {
        ASSERT_TRUE(vars.count(name)) << name;
        EXPECT_EQ(vars.at(name), shell_value(file, name)) << name;
    }
    // The same, spelled out (so the test does not depend on the shell alone).
    EXPECT_EQ(vars.at("NAME"), "Debian GNU/Linux");
    EXPECT_EQ(vars.at("VERSION_ID"), "22.04.3");
    EXPECT_EQ(vars.at("PRETTY_NAME"), "Its \"quoted\" $HOME");
    EXPECT_EQ(vars.at("ID"), "debian");
    EXPECT_EQ(vars.at("ID_LIKE"), "a b#c");
    EXPECT_EQ(vars.at("HASH"), "x#y");
    EXPECT_EQ(vars.at("ESC"), "a \"b\" \\ $x `y` \\n");
    EXPECT_EQ(vars.at("JOIN"), "abcdef");
    EXPECT_EQ(vars.at("EMPTY"), "");
    EXPECT_EQ(vars.at("MULTI"), "line1\nline2");
    EXPECT_EQ(vars.at("CONT"), "onetwo");
    EXPECT_EQ(vars.size(), 12u);
}

TEST(OsRelease, LastAssignmentWinsAndJunkLinesAreSkipped) {
    const auto vars =
        parse("NAME=first\nnot an assignment\n=novalue\n9BAD=x\nNAME=second\r\nVERSION_ID=12\r\n");
    EXPECT_EQ(vars.at("NAME"), "second");
    EXPECT_EQ(vars.at("VERSION_ID"), "12");  // CRLF line ends do not stick to the value
    EXPECT_EQ(vars.count("9BAD"), 0u);
    EXPECT_EQ(vars.size(), 2u);
}

TEST(OsRelease, LeniencyForUnquotedSpacesAndUnterminatedQuotes) {
    // A shell would refuse both; an os-release reader should still find the name.
    auto vars = parse("NAME=Debian GNU/Linux   \nVERSION_ID=\"12\n");
    EXPECT_EQ(vars.at("NAME"), "Debian GNU/Linux");
    EXPECT_EQ(vars.at("VERSION_ID"), "12\n");
    vars = parse("NAME='open");
    EXPECT_EQ(vars.at("NAME"), "open");
    EXPECT_TRUE(parse("").empty());
    EXPECT_TRUE(parse("\\").empty());
    EXPECT_EQ(parse("A=\\").at("A"), "");
    EXPECT_EQ(parse("A=\"x\\").at("A"), "x\\");
}

TEST(OsRelease, MissingOrUnreadableFileIsNone) {
    TempDir dir;
    EXPECT_FALSE(kvp::read_os_release(dir.path() + "/missing").has_value());
    EXPECT_FALSE(kvp::read_os_release(dir.path()).has_value());  // a directory
    // A FIFO in its place (nobody writing) must not hang the reader.
    const std::string fifo = dir.path() + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0644), 0);
    EXPECT_FALSE(kvp::read_os_release(fifo).has_value());
    EXPECT_FALSE(kvp::read_os_release("/dev/zero").has_value());
    const auto vars = kvp::read_os_release(dir.file("os", "NAME=\"X Y\"\n"));
    ASSERT_TRUE(vars.has_value());
    EXPECT_EQ(vars->at("NAME"), "X Y");
}

TEST(OsRelease, ThisMachinesFileReadsAsTheShellReadsIt) {
    if (::access("/etc/os-release", R_OK) != 0) {
        GTEST_SKIP() << "no /etc/os-release here";
    }
    const auto vars = kvp::read_os_release("/etc/os-release");
    ASSERT_TRUE(vars.has_value());
    for (const auto& [name, value] : *vars) {
        EXPECT_EQ(value, shell_value("/etc/os-release", name)) << name;
    }
}

// --- the OS items -------------------------------------------------------------------

TEST(OsIdentity, NameAndVersionIdOrTheKernelsName) {
    TempDir dir;
    auto id = kvp::os_identity(dir.file("a", "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\n"), "Linux");
    EXPECT_EQ(id.name, "Ubuntu");
    EXPECT_EQ(id.major, "22.04");  // with its dot: hv_kvp_daemon does not split it
    EXPECT_EQ(id.minor, "");
    id = kvp::os_identity(dir.path() + "/missing", "Linux");
    EXPECT_EQ(id.name, "Linux");
    EXPECT_EQ(id.major, "");
    EXPECT_EQ(id.minor, "");
    // A file without NAME leaves the kernel's name, as in hv_kvp_daemon.
    id = kvp::os_identity(dir.file("b", "ID=alpine\nVERSION_ID=3.19.1\n"), "Linux");
    EXPECT_EQ(id.name, "Linux");
    EXPECT_EQ(id.major, "3.19.1");
}

TEST(KernelVersion, CutAtTheFirstDash) {
    EXPECT_EQ(kvp::kernel_version("6.1.0-13-amd64"), "6.1.0");
    EXPECT_EQ(kvp::kernel_version("5.15.0-1057-azure"), "5.15.0");
    EXPECT_EQ(kvp::kernel_version("6.18.44"), "6.18.44");
    EXPECT_EQ(kvp::kernel_version("-rc"), "");
    EXPECT_EQ(kvp::kernel_version(""), "");
}

std::string item(const kvp::IntrinsicItems& items, std::string_view name) {
    return items.value(*kvp::intrinsic_index(name));
}

TEST(IntrinsicItems, NamesInTheDaemonsOrder) {
    EXPECT_EQ(kvp::kIntrinsicNames.size(), 10u);
    EXPECT_EQ(kvp::intrinsic_index("FullyQualifiedDomainName"), 0u);
    EXPECT_EQ(kvp::intrinsic_index("IntegrationServicesVersion"), 1u);
    EXPECT_EQ(kvp::intrinsic_index("NetworkAddressIPv4"), 2u);
    EXPECT_EQ(kvp::intrinsic_index("NetworkAddressIPv6"), 3u);
    EXPECT_EQ(kvp::intrinsic_index("OSBuildNumber"), 4u);
    EXPECT_EQ(kvp::intrinsic_index("OSName"), 5u);
    EXPECT_EQ(kvp::intrinsic_index("OSMajorVersion"), 6u);
    EXPECT_EQ(kvp::intrinsic_index("OSMinorVersion"), 7u);
    EXPECT_EQ(kvp::intrinsic_index("OSVersion"), 8u);
    EXPECT_EQ(kvp::intrinsic_index("ProcessorArchitecture"), 9u);
    EXPECT_FALSE(kvp::intrinsic_index("osname").has_value());
    EXPECT_FALSE(kvp::intrinsic_index("").has_value());
}

TEST(IntrinsicItems, KernelAndOsItemsOfThisMachine) {
    struct utsname uts {};
    ASSERT_EQ(::uname(&uts), 0);
    const kvp::IntrinsicItems items;
    EXPECT_EQ(item(items, "IntegrationServicesVersion"), "3.1");
    EXPECT_EQ(item(items, "OSBuildNumber"), uts.release);
    const std::string release = uts.release;
    EXPECT_EQ(item(items, "OSVersion"), release.substr(0, release.find('-')));
    EXPECT_EQ(item(items, "ProcessorArchitecture"), uts.machine);
    EXPECT_EQ(item(items, "OSMinorVersion"), "");
    if (::access("/etc/os-release", R_OK) == 0) {
        EXPECT_EQ(item(items, "OSName"), shell_value("/etc/os-release", "NAME"));
        EXPECT_EQ(item(items, "OSMajorVersion"), shell_value("/etc/os-release", "VERSION_ID"));
    }
}

TEST(IntrinsicItems, OsReleasePathIsInjectableAndReadAtEachCall) {
    TempDir dir;
    const std::string path = dir.path() + "/os-release";
    kvp::IntrinsicSources sources;
    sources.os_release_path = path;
    const kvp::IntrinsicItems items(sources);
    struct utsname uts {};
    ASSERT_EQ(::uname(&uts), 0);
    EXPECT_EQ(item(items, "OSName"), uts.sysname);  // missing file
    EXPECT_EQ(item(items, "OSMajorVersion"), "");
    (void)dir.file("os-release", "NAME='Fedora Linux'\nVERSION_ID=40\n");
    EXPECT_EQ(item(items, "OSName"), "Fedora Linux");
    EXPECT_EQ(item(items, "OSMajorVersion"), "40");
    // A freak NAME longer than a value field is cut to 2047 bytes, on a character boundary.
    std::string huge;
    for (int i = 0; i < 1000; ++i) {
        huge += "\xC3\xA9";  // é, two bytes: byte 2047 is the second half of one
    }
    (void)dir.file("os-release", "NAME=\"" + huge + huge + "\"\n");
    const std::string cut = item(items, "OSName");
    EXPECT_EQ(cut.size(), 2046u);
    EXPECT_EQ(cut, (huge + huge).substr(0, 2046));
}

// --- addresses ----------------------------------------------------------------------

TEST(JoinAddresses, SeparatorAndTheDaemonsBufferRule) {
    EXPECT_EQ(kvp::join_addresses({}, AF_INET), "");
    EXPECT_EQ(kvp::join_addresses({"10.0.0.1"}, AF_INET), "10.0.0.1");
    EXPECT_EQ(kvp::join_addresses({"10.0.0.1", "10.0.0.2"}, AF_INET), "10.0.0.1;10.0.0.2");
    // 15-byte IPv4 addresses take 16 bytes each; one more is added while 2048 - offset >=
    // INET_ADDRSTRLEN + 2 = 18, so 127 fit (offset 2032 leaves 16): 127 * 16 - 1 bytes.
    Strings v4(300, "100.100.100.100");
    std::string joined = kvp::join_addresses(v4, AF_INET);
    EXPECT_EQ(joined.size(), 127u * 16 - 1);
    EXPECT_EQ(std::count(joined.begin(), joined.end(), ';'), 126);
    // 39-byte IPv6 addresses take 40; room needed 46 + 2 = 48, so 51 fit: 51 * 40 - 1.
    const Strings v6(100, "2001:0db8:1234:5678:9abc:def0:1234:5678");
    joined = kvp::join_addresses(v6, AF_INET6);
    EXPECT_EQ(joined.size(), 51u * 40 - 1);
    EXPECT_LE(joined.size(), 2047u);
    EXPECT_NE(joined.back(), ';');
}

class AddressesInANamespace : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!netns_.error().empty()) {
            GTEST_SKIP() << "needs a network namespace of its own (root): " << netns_.error();
        }
        ASSERT_TRUE(ip({"link", "set", "lo", "up"}));  // 127.0.0.1 and ::1, left out
    }
    NetnsGuard netns_;
};

TEST_F(AddressesInANamespace, EveryNonLoopbackAddressInGetifaddrsOrder) {
    EXPECT_EQ(kvp::interface_addresses(AF_INET), Strings{});
    EXPECT_EQ(kvp::interface_addresses(AF_INET6), Strings{});
    ASSERT_TRUE(add_interface("kvp0"));
    ASSERT_TRUE(add_interface("kvp1"));
    for (const Strings& a : std::vector<Strings>{
             {"addr", "add", "10.1.0.1/24", "dev", "kvp0"},
             {"addr", "add", "10.1.0.2/24", "dev", "kvp0"},  // a secondary of 10.1.0.1
             {"addr", "add", "192.168.7.1/24", "dev", "kvp0"},
             {"addr", "add", "10.2.0.1/24", "dev", "kvp1"},
             {"-6", "addr", "add", "2001:db8::1/64", "dev", "kvp0", "nodad"},
             {"-6", "addr", "add", "2001:db8::2/64", "dev", "kvp1", "nodad"},
             {"-6", "addr", "add", "2001:db8:1::1/64", "dev", "kvp0", "nodad"},
             {"-6", "addr", "add", "fe80::5/64", "dev", "kvp1", "nodad"},
         }) {
        ASSERT_TRUE(ip(a)) << a[2];
    }
    // The kernel's order: per interface; primaries before secondaries; newest IPv6 first.
    EXPECT_EQ(kvp::interface_addresses(AF_INET),
              (Strings{"10.1.0.1", "192.168.7.1", "10.1.0.2", "10.2.0.1"}));
    EXPECT_EQ(kvp::interface_addresses(AF_INET6),
              (Strings{"2001:db8:1::1", "2001:db8::1", "2001:db8::2", "fe80::5"}));
    const kvp::IntrinsicItems items;
    EXPECT_EQ(item(items, "NetworkAddressIPv4"), "10.1.0.1;192.168.7.1;10.1.0.2;10.2.0.1");
    EXPECT_EQ(item(items, "NetworkAddressIPv6"), "2001:db8:1::1;2001:db8::1;2001:db8::2;fe80::5");
    // Live: a removed address is gone at the next call.
    ASSERT_TRUE(ip({"addr", "del", "192.168.7.1/24", "dev", "kvp0"}));
    EXPECT_EQ(item(items, "NetworkAddressIPv4"), "10.1.0.1;10.1.0.2;10.2.0.1");
    ASSERT_TRUE(ip({"link", "del", "kvp1"}));
    EXPECT_EQ(item(items, "NetworkAddressIPv4"), "10.1.0.1;10.1.0.2");
    EXPECT_EQ(item(items, "NetworkAddressIPv6"), "2001:db8:1::1;2001:db8::1");
}

TEST_F(AddressesInANamespace, AThousandAddressesStayWithinTheValueField) {
    ASSERT_TRUE(add_interface("kvp0"));
    // One `ip -batch` instead of a thousand processes.
    TempDir dir;
    std::string batch;
    Strings want;
    for (int i = 0; i < 1000; ++i) {
        const std::string a =
            "10.20." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
        batch += "addr add " + a + "/32 dev kvp0\n";
        want.push_back(a);
    }
    ASSERT_TRUE(ip({"-batch", dir.file("batch", batch)}));
    ASSERT_EQ(kvp::interface_addresses(AF_INET).size(), 1000u);
    const kvp::IntrinsicItems items;
    const std::string v4 = item(items, "NetworkAddressIPv4");
    EXPECT_LE(v4.size(), 2047u);
    EXPECT_GT(v4.size(), 2000u);
    EXPECT_EQ(v4, kvp::join_addresses(kvp::interface_addresses(AF_INET), AF_INET));
    EXPECT_NE(v4.back(), ';');
}

// --- the host name ------------------------------------------------------------------

// A resolver the test controls: each lookup blocks until released, and is counted.
struct FakeResolver {
    std::mutex mutex;
    std::condition_variable cv;
    bool open = false;
    std::optional<std::string> answer;
    std::atomic<int> calls{0};
    std::atomic<int> finished{0};

    kvp::NameResolver function(const std::shared_ptr<FakeResolver>& self) {
        return [self](const std::string& host) -> std::optional<std::string> {
            self->calls++;
            std::unique_lock lock(self->mutex);
            self->cv.wait(lock, [&] { return self->open; });
            self->finished++;
            if (!self->answer) {
                return std::nullopt;
            }
            return *self->answer + "<" + host + ">";
        };
    }
    void release(std::optional<std::string> a) {
        std::lock_guard lock(mutex);
        open = true;
        answer = std::move(a);
        cv.notify_all();
    }
};

using kvptest::eventually;
using kvptest::scaled;

TEST(CanonicalName, AHangingLookupNeverBlocksACaller) {
    auto fake = std::make_shared<FakeResolver>();
    auto cache = std::make_unique<kvp::CanonicalNameCache>(fake->function(fake));
    const auto start = Clock::now();
    for (int i = 0; i < 1000; ++i) {
        ASSERT_EQ(cache->current("vm1"), "vm1");  // the plain name until it resolves
    }
    EXPECT_LT(Clock::now() - start, scaled(std::chrono::seconds(1)));
    ASSERT_TRUE(eventually([&] { return fake->calls.load() == 1; }));
    EXPECT_EQ(fake->calls.load(), 1);  // one lookup at a time, however many callers
    fake->release(std::string("vm1.example.net"));
    EXPECT_TRUE(eventually([&] { return cache->current("vm1") == "vm1.example.net<vm1>"; }));
    // A new host name shows plain until its own lookup ends.
    EXPECT_EQ(cache->current("vm2"), "vm2");
    EXPECT_TRUE(eventually([&] { return cache->current("vm2") == "vm1.example.net<vm2>"; }));
}

TEST(CanonicalName, DestroyingWhileALookupHangsDoesNotWait) {
    auto fake = std::make_shared<FakeResolver>();
    auto cache = std::make_unique<kvp::CanonicalNameCache>(fake->function(fake));
    EXPECT_EQ(cache->current("h"), "h");
    ASSERT_TRUE(eventually([&] { return fake->calls.load() == 1; }));
    const auto start = Clock::now();
    cache.reset();
    EXPECT_LT(Clock::now() - start, scaled(std::chrono::milliseconds(500)));
    fake->release(std::nullopt);  // the detached thread ends on its own
    EXPECT_TRUE(eventually([&] { return fake->finished.load() == 1; }));
}

TEST(CanonicalName, FailureKeepsThePlainNameAndARefreshKeepsTheLastAnswer) {
    auto fake = std::make_shared<FakeResolver>();
    kvp::CanonicalNameCache::Timing fast;
    fast.refresh = std::chrono::milliseconds(0);
    fast.retry = std::chrono::milliseconds(0);
    kvp::CanonicalNameCache cache(fake->function(fake), fast);
    fake->release(std::nullopt);
    EXPECT_EQ(cache.current("h"), "h");
    ASSERT_TRUE(eventually([&] { return fake->finished.load() >= 1; }));
    EXPECT_EQ(cache.current("h"), "h");  // the lookup failed
    {
        std::lock_guard lock(fake->mutex);
        fake->answer = "h.good";
    }
    EXPECT_TRUE(eventually([&] { return cache.current("h") == "h.good<h>"; }));
    {
        std::lock_guard lock(fake->mutex);
        fake->answer.reset();  // a flaky resolver: the next refreshes fail
    }
    const int before = fake->finished.load();
    EXPECT_TRUE(eventually([&] {
        (void)cache.current("h");
        return fake->finished.load() >= before + 3;
    }));
    EXPECT_EQ(cache.current("h"), "h.good<h>");
}

TEST(CanonicalName, StartLooksTheFirstNameUpBeforeAnyoneAsks) {
    auto fake = std::make_shared<FakeResolver>();
    fake->release(std::string("early"));
    kvp::CanonicalNameCache cache(fake->function(fake));
    cache.start("h");
    ASSERT_TRUE(eventually([&] { return fake->finished.load() == 1; }));  // nobody asked
    EXPECT_TRUE(eventually([&] { return cache.current("h") == "early<h>"; }));
    EXPECT_EQ(fake->calls.load(), 1);
}

TEST(CanonicalName, WaitForGivesUpAtItsLimit) {
    auto fake = std::make_shared<FakeResolver>();
    kvp::CanonicalNameCache cache(fake->function(fake));
    const auto start = Clock::now();
    EXPECT_EQ(cache.wait_for("h", std::chrono::milliseconds(100)), "h");
    EXPECT_LT(Clock::now() - start, scaled(std::chrono::seconds(2)));
    fake->release(std::string("done"));
    EXPECT_EQ(cache.wait_for("h", scaled(std::chrono::milliseconds(30000))), "done<h>");
}

TEST(CanonicalName, TheRealLookupOfThisHost) {
    // getaddrinfo(AI_CANONNAME) of this host's name, as hv_kvp_daemon asks: whatever the
    // resolver says, the cache shows it (or the plain name when it fails).
    const std::string host = kvp::current_host_name();
    ASSERT_FALSE(host.empty());
    const auto direct = kvp::resolve_canonical_name(host);
    kvp::CanonicalNameCache cache;
    EXPECT_EQ(cache.wait_for(host, std::chrono::milliseconds(20000)), direct.value_or(host));
}

// --- the view -----------------------------------------------------------------------

std::shared_ptr<kvp::PoolSnapshot> snapshot_of(const std::vector<kvp::Record>& records) {
    std::vector<kvp::SnapshotRecord> recs;
    for (const auto& r : records) {
        recs.push_back({r, {}});
    }
    return std::make_shared<kvp::PoolSnapshot>(std::move(recs), true, 0, timespec{}, 1);
}

TEST(AutoPoolView, MissingNamesAreTheItemsTheFileLacksInOrder) {
    kvp::AutoPoolView view({}, timespec{});
    auto snap = snapshot_of({});
    auto names = view.missing_names(*snap);
    EXPECT_EQ(Strings(names.begin(), names.end()),
              Strings(kvp::kIntrinsicNames.begin(), kvp::kIntrinsicNames.end()));
    snap = snapshot_of({{"x", "1"}, {"OSName", "Custom"}, {"", "empty key"}, {"osname", "y"}});
    names = view.missing_names(*snap);
    EXPECT_EQ(Strings(names.begin(), names.end()),
              (Strings{"FullyQualifiedDomainName", "IntegrationServicesVersion",
                       "NetworkAddressIPv4", "NetworkAddressIPv6", "OSBuildNumber",
                       "OSMajorVersion", "OSMinorVersion", "OSVersion", "ProcessorArchitecture"}));
    EXPECT_FALSE(view.intrinsic("x").has_value());
    EXPECT_FALSE(view.intrinsic("osname").has_value());
    EXPECT_EQ(view.intrinsic("IntegrationServicesVersion")->record.value, "3.1");
}

TEST(AutoPoolView, MtimeIsTheStartUntilTheValueIsSeenToChange) {
    auto fake = std::make_shared<FakeResolver>();
    kvp::IntrinsicSources sources;
    sources.names = std::make_shared<kvp::CanonicalNameCache>(fake->function(fake));
    const timespec since{1000, 5};
    kvp::AutoPoolView view(sources, since);
    const std::string host = kvp::current_host_name();
    auto rec = view.intrinsic("FullyQualifiedDomainName");
    ASSERT_TRUE(rec.has_value());
    EXPECT_EQ(rec->record.value, host);
    EXPECT_EQ(rec->changed_at.tv_sec, 1000);
    EXPECT_EQ(view.intrinsic("FullyQualifiedDomainName")->changed_at.tv_nsec, 5);
    timespec before{};
    clock_gettime(CLOCK_REALTIME, &before);
    fake->release(std::string("canon"));
    ASSERT_TRUE(eventually([&] {
        return view.intrinsic("FullyQualifiedDomainName")->record.value == "canon<" + host + ">";
    }));
    rec = view.intrinsic("FullyQualifiedDomainName");
    EXPECT_GE(rec->changed_at.tv_sec, before.tv_sec);  // when the change was seen
    EXPECT_EQ(view.intrinsic("IntegrationServicesVersion")->changed_at.tv_sec, 1000);
}

}  // namespace
}  // namespace kvptest
