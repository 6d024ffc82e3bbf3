// docs/behaviour.md §7: every refusal with its errno, the pool files byte-identical before and
// after, and a reason in the daemon's log.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>

#include "mount_fixture.hpp"

namespace kvptest {
namespace {

class RefusalTest : public KvpfsTest {
  protected:
    void SetUp() override {
        KvpfsTest::SetUp();
        if (HasFatalFailure()) {
            return;
        }
        for (int n = 0; n < 4; ++n) {
            set_pool(n, {{"k", "v" + std::to_string(n)}, {"other", "o"}});
        }
        before_ = snapshot();
    }
    [[nodiscard]] std::array<std::string, 5> snapshot() const {
        std::array<std::string, 5> s;
        for (int n = 0; n < 5; ++n) {
            s[static_cast<std::size_t>(n)] = pool_raw(n);
        }
        return s;
    }
    // Runs a syscall expected to fail with `err`, then checks every pool is unchanged.
    void expect_refused(const char* what, int rc, int err) {
        const int saved = errno;
        EXPECT_EQ(rc, -1) << what;
        EXPECT_EQ(saved, err) << what << ": got " << std::strerror(saved);
        EXPECT_EQ(snapshot(), before_) << what << " changed a pool file";
    }
    std::array<std::string, 5> before_;
};

TEST_F(RefusalTest, NonFilesAreEpermEverywhere) {
    for (const char* dir : {"guest", "external", "auto", "parameter"}) {
        const std::string d = mnt(dir);
        expect_refused("mkdir", ::mkdir((d + "/newdir").c_str(), 0755), EPERM);
        expect_refused("symlink", ::symlink("k", (d + "/ln").c_str()), EPERM);
        expect_refused("link", ::link((d + "/k").c_str(), (d + "/hard").c_str()), EPERM);
        expect_refused("mkfifo", ::mkfifo((d + "/fifo").c_str(), 0644), EPERM);
        expect_refused("rmdir", ::rmdir((d + "/k").c_str()), ENOTDIR);
    }
    expect_refused("mkdir in root", ::mkdir(mnt("newdir").c_str(), 0755), EPERM);
    expect_refused("rmdir pool dir", ::rmdir(mnt("guest").c_str()), EPERM);
    EXPECT_NE(daemon_log().find("mkdir"), std::string::npos);
}

TEST_F(RefusalTest, RenameBetweenDirectoriesIsExdev) {
    expect_refused("guest->external", ::rename(mnt("guest/k").c_str(), mnt("external/k2").c_str()),
                   EXDEV);
    expect_refused("external->guest", ::rename(mnt("external/k").c_str(), mnt("guest/k2").c_str()),
                   EXDEV);
    expect_refused("guest->root", ::rename(mnt("guest/k").c_str(), mnt("k").c_str()), EXDEV);
}

TEST_F(RefusalTest, ReadOnlyPoolsRefuseEveryChangeWithEacces) {
    for (const char* dir : {"external", "auto", "parameter"}) {
        const std::string d = mnt(dir);
        const std::string k = d + "/k";
        for (const int flags : {O_WRONLY, O_RDWR}) {
            const int fd = ::open(k.c_str(), flags);
            if (fd >= 0 && contents_cached()) {
                // Relaxed by -o cache=all: no OPEN reaches kvpfs to refuse root's open for
                // writing (0444 does not stop root); every write through it is refused.
                EXPECT_EQ(::write(fd, "x\n", 2), -1) << dir << " flags " << flags;
                EXPECT_EQ(errno, EACCES) << dir << " flags " << flags;
                ::close(fd);
                EXPECT_EQ(snapshot(), before_) << dir << ": a refused write changed a pool file";
                continue;
            }
            expect_refused(flags == O_WRONLY ? "open for writing" : "open rdwr", fd, EACCES);
            if (fd >= 0) {
                ::close(fd);
            }
        }
        expect_refused("open trunc", ::open(k.c_str(), O_WRONLY | O_TRUNC), EACCES);
        expect_refused("create", ::open((d + "/new").c_str(), O_WRONLY | O_CREAT, 0644), EACCES);
        expect_refused("mknod", ::mknod((d + "/new").c_str(), S_IFREG | 0644, 0), EACCES);
        expect_refused("unlink", ::unlink(k.c_str()), EACCES);
        expect_refused("rename", ::rename(k.c_str(), (d + "/other").c_str()), EACCES);
        expect_refused("truncate", ::truncate(k.c_str(), 0), EACCES);
        expect_refused("chmod", ::chmod(k.c_str(), 0600), EACCES);
        expect_refused("chown", ::chown(k.c_str(), 1, 1), EACCES);
        expect_refused("utimes", ::utimes(k.c_str(), nullptr), EACCES);
        EXPECT_EQ(read_errno(std::string(dir) + "/k"), 0);
    }
    expect_refused("chmod root", ::chmod(mnt().c_str(), 0777), EACCES);
    expect_refused("chmod guest dir", ::chmod(mnt("guest").c_str(), 0777), EACCES);
    expect_refused("rename pool dir", ::rename(mnt("guest").c_str(), mnt("g2").c_str()), EACCES);
    expect_refused("create in root", ::open(mnt("file").c_str(), O_WRONLY | O_CREAT, 0644), EACCES);
    EXPECT_NE(daemon_log().find("external/k"), std::string::npos) << daemon_log();
}

TEST_F(RefusalTest, GuestRefusesChmodChownThatChangeButAcceptsTimes) {
    const std::string k = mnt("guest/k");
    expect_refused("chmod", ::chmod(k.c_str(), 0600), EPERM);
    expect_refused("chmod +x", ::chmod(k.c_str(), 0755), EPERM);
    expect_refused("chown", ::chown(k.c_str(), 1, 1), EPERM);
    expect_refused("chgrp", ::chown(k.c_str(), static_cast<uid_t>(-1), 1), EPERM);
    // The same mode and owner: nothing changes, so nothing is refused (install -m 644, cp -p).
    EXPECT_EQ(::chmod(k.c_str(), 0644), 0);
    EXPECT_EQ(::chown(k.c_str(), 0, 0), 0);
    EXPECT_EQ(::chown(k.c_str(), static_cast<uid_t>(-1), 0), 0);
    const int fd = ::open(k.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(::fchmod(fd, 0644), 0);
    EXPECT_EQ(::fchown(fd, 0, 0), 0);
    EXPECT_EQ(::fchmod(fd, 0600), -1);
    EXPECT_EQ(errno, EPERM);
    EXPECT_EQ(::close(fd), 0);
    EXPECT_EQ(snapshot(), before_);
    // Directories are entries of the root: EACCES, also for a chmod that changes nothing.
    expect_refused("chmod guest/ same", ::chmod(mnt("guest").c_str(), 0755), EACCES);
    struct stat st1 {};
    ASSERT_EQ(::stat(k.c_str(), &st1), 0);
    struct timeval tv[2] = {{1000, 0}, {1000, 0}};
    EXPECT_EQ(::utimes(k.c_str(), tv), 0);
    EXPECT_EQ(::utimes(k.c_str(), nullptr), 0);
    EXPECT_EQ(snapshot(), before_);
    struct stat st2 {};
    ASSERT_EQ(::stat(k.c_str(), &st2), 0);
    EXPECT_EQ(st2.st_mtim.tv_sec, st1.st_mtim.tv_sec);
}

TEST_F(RefusalTest, CraftedNamesNeverReachOtherPaths) {
    // Names that are not the canonical encoding of any key.
    for (const std::string n : {"%2E%2E%2Fescape", "%2e%2e", "%2f", "%00", "a%2", "%%"}) {
        EXPECT_EQ(write_file("guest/" + n, "x").err, EINVAL) << n;
        EXPECT_EQ(stat_errno("guest/" + n), EINVAL) << n;
    }
    // Names that look like paths are plain keys of guest/.
    ASSERT_EQ(write_file("guest/..%2F..%2Fescape", "x\n").err, 0);
    ASSERT_EQ(write_file("guest/%2F..%2F..%2Fe", "x\n").err, 0);
    ASSERT_EQ(write_file("guest/ctl\x01\x02\x1b", "x\n").err, 0);
    ASSERT_EQ(write_file("guest/" + std::string(250, '.'), "x\n").err, 0);
    std::vector<std::string> outside;
    for (const auto& e : std::filesystem::recursive_directory_iterator(pool_dir())) {
        outside.push_back(e.path().filename().string());
    }
    std::sort(outside.begin(), outside.end());
    EXPECT_EQ(outside, (std::vector<std::string>{".kvp_pool_0", ".kvp_pool_1", ".kvp_pool_2",
                                                 ".kvp_pool_3", ".kvp_pool_4"}));
    EXPECT_FALSE(std::filesystem::exists(base_dir() + "/escape"));
    EXPECT_FALSE(std::filesystem::exists("/escape"));
    auto recs = pool_recs(1);
    ASSERT_EQ(recs.size(), 6u);
    EXPECT_EQ(recs[2], (Rec{"../../escape", "x"}));
    EXPECT_EQ(recs[3], (Rec{"/../../e", "x"}));
    EXPECT_EQ(recs[4], (Rec{"ctl\x01\x02\x1b", "x"}));
}

class ReadOnlyTest : public RefusalTest {
  protected:
    std::vector<std::string> daemon_options() const override { return {"-o", "ro"}; }
};

TEST_F(ReadOnlyTest, EveryChangeIsErofs) {
    const std::string k = mnt("guest/k");
    EXPECT_EQ(read_errno("guest/k"), 0);
    expect_refused("open for writing", ::open(k.c_str(), O_WRONLY), EROFS);
    expect_refused("create", ::open(mnt("guest/new").c_str(), O_WRONLY | O_CREAT, 0644), EROFS);
    expect_refused("unlink", ::unlink(k.c_str()), EROFS);
    expect_refused("rename", ::rename(k.c_str(), mnt("guest/o2").c_str()), EROFS);
    expect_refused("truncate", ::truncate(k.c_str(), 0), EROFS);
    expect_refused("chmod", ::chmod(k.c_str(), 0600), EROFS);
    expect_refused("utimes", ::utimes(k.c_str(), nullptr), EROFS);
    expect_refused("external write", ::open(mnt("external/k").c_str(), O_WRONLY), EROFS);
    // A read-only mount for the kernel: it answers EROFS before asking kvpfs, so EROFS wins
    // over the EPERM and EXDEV rules too.
    expect_refused("mkdir", ::mkdir(mnt("guest/d").c_str(), 0755), EROFS);
    expect_refused("cross rename", ::rename(k.c_str(), mnt("auto/k").c_str()), EROFS);
    expect_refused("chmod root", ::chmod(mnt("").c_str(), 0755), EROFS);
}

class AllowOtherTest : public KvpfsTest {
  protected:
    std::vector<std::string> daemon_options() const override { return {"-o", "allow_other"}; }
};

// default_permissions is always on: with allow_other another user reads every pool but
// the kernel refuses its writes by the mode bits (files 0644/0444, owner root).
TEST_F(AllowOtherTest, OtherUsersReadButDoNotWrite) {
    set_pool(1, {{"g", "guest value"}});
    set_pool(3, {{"p", "param"}});
    const std::string before = pool_raw(1);
    ASSERT_EQ(::chmod(base_dir().c_str(), 0755), 0);  // mkdtemp made it 0700
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
            ::_exit(10);
        }
        try {
            if (read_bytes(mnt("guest/g")) != "guest value\n" ||
                read_bytes(mnt("parameter/p")) != "param\n") {
                ::_exit(11);
            }
        } catch (...) {
            ::_exit(15);
        }
        if (::open(mnt("guest/g").c_str(), O_WRONLY) != -1 || errno != EACCES) {
            ::_exit(12);
        }
        if (::open(mnt("guest/new").c_str(), O_WRONLY | O_CREAT, 0644) != -1 || errno != EACCES) {
            ::_exit(13);
        }
        if (::unlink(mnt("guest/g").c_str()) != -1 || errno != EACCES) {
            ::_exit(14);
        }
        ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "step that failed: " << WEXITSTATUS(status);
    EXPECT_TRUE(pool_kept(1, before));
}

}  // namespace
}  // namespace kvptest
