// Hostile names and values (docs/reliability.md; docs/behaviour.md §5-§7): crafted names ("..",
// escaped slashes, non-canonical escapes, control bytes, invalid UTF-8, names of 255, 256
// and 4,000 bytes), values with NUL bytes, invalid UTF-8 and over every limit, and the
// refused operations. Each refused case gets its errno and leaves every file of the pool
// directory (and the decoys next to it) byte-identical; each crafted-but-valid name is
// stored as exactly the key it encodes, nowhere else. Under strace, the daemon opens no
// path but the pool files once it is mounted.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "stress_support.hpp"

namespace kvpstress {
namespace {

std::string rep(const std::string& unit, std::size_t n) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i)
        s += unit;
    return s;
}

// Every file under the pool directory and the sandbox's decoys: name -> mode + bytes.
std::map<std::string, std::string> snapshot_files(const Sandbox& sb) {
    std::map<std::string, std::string> out;
    for (const std::string& dir : {sb.pool_dir(), sb.base() + "/decoys"}) {
        std::string listing;
        for (const auto& name : {".kvp_pool_0", ".kvp_pool_1", ".kvp_pool_2", ".kvp_pool_3",
                                 ".kvp_pool_4", "passwd", "victim", "outside"}) {
            const std::string path = dir + "/" + name;
            struct stat st {};
            if (::stat(path.c_str(), &st) != 0)
                continue;
            out[path] = std::to_string(st.st_mode) + ":" + read_file(path);
        }
        // No file appears or disappears either.
        if (DIR* d = ::opendir(dir.c_str())) {
            while (const dirent* e = ::readdir(d))
                listing += std::string(e->d_name) + "/";
            ::closedir(d);
        }
        out[dir + " (listing)"] = listing;
    }
    return out;
}

void populate(const Sandbox& sb) {
    write_file(sb.pool(0),
               encode_record("HostName", "host-01") + encode_record("host/with/slash", "x", 'G'));
    write_file(sb.pool(1), encode_record("victim", "original") + encode_record("other", "x"));
    write_file(sb.pool(2), encode_record("OSName", "Debian"));
    write_file(sb.pool(3), encode_record("PhysicalHostName", "hv-01"));
    write_file(sb.pool(4), "");
    // Decoys a path-joining bug would reach: in the pool directory and next to it.
    write_file(sb.pool_dir() + "/passwd", "decoy\n");
    write_file(sb.pool_dir() + "/victim", "decoy\n");
    ::mkdir((sb.base() + "/decoys").c_str(), 0755);
    write_file(sb.base() + "/decoys/outside", "decoy\n");
    write_file(sb.base() + "/decoys/passwd", "decoy\n");
}

int err_of(int rc) {
    return rc == 0 ? 0 : errno;
}

// Create-and-write through the mount, as `echo x > NAME` does.
int create_named(const Sandbox& sb, const std::string& rel, const std::string& data = "x\n") {
    return write_value(sb.mnt(rel), data).err;
}

struct Case {
    std::string what;
    std::function<int(const Sandbox&)> act;  // errno, 0 on success
    std::set<int> want;                      // acceptable errnos
};

std::vector<Case> refused_cases() {
    std::vector<Case> c;
    const auto create = [](std::string rel) {
        return [rel](const Sandbox& sb) { return create_named(sb, rel); };
    };
    const auto value = [](std::string data, int flags = O_WRONLY | O_TRUNC, std::size_t chunk = 0) {
        return [=](const Sandbox& sb) {
            return write_value(sb.mnt("guest/victim"), data, flags, chunk).err;
        };
    };
    // --- Names (create in guest/).
    c.push_back({"name %2f (lower-case escape)", create("guest/%2f"), {EINVAL}});
    c.push_back({"name %41 (escape of a plain byte)", create("guest/%41"), {EINVAL}});
    c.push_back({"name % (bare percent)", create("guest/%"), {EINVAL}});
    c.push_back({"name %2 (cut escape)", create("guest/%2"), {EINVAL}});
    c.push_back({"name a%2e (escaped dot inside a name)", create("guest/a%2E"), {EINVAL}});
    c.push_back(
        {"name %2E%2E%2F (dots escaped, not the whole key)", create("guest/%2E%2E%2F"), {EINVAL}});
    c.push_back({"name %2F..%2F%00 (escaped NUL)", create("guest/%2F..%2F%00"), {EINVAL}});
    c.push_back({"name \\xff\\xfe (invalid UTF-8)", create("guest/\xff\xfe"), {EINVAL}});
    c.push_back({"name \\xc0\\xaf (overlong '/')", create("guest/\xc0\xaf"), {EINVAL}});
    c.push_back(
        {"name \\xed\\xa0\\x80 (UTF-16 surrogate)", create("guest/\xed\xa0\x80"), {EINVAL}});
    c.push_back(
        {"name \\xf4\\x90\\x80\\x80 (past U+10FFFF)", create("guest/\xf4\x90\x80\x80"), {EINVAL}});
    c.push_back({"name a\\x80b (stray continuation byte)",
                 create("guest/a\x80"
                        "b"),
                 {EINVAL}});
    c.push_back({"name 255 x 'a' (over the host's 254 units)",
                 create("guest/" + std::string(255, 'a')),
                 {ENAMETOOLONG}});
    // FUSE lets names up to 1024 bytes through (FUSE_NAME_MAX), so these reach the daemon.
    c.push_back({"name 256 x 'n' (over 254 units)",
                 create("guest/" + std::string(256, 'n')),
                 {ENAMETOOLONG}});
    c.push_back({"name 128 x U+1F389 (512 bytes, over 511)",
                 create("guest/" + rep("\xf0\x9f\x8e\x89", 128)),
                 {ENAMETOOLONG}});
    c.push_back({"name 1024 bytes", create("guest/" + std::string(1024, 'n')), {ENAMETOOLONG}});
    // Past FUSE_NAME_MAX the kernel refuses before the daemon sees it.
    c.push_back(
        {"name 1025 bytes (kernel)", create("guest/" + std::string(1025, 'n')), {ENAMETOOLONG}});
    c.push_back(
        {"name 4000 bytes (kernel)", create("guest/" + std::string(4000, 'n')), {ENAMETOOLONG}});
    c.push_back({"path of 4,100 bytes (kernel)",
                 create(rep("guest/../", 455) + "guest/zz"),
                 {ENAMETOOLONG}});
    c.push_back({"name .. with O_CREAT (the root directory)", create("guest/.."), {EISDIR}});
    c.push_back({"name . with O_CREAT", create("guest/."), {EISDIR}});
    c.push_back({"stat %41",
                 [](const Sandbox& sb) {
                     struct stat st {};
                     return err_of(::stat(sb.mnt("guest/%41").c_str(), &st));
                 },
                 {EINVAL}});
    c.push_back({"stat \\xff (invalid UTF-8 key)",
                 [](const Sandbox& sb) {
                     struct stat st {};
                     return err_of(::stat(sb.mnt("guest/\xff").c_str(), &st));
                 },
                 {EINVAL, ENOENT}});
    c.push_back({"read external/..%2F..%2Fdecoys%2Foutside",
                 [](const Sandbox& sb) {
                     return read_value(sb.mnt("external/..%2F..%2Fdecoys%2Foutside")).err;
                 },
                 {ENOENT}});
    c.push_back(
        {"read external/%2E%2E%2F.kvp_pool_1",
         [](const Sandbox& sb) { return read_value(sb.mnt("external/%2E%2E%2F.kvp_pool_1")).err; },
         {EINVAL}});
    c.push_back({"read .kvp_pool_1 in the root",
                 [](const Sandbox& sb) { return read_value(sb.mnt(".kvp_pool_1")).err; },
                 {ENOENT}});
    c.push_back({"unlink %41",
                 [](const Sandbox& sb) { return err_of(::unlink(sb.mnt("guest/%41").c_str())); },
                 {EINVAL}});
    c.push_back({"rename victim -> %zz",
                 [](const Sandbox& sb) {
                     return err_of(
                         ::rename(sb.mnt("guest/victim").c_str(), sb.mnt("guest/%zz").c_str()));
                 },
                 {EINVAL}});
    c.push_back({"rename victim -> \\xff",
                 [](const Sandbox& sb) {
                     return err_of(
                         ::rename(sb.mnt("guest/victim").c_str(), sb.mnt("guest/\xff").c_str()));
                 },
                 {EINVAL}});
    c.push_back({"rename victim -> 255-byte name",
                 [](const Sandbox& sb) {
                     return err_of(::rename(sb.mnt("guest/victim").c_str(),
                                            sb.mnt("guest/" + std::string(255, 'r')).c_str()));
                 },
                 {ENAMETOOLONG}});
    // --- Refused operations (docs/behaviour.md §7).
    c.push_back({"create in the root", create("x"), {EACCES}});
    c.push_back({"create .kvp_pool_1 in the root", create(".kvp_pool_1"), {EACCES}});
    c.push_back({"create in external/", create("external/new"), {EACCES}});
    c.push_back({"open external/HostName for writing",
                 [](const Sandbox& sb) {
                     return write_value(sb.mnt("external/HostName"), "x", O_WRONLY).err;
                 },
                 {EACCES}});
    c.push_back(
        {"unlink external/HostName",
         [](const Sandbox& sb) { return err_of(::unlink(sb.mnt("external/HostName").c_str())); },
         {EACCES}});
    c.push_back({"truncate external/HostName",
                 [](const Sandbox& sb) {
                     return err_of(::truncate(sb.mnt("external/HostName").c_str(), 0));
                 },
                 {EACCES}});
    c.push_back({"rename within external/",
                 [](const Sandbox& sb) {
                     return err_of(::rename(sb.mnt("external/HostName").c_str(),
                                            sb.mnt("external/y").c_str()));
                 },
                 {EACCES}});
    c.push_back({"chmod external/HostName",
                 [](const Sandbox& sb) {
                     return err_of(::chmod(sb.mnt("external/HostName").c_str(), 0666));
                 },
                 {EACCES}});
    c.push_back({"rename guest/victim -> external/victim",
                 [](const Sandbox& sb) {
                     return err_of(::rename(sb.mnt("guest/victim").c_str(),
                                            sb.mnt("external/victim").c_str()));
                 },
                 {EXDEV}});
    c.push_back({"rename guest/victim -> guest/../auto/v",
                 [](const Sandbox& sb) {
                     return err_of(::rename(sb.mnt("guest/victim").c_str(),
                                            sb.mnt("guest/../auto/v").c_str()));
                 },
                 {EXDEV}});
    c.push_back({"mkdir guest/d",
                 [](const Sandbox& sb) { return err_of(::mkdir(sb.mnt("guest/d").c_str(), 0755)); },
                 {EPERM}});
    c.push_back({"mkdir in the root",
                 [](const Sandbox& sb) { return err_of(::mkdir(sb.mnt("d").c_str(), 0755)); },
                 {EPERM}});
    c.push_back({"rmdir guest",
                 [](const Sandbox& sb) { return err_of(::rmdir(sb.mnt("guest").c_str())); },
                 {EPERM, EBUSY, ENOTEMPTY}});
    c.push_back({"symlink guest/l -> /etc/passwd",
                 [](const Sandbox& sb) {
                     return err_of(::symlink("/etc/passwd", sb.mnt("guest/l").c_str()));
                 },
                 {EPERM}});
    c.push_back({"link guest/victim guest/v2",
                 [](const Sandbox& sb) {
                     return err_of(
                         ::link(sb.mnt("guest/victim").c_str(), sb.mnt("guest/v2").c_str()));
                 },
                 {EPERM}});
    c.push_back({"mknod fifo guest/f",
                 [](const Sandbox& sb) {
                     return err_of(::mknod(sb.mnt("guest/f").c_str(), S_IFIFO | 0644, 0));
                 },
                 {EPERM}});
    c.push_back(
        {"chmod guest/victim",
         [](const Sandbox& sb) { return err_of(::chmod(sb.mnt("guest/victim").c_str(), 0600)); },
         {EPERM}});
    c.push_back(
        {"chown guest/victim",
         [](const Sandbox& sb) { return err_of(::chown(sb.mnt("guest/victim").c_str(), 1, 1)); },
         {EPERM}});
    // --- Values (replacing guest/victim = "original").
    c.push_back({"value with a NUL byte", value(std::string("ab\0cd", 5)), {EINVAL}});
    // Each write() is stored when it returns, so a refused value is one refused write.
    c.push_back({"value ending in a NUL byte", value(std::string("good\0", 5)), {EINVAL}});
    c.push_back({"value of 1023 bytes (host limit 1022)", value(std::string(1023, 'v')), {EFBIG}});
    c.push_back({"value of 1023 bytes + \\n", value(std::string(1023, 'v') + "\n"), {EFBIG}});
    c.push_back(
        {"value of 2048 bytes (format limit 2047)", value(std::string(2048, 'v')), {EFBIG}});
    c.push_back({"value of 100,000 bytes", value(std::string(100000, 'v')), {EFBIG}});
    c.push_back({"value of 1100 bytes in one write", value(std::string(1100, 'v')), {EFBIG}});
    c.push_back({"value of 512 x U+1F389 (1024 UTF-16 units)",
                 value(rep("\xf0\x9f\x8e\x89", 512)),
                 {EFBIG}});
    c.push_back({"append past the limit (>>)",
                 value(std::string(1020, 'v'), O_WRONLY | O_APPEND),
                 {EFBIG}});
    c.push_back({"value \\xff\\xfe (invalid UTF-8)", value("\xff\xfe"), {EINVAL}});
    c.push_back({"value \\xc0\\xaf (overlong)", value("\xc0\xaf"), {EINVAL}});
    c.push_back({"value \\xed\\xa0\\x80 (surrogate)", value("\xed\xa0\x80"), {EINVAL}});
    // Held back as unfinished, then close() comes first: EINVAL, nothing stored.
    c.push_back(
        {"value that is a cut sequence \\xe2\\x82, then close", value("\xe2\x82"), {EINVAL}});
    c.push_back({"pwrite at offset 3000 (past the limit, a hole)",
                 [](const Sandbox& sb) {
                     const int fd = ::open(sb.mnt("guest/victim").c_str(), O_WRONLY);
                     if (fd < 0)
                         return errno;
                     int e = ::pwrite(fd, "x", 1, 3000) == 1 ? 0 : errno;
                     if (::close(fd) != 0 && e == 0)
                         e = errno;
                     return e;
                 },
                 {EFBIG, EINVAL}});  // over the limit, and the hole would be NULs
    c.push_back({"ftruncate growing to 100",
                 [](const Sandbox& sb) {
                     const int fd = ::open(sb.mnt("guest/victim").c_str(), O_WRONLY);
                     if (fd < 0)
                         return errno;
                     int e = err_of(::ftruncate(fd, 100));
                     if (::close(fd) != 0 && e == 0)
                         e = errno;
                     return e;
                 },
                 {EINVAL}});
    c.push_back(
        {"truncate path growing to 5000",
         [](const Sandbox& sb) { return err_of(::truncate(sb.mnt("guest/victim").c_str(), 5000)); },
         {EINVAL, EFBIG}});
    return c;
}

struct Accepted {
    std::string what;
    std::string name;   // under guest/ (or a path from the mount's root when it holds '/')
    std::string key;    // what the pool must then hold
    std::string data;   // written
    std::string value;  // stored
};

std::vector<Accepted> accepted_cases() {
    return {
        {"escaped path traversal %2F..%2F..%2Fetc%2Fpasswd", "%2F..%2F..%2Fetc%2Fpasswd",
         "/../../etc/passwd", "t\n", "t"},
        {"..%2F..%2Fdecoys%2Foutside", "..%2F..%2Fdecoys%2Foutside", "../../decoys/outside", "t\n",
         "t"},
        {"the key .. (%2E%2E)", "%2E%2E", "..", "dots\n", "dots"},
        {"the key . (%2E)", "%2E", ".", "dot\n", "dot"},
        {"control bytes \\x01\\x1b[31m\\t\\r", "\x01\x1b[31m\t\r", "\x01\x1b[31m\t\r", "c\n", "c"},
        {"a newline in the name", "a\nb", "a\nb", "n\n", "n"},
        {"254 bytes (the host's limit)", std::string(254, 'h'), std::string(254, 'h'), "h\n", "h"},
        {"85 x U+20AC (255 bytes, 85 units)", rep("\xe2\x82\xac", 85), rep("\xe2\x82\xac", 85),
         "e\n", "e"},
        {"63 x U+1F389 (252 bytes, 126 units)", rep("\xf0\x9f\x8e\x89", 63),
         rep("\xf0\x9f\x8e\x89", 63), "p\n", "p"},
        {"85 x %25 (255-byte name, key of 85 '%')", rep("%25", 85), std::string(85, '%'), "q\n",
         "q"},
        {"value of 1022 bytes + \\n (the host's limit)", "max", "max",
         std::string(1022, 'v') + "\n", std::string(1022, 'v')},
        {"value of 511 x U+1F389 (1022 units)", "emoji", "emoji", rep("\xf0\x9f\x8e\x89", 511),
         rep("\xf0\x9f\x8e\x89", 511)},
        {"value with control bytes", "ctl", "ctl", "\x01\x02\x7f\x1b", "\x01\x02\x7f\x1b"},
        {"128 x U+00E9 (256-byte name: FUSE allows 1024)", rep("\xc3\xa9", 128),
         rep("\xc3\xa9", 128), "u\n", "u"},
        {"path of 4,005 bytes through guest/../guest/...", rep("guest/../", 444) + "guest/zz", "zz",
         "z\n", "z"},
    };
}

// Runs every case, printing a table line each; returns the number of refused cases run.
int run_refused(const Sandbox& sb) {
    int n = 0;
    for (const Case& c : refused_cases()) {
        const auto before = snapshot_files(sb);
        const int got = c.act(sb);
        const auto after = snapshot_files(sb);
        const bool ok_errno = c.want.count(got) == 1;
        const bool identical = before == after;  // every mode: a refusal changes nothing
        EXPECT_TRUE(ok_errno) << c.what << ": got " << errno_name(got);
        EXPECT_TRUE(identical) << c.what << ": the pool directory changed";
        std::printf("  %-4s %-55s %-14s %s\n", ok_errno && identical ? "ok" : "FAIL",
                    c.what.c_str(), errno_name(got).c_str(),
                    identical ? "byte-identical" : "CHANGED");
        ++n;
    }
    return n;
}

int run_accepted(const Sandbox& sb) {
    int n = 0;
    for (const Accepted& a : accepted_cases()) {
        const auto before = snapshot_files(sb);
        const std::string rel = a.name.find('/') != std::string::npos ? a.name : "guest/" + a.name;
        const int got = create_named(sb, rel, a.data);
        EXPECT_EQ(got, 0) << a.what << ": " << errno_name(got);
        // The pool holds exactly one record of the key, and nothing else changed but pool 1.
        const auto recs = decode_records(read_file(sb.pool(1)));
        int found = 0;
        for (const auto& r : recs) {
            if (r.key == a.key) {
                ++found;
                EXPECT_EQ(r.value, a.value) << a.what;
            }
        }
        EXPECT_EQ(found, 1) << a.what << ": key " << printable(a.key);
        auto after = snapshot_files(sb);
        after.erase(sb.pool(1));
        auto was = before;
        was.erase(sb.pool(1));
        EXPECT_EQ(was, after) << a.what << ": something besides pool 1 changed";
        // Read back through the mount under the same name.
        const ReadResult r = read_value(sb.mnt(rel));
        EXPECT_EQ(r.err, 0) << a.what;
        EXPECT_EQ(r.data, a.value + "\n") << a.what;
        std::printf("  %-4s %-55s stored as key %s\n", got == 0 && found == 1 ? "ok" : "FAIL",
                    a.what.c_str(), printable(a.key, 30).c_str());
        ++n;
    }
    return n;
}

TEST(Hostile, RefusedNamesValuesAndOperationsLeaveThePoolByteIdentical) {
    Sandbox sb;
    populate(sb);
    sb.start();
    const int n = run_refused(sb);
    std::printf("hostile: %d refused cases\n", n);
    EXPECT_EQ(read_value(sb.mnt("guest/victim")).data, "original\n");
}

TEST(Hostile, CraftedButValidNamesAreStoredAsTheirKeysOnly) {
    Sandbox sb;
    populate(sb);
    sb.start();
    const int n = run_accepted(sb);
    std::printf("hostile: %d accepted crafted cases\n", n);
}

TEST(Hostile, UnderPoolLimitsOnlyTheFormatLimitsHold) {
    Sandbox sb;
    populate(sb);
    sb.start({"-o", "limits=pool"});
    const auto before = snapshot_files(sb);
    EXPECT_EQ(write_value(sb.mnt("guest/victim"), std::string(2048, 'v')).err, EFBIG);
    EXPECT_EQ(write_value(sb.mnt("guest/victim"), std::string("a\0b", 3)).err, EINVAL);
    EXPECT_EQ(before, snapshot_files(sb));
    EXPECT_EQ(write_value(sb.mnt("guest/victim"), std::string(2047, 'v')).err, 0);
    EXPECT_EQ(write_value(sb.mnt("guest/bad\xff"), "\xfe\xff").err, 0);
    const auto recs = decode_records(read_file(sb.pool(1)));
    std::map<std::string, std::string> m;
    for (const auto& r : recs)
        m.emplace(r.key, r.value);
    EXPECT_EQ(m["victim"], std::string(2047, 'v'));
    EXPECT_EQ(m["bad\xff"], "\xfe\xff");
    EXPECT_EQ(write_value(sb.mnt("guest/" + std::string(512, 'k')), "x").err, ENAMETOOLONG);
    EXPECT_EQ(write_value(sb.mnt("guest/" + std::string(511, 'k')), "x").err, 0);
}

TEST(Hostile, RawModeKeepsTheLimitsAndStoresNewlines) {
    Sandbox sb;
    populate(sb);
    sb.start({"-o", "raw"});
    const auto before = snapshot_files(sb);
    EXPECT_EQ(write_value(sb.mnt("guest/victim"), std::string(1022, 'v') + "\n").err, EFBIG);
    EXPECT_EQ(write_value(sb.mnt("guest/victim"), std::string("a\0b", 3)).err, EINVAL);
    EXPECT_EQ(write_value(sb.mnt("guest/victim"), "\xff").err, EINVAL);
    EXPECT_EQ(before, snapshot_files(sb));
    EXPECT_EQ(write_value(sb.mnt("guest/victim"), "two\n\n").err, 0);
    EXPECT_EQ(write_value(sb.mnt("guest/max"), std::string(1022, 'v')).err, 0);
    std::map<std::string, std::string> m;
    for (const auto& r : decode_records(read_file(sb.pool(1))))
        m.emplace(r.key, r.value);
    EXPECT_EQ(m["victim"], "two\n\n");
    EXPECT_EQ(m["max"], std::string(1022, 'v'));
    EXPECT_EQ(read_value(sb.mnt("guest/victim")).data, "two\n\n");
}

// strace -f -ttt output: "PID SECONDS.USEC syscall("path", ...) = ..."; each quoted path of
// a file-name syscall, with the time it was made.
struct Opened {
    double time;
    std::string call;
    std::string path;
};

std::string unquote(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) {
            const char n = s[i + 1];
            if (n == 'x' && i + 3 < s.size()) {
                out += static_cast<char>(std::stoi(s.substr(i + 2, 2), nullptr, 16));
                i += 3;
                continue;
            }
            out += n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r' : n;
            ++i;
            continue;
        }
        out += s[i];
    }
    return out;
}

std::vector<Opened> parse_strace(const std::string& log) {
    std::vector<Opened> out;
    const std::regex line(R"(^\s*\d+\s+(\d+\.\d+)\s+(\w+)\((.*)$)");
    const std::regex quoted(R"re("((?:[^"\\]|\\.)*)")re");
    std::istringstream in(log);
    for (std::string l; std::getline(in, l);) {
        std::smatch m;
        if (!std::regex_match(l, m, line))
            continue;
        const std::string args = m[3];
        for (auto it = std::sregex_iterator(args.begin(), args.end(), quoted);
             it != std::sregex_iterator(); ++it) {
            out.push_back({std::stod(m[1]), m[2], unquote((*it)[1])});
        }
    }
    return out;
}

TEST(Hostile, NoPathOutsideThePoolFilesIsOpened) {
    if (::access("/usr/bin/strace", X_OK) != 0) {
        GTEST_SKIP() << "strace is not installed (apt-get install strace)";
    }
    Sandbox sb;
    populate(sb);
    const std::string trace = sb.base() + "/strace.log";
    sb.start({}, {"strace", "-f", "-qq", "-ttt", "-s", "8192", "-e",
                  "trace=%file,inotify_add_watch", "-o", trace});
    struct timeval tv {};
    ::gettimeofday(&tv, nullptr);
    const double ready = static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6;
    const int refused = run_refused(sb);
    const int accepted = run_accepted(sb);
    EXPECT_EQ(sb.stop(), 0);
    if (const char* keep = std::getenv("KVPFS_STRESS_KEEP_TRACE")) {
        write_file(keep, read_file(trace));
    }

    const std::set<std::string> pool_paths = {sb.pool_dir(), sb.pool(0), sb.pool(1),
                                              sb.pool(2),    sb.pool(3), sb.pool(4)};
    // After start-up the daemon may open only the pool files (and its directory, for the
    // inotify watch) plus the kernel's files the engine and libfuse read.
    const std::set<std::string> runtime_system = {"/proc/locks", "/dev/fuse", "/etc/mtab",
                                                  "/proc/self/mountinfo", "/proc/mounts"};
    // auto/'s intrinsic items read fixed system files, never a path a name could choose:
    // os-release, and the resolver's files for the host name's canonical name (glibc's NSS
    // also stats "/" to notice a changed root).
    const std::set<std::string> intrinsic_sources = {
        "/etc/os-release", "/etc/nsswitch.conf", "/etc/resolv.conf", "/etc/host.conf",
        "/etc/hosts",      "/etc/gai.conf",      "/etc/ld.so.cache"};
    std::set<std::string> startup, runtime;
    long calls = 0;
    for (const Opened& o : parse_strace(read_file(trace))) {
        ++calls;
        if (o.path.empty()) {
            continue;  // fstatat(fd, "", AT_EMPTY_PATH): a descriptor, not a path
        }
        // -o cache=all asks /proc about a writing process (its system call, its descriptors:
        // readlinkat names each of them relative to /proc/PID/fd and strace shows the target
        // too); a process's own entries are never a path a name chooses.
        const bool proc_pid = o.path.rfind("/proc/", 0) == 0 && o.path.size() > 6 &&
                              std::isdigit(static_cast<unsigned char>(o.path[6])) != 0;
        if (o.time >= ready && (o.call == "readlinkat" || proc_pid || o.path == "/proc")) {
            runtime.insert(o.call == "readlinkat" ? "readlinkat(/proc/PID/fd/N)" : "/proc/PID/...");
            continue;
        }
        const bool in_pool_dir = o.path.rfind(sb.pool_dir() + "/", 0) == 0;
        const bool in_sandbox = o.path.rfind(sb.base() + "/", 0) == 0;
        if (pool_paths.count(o.path)) {
            (o.time < ready ? startup : runtime).insert(o.path);
            continue;
        }
        // Mounting on it, after checking that it holds no pool file (swapped arguments): an
        // lstat (or access) of each name, nothing opened.
        const bool mountpoint_check =
            o.path == sb.mnt() ||
            (o.path.rfind(sb.mnt() + "/.kvp_pool_", 0) == 0 &&
             o.path.size() == sb.mnt().size() + std::string("/.kvp_pool_0").size() &&
             (o.call == "access" || o.call == "newfstatat" || o.call == "lstat" ||
              o.call == "statx"));
        if (mountpoint_check && o.time < ready + 0.5) {
            startup.insert(o.path);
            continue;
        }
        if (in_pool_dir || in_sandbox || o.path.find("passwd") != std::string::npos ||
            o.path.find("outside") != std::string::npos) {
            ADD_FAILURE() << o.call << "(" << printable(o.path, 100) << ") outside the pool files";
            continue;
        }
        if (o.time < ready) {
            startup.insert(o.path);
        } else if (runtime_system.count(o.path) || intrinsic_sources.count(o.path) ||
                   (o.path == "/" && o.call.find("stat") != std::string::npos) ||
                   o.path.rfind("/proc/self/", 0) == 0) {
            runtime.insert(o.path);
        } else {
            ADD_FAILURE() << o.call << "(" << printable(o.path, 100) << ") after start-up";
        }
    }
    std::printf(
        "strace: %ld file-name calls; %d refused + %d accepted cases; paths after start-up:\n",
        calls, refused, accepted);
    for (const auto& p : runtime)
        std::printf("  %s\n", p.c_str());
    std::printf("paths at start-up (before the mount was ready): %zu distinct\n", startup.size());
    for (const auto& p : startup)
        std::printf("  %s\n", p.c_str());
}

}  // namespace
}  // namespace kvpstress
