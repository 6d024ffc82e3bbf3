// docs/behaviour.md §1, §8: the command line, bad use before mounting, signals, mount(8).

#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "mount_fixture.hpp"

namespace kvptest {
namespace {

bool is_fuse_mount(const std::string& path) {
    struct statfs sf {};
    return ::statfs(path.c_str(), &sf) == 0 && sf.f_type == kFuseSuperMagic;
}

std::size_t line_count(const std::string& s) {
    return static_cast<std::size_t>(std::count(s.begin(), s.end(), '\n'));
}

// A temp dir with a pool dir, a mountpoint and a regular file; no tmpfs needed, because
// nothing is ever mounted here.
class BadUseTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/kvpfs-baduse.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        std::filesystem::create_directory(dir_ + "/pool");
        std::filesystem::create_directory(dir_ + "/mnt");
        std::ofstream(dir_ + "/file") << "x";
    }
    void TearDown() override {
        if (is_fuse_mount(dir_ + "/mnt")) {
            ::umount2((dir_ + "/mnt").c_str(), MNT_DETACH);
        }
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    void expect_refused(const std::vector<std::string>& args, const std::string& needle) {
        std::vector<std::string> argv{kvpfs_binary(), "-f"};
        argv.insert(argv.end(), args.begin(), args.end());
        std::string out;
        const int status = run_program(argv, &out);
        EXPECT_NE(status, 0) << out;
        EXPECT_EQ(line_count(out), 1u) << "one line expected, got: " << out;
        EXPECT_NE(out.find(needle), std::string::npos) << out;
        EXPECT_FALSE(is_fuse_mount(dir_ + "/mnt"));
    }
    std::string dir_;
};

TEST_F(BadUseTest, FailsBeforeMountingWithOneLine) {
    const std::string pool = dir_ + "/pool";
    const std::string mntp = dir_ + "/mnt";
    expect_refused({}, "missing MOUNTPOINT");
    expect_refused({dir_ + "/nope", mntp}, "No such file or directory");
    expect_refused({dir_ + "/file", mntp}, "not a directory");
    expect_refused({pool, dir_ + "/nomnt"}, "MOUNTPOINT");
    expect_refused({pool, mntp, "-o", "bogus"}, "unknown option");
    expect_refused({"--bogus", pool, mntp}, "unknown option");
    expect_refused({pool, mntp, "-o", "limits=huge"}, "limits");
    expect_refused({pool, mntp, "-o", "uid=no-such-user-kvpfs"}, "uid");
    expect_refused({pool, mntp, "-o", "gid=no-such-group-kvpfs"}, "gid");
    expect_refused({pool, mntp, "-o", "umask=9"}, "umask");
    // MOUNTPOINT equal to, inside or holding POOL_DIR: a mount would hide the pool files.
    expect_refused({pool, pool}, "is POOL_DIR");
    expect_refused({pool, dir_}, "holds POOL_DIR");
    expect_refused({pool, mntp, "-o", "lock_timeout=-1"}, "lock_timeout");
    expect_refused({pool, mntp, "extra"}, "too many arguments");
}

TEST_F(BadUseTest, HelpAndVersion) {
    std::string out;
    EXPECT_EQ(run_program({kvpfs_binary(), "--help"}, &out), 0);
    EXPECT_NE(out.find("POOL_DIR"), std::string::npos);
    EXPECT_NE(out.find("lock_timeout"), std::string::npos);
    EXPECT_EQ(run_program({kvpfs_binary(), "-V"}, &out), 0);
    EXPECT_EQ(out.rfind("kvpfs ", 0), 0u) << out;
}

TEST_F(KvpfsTest, SigtermUnmountsCleanlyAndExitsZero) {
    set_pool(1, {{"k", "v"}});
    ASSERT_EQ(cat("guest/k"), "v\n");
    const int status = stop_daemon(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << daemon_log();
    EXPECT_FALSE(mounted());
}

TEST_F(KvpfsTest, SigintUnmountsCleanlyAndExitsZero) {
    const int status = stop_daemon(SIGINT);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    EXPECT_EQ(WEXITSTATUS(status), 0) << daemon_log();
    EXPECT_FALSE(mounted());
}

class MountOptionsAfterPathsTest : public KvpfsTest {
  protected:
    // What mount.fuse3 passes: kvpfs POOL MNT -o rw,dev,suid,... (here via fixture order:
    // -f first, then these, then the paths; the next test puts them after the paths).
    std::vector<std::string> daemon_options() const override {
        return {"-o", "rw,nodev,nosuid,allow_other,noatime,lock_timeout=2"};
    }
};

TEST_F(MountOptionsAfterPathsTest, GenericMountOptionsAreAccepted) {
    set_pool(1, {{"k", "v"}});
    EXPECT_EQ(cat("guest/k"), "v\n");
    const std::string mounts = read_bytes("/proc/self/mounts");
    const auto line_start = mounts.find(" " + mnt() + " ");
    ASSERT_NE(line_start, std::string::npos);
    const std::string line = mounts.substr(line_start, mounts.find('\n', line_start) - line_start);
    EXPECT_NE(line.find("fuse.kvpfs"), std::string::npos) << line;
    EXPECT_NE(line.find("default_permissions"), std::string::npos) << line;
    EXPECT_NE(line.find("allow_other"), std::string::npos) << line;
    EXPECT_NE(line.find("nodev"), std::string::npos) << line;
}

// The fstab/mount(8) route: mount(8) runs mount.fuse3, which runs `kvpfs POOL MNT -o OPTS`
// (options after the paths) found on PATH; kvpfs detaches and logs to syslog. mount(8)
// runs helpers with its own PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:
// /sbin:/bin), so `-t fuse.kvpfs` needs an installed kvpfs; these tests run mount.fuse3
// with the build dir on PATH, and mount(8) with the `-t fuse PROGRAM#SOURCE` form.
class MountHelperTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::access("/sbin/mount.fuse3", X_OK) != 0) {
            GTEST_SKIP() << "mount.fuse3 not installed";
        }
        char tmpl[] = "/tmp/kvpfs-mounthelper.XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        pool_ = dir_ + "/pool";
        mnt_ = dir_ + "/mnt";
        std::filesystem::create_directory(pool_);
        std::filesystem::create_directory(mnt_);
        ASSERT_EQ(::mount("tmpfs", pool_.c_str(), "tmpfs", 0, "size=8m"), 0);
        tmpfs_ = true;
        write_records(pool_ + "/.kvp_pool_3", {{"HostName", "h1"}});
    }
    void TearDown() override {
        if (!dir_.empty() && is_fuse_mount(mnt_)) {
            ::umount2(mnt_.c_str(), MNT_DETACH);
        }
        if (tmpfs_) {
            ::umount2(pool_.c_str(), MNT_DETACH);
        }
        if (!dir_.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(dir_, ec);
        }
    }
    void check_mounted_and_unmount(int rc, const std::string& out) {
        ASSERT_EQ(rc, 0) << out;
        EXPECT_TRUE(is_fuse_mount(mnt_));
        EXPECT_EQ(read_bytes(mnt_ + "/parameter/HostName"), "h1\n");
        const std::string mounts = read_bytes("/proc/self/mounts");
        EXPECT_NE(mounts.find(mnt_ + " fuse.kvpfs "), std::string::npos);
        std::string uout;
        EXPECT_EQ(run_program({"umount", mnt_}, &uout), 0) << uout;
        EXPECT_FALSE(is_fuse_mount(mnt_));
    }
    std::string dir_, pool_, mnt_;
    bool tmpfs_ = false;
};

TEST_F(MountHelperTest, MountFuse3RunsKvpfsWithOptionsAfterThePaths) {
    const std::string bin_dir = std::filesystem::path(kvpfs_binary()).parent_path().string();
    std::string out;
    const int rc = run_program(
        {"/sbin/mount.fuse3", pool_, mnt_, "-t", "kvpfs", "-o", "allow_other,nodev,nosuid,noatime"},
        &out, {"PATH=" + bin_dir + ":/usr/sbin:/usr/bin:/sbin:/bin"});
    check_mounted_and_unmount(rc, out);
}

TEST_F(MountHelperTest, MountTypeFuseWithProgramAndSource) {
    std::string out;
    const int rc = run_program(
        {"mount", "-t", "fuse", kvpfs_binary() + "#" + pool_, mnt_, "-o", "allow_other"}, &out);
    check_mounted_and_unmount(rc, out);
}

}  // namespace
}  // namespace kvptest
