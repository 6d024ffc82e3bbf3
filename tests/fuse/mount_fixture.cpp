#include "mount_fixture.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace kvptest {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

void lock_both(int fd, short type) {
    if (::flock(fd, type == F_WRLCK ? LOCK_EX : LOCK_SH) != 0) {
        fail("flock");
    }
    struct flock fl {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd, F_SETLKW, &fl) != 0) {
        fail("fcntl F_SETLKW");
    }
}

void unlock_both(int fd) {
    struct flock fl {};
    fl.l_type = F_UNLCK;
    fl.l_whence = SEEK_SET;
    (void)::fcntl(fd, F_SETLK, &fl);
    (void)::flock(fd, LOCK_UN);
}

// Reaps `pid`, waiting at most `limit`; returns the status or -1 if it is still running.
int reap(pid_t pid, std::chrono::milliseconds limit) {
    const auto end = Clock::now() + limit;
    for (;;) {
        int status = 0;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return status;
        }
        if (r < 0 && errno != EINTR) {
            return 0;
        }
        if (Clock::now() > end) {
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // polling, not a guess
    }
}

std::vector<char*> cstrings(std::vector<std::string>& v) {
    std::vector<char*> out;
    out.reserve(v.size() + 1);
    for (auto& s : v) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

}  // namespace

std::string read_bytes(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return "<missing>";
        }
        fail("open " + path);
    }
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            ::close(fd);
            fail("read " + path);
        }
        if (n == 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

void write_locked(const std::string& path, const std::string& bytes) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fail("open " + path);
    }
    lock_both(fd, F_WRLCK);
    bool ok = ::ftruncate(fd, 0) == 0;
    std::size_t done = 0;
    while (ok && done < bytes.size()) {
        ssize_t n =
            ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
        ok = n > 0;
        done += ok ? static_cast<std::size_t>(n) : 0;
    }
    unlock_both(fd);
    ::close(fd);
    if (!ok) {
        fail("write " + path);
    }
}

void write_records(const std::string& path, const std::vector<Rec>& recs, bool garbage) {
    write_locked(path, encode_records(recs, garbage ? Fill::letters() : Fill{}));
}

HeldLock::HeldLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) {
        fail("open " + path);
    }
    lock_both(fd_, F_WRLCK);
}

HeldLock::~HeldLock() {
    unlock_both(fd_);
    ::close(fd_);
}

std::string extra_mount_options() {
    const char* env = std::getenv("KVPFS_TEST_MOUNT_OPTIONS");
    return env != nullptr ? env : "";
}

bool cache_mode() {
    const std::string extra = "," + extra_mount_options() + ",";
    return extra.find(",cache,") != std::string::npos || extra.find(",cache=") != std::string::npos;
}

bool contents_cached() {
    const std::string extra = "," + extra_mount_options() + ",";
    return extra.find(",cache=all,") != std::string::npos;
}

bool shown_after_outside_change(const std::function<bool()>& shown) {
    return cache_mode() ? eventually(shown, kStalenessBound) : shown();
}

std::string kvpfs_binary() {
    const char* env = std::getenv("KVPFS_BIN");
    return env != nullptr ? env : KVPFS_BIN;
}

void KvpfsTest::SetUp() {
    char tmpl[] = "/tmp/kvpfs-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr) << std::strerror(errno);
    base_ = tmpl;
    pool_ = base_ + "/pool";
    mnt_ = base_ + "/mnt";
    log_ = base_ + "/daemon.log";
    ASSERT_EQ(::mkdir(pool_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(mnt_.c_str(), 0755), 0);
    ASSERT_EQ(::mount("tmpfs", pool_.c_str(), "tmpfs", 0, "size=64m,mode=0755"), 0)
        << "mount tmpfs: " << std::strerror(errno) << " (the mount tests need root)";
    tmpfs_ = true;
    for (int n = 0; n < 5; ++n) {
        int fd = ::open(pool_path(n).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        ASSERT_GE(fd, 0);
        ::close(fd);
    }
    start_daemon();
}

void KvpfsTest::start_daemon() {
    std::vector<std::string> args{kvpfs_binary(), "-f"};
    for (auto& o : daemon_options()) {
        args.push_back(o);
    }
    // The mount-cache run: every test again with these options (e.g. "cache").
    if (const std::string extra = extra_mount_options(); !extra.empty()) {
        args.emplace_back("-o");
        args.push_back(extra);
    }
    args.push_back(pool_);
    args.push_back(mnt_);
    auto argv = cstrings(args);
    int logfd = ::open(log_.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(logfd, 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::dup2(logfd, 1);
        ::dup2(logfd, 2);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(logfd);
    daemon_ = pid;
    const auto end = Clock::now() + std::chrono::seconds(10);
    while (!mounted()) {
        int status = 0;
        if (::waitpid(daemon_, &status, WNOHANG) == daemon_) {
            daemon_ = -1;
            FAIL() << "kvpfs exited before mounting (status " << status << "): " << daemon_log();
        }
        ASSERT_LT(Clock::now(), end) << "kvpfs did not mount within 10 s: " << daemon_log();
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

bool KvpfsTest::mounted() const {
    struct statfs sf {};
    return ::statfs(mnt_.c_str(), &sf) == 0 && sf.f_type == kFuseSuperMagic;
}

bool KvpfsTest::pool_kept(int n, const std::string& before) const {
    return pool_raw(n) == before;
}

bool KvpfsTest::requests_answered() const {
    constexpr const char* kConnections = "/sys/fs/fuse/connections";
    struct statfs sf {};
    if (::statfs(kConnections, &sf) != 0 || sf.f_type != kFuseCtlSuperMagic) {
        // Where nobody mounted fusectl yet (no systemd), the test mounts it: root runs these.
        (void)::mount("fusectl", kConnections, "fusectl", 0, nullptr);
    }
    struct stat st {};
    if (::stat(mnt_.c_str(), &st) != 0) {
        return false;
    }
    // The connection's directory is named after the kernel's own encoding of the device.
    const unsigned long long dev =
        (static_cast<unsigned long long>(major(st.st_dev)) << 20) | minor(st.st_dev);
    const std::string waiting = std::string(kConnections) + "/" + std::to_string(dev) + "/waiting";
    return eventually([&] {
        const std::string count = read_bytes(waiting);
        return count == "0\n";
    });
}

int KvpfsTest::stop_daemon(int sig) {
    if (daemon_ < 0) {
        return -1;
    }
    ::kill(daemon_, sig);
    int status = reap(daemon_, std::chrono::seconds(10));
    if (status != -1) {
        daemon_ = -1;
    }
    return status;
}

void KvpfsTest::TearDown() {
    cleanup();
}

void KvpfsTest::cleanup() {
    if (daemon_ >= 0) {
        // A daemon that died during the test is a failure of its own, whatever the test saw.
        int status = 0;
        if (::waitpid(daemon_, &status, WNOHANG) == daemon_) {
            daemon_ = -1;
            ADD_FAILURE() << "kvpfs died during the test: "
                          << (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                                  : "exit " + std::to_string(WEXITSTATUS(status)))
                          << "\n"
                          << daemon_log();
        }
    }
    if (!mnt_.empty()) {
        // Detach first: a live daemon then sees ENODEV and exits; a dead one leaves a
        // broken mount that only a detach removes.
        for (int i = 0; i < 3 && (mounted() || daemon_ >= 0); ++i) {
            if (::umount2(mnt_.c_str(), MNT_DETACH) != 0) {
                break;
            }
        }
    }
    if (daemon_ >= 0) {
        if (reap(daemon_, std::chrono::seconds(5)) == -1) {
            ::kill(daemon_, SIGKILL);
            (void)reap(daemon_, std::chrono::seconds(5));
        }
        daemon_ = -1;
    }
    if (tmpfs_) {
        ::umount2(pool_.c_str(), MNT_DETACH);
        tmpfs_ = false;
    }
    if (!base_.empty()) {
        // A sanitizer build of the daemon reports into its log: any report fails the test.
        if (const std::string log = daemon_log(); log.find("Sanitizer") != std::string::npos ||
                                                  log.find("runtime error:") != std::string::npos) {
            ADD_FAILURE() << "kvpfs sanitizer report:\n" << log;
        }
        std::error_code ec;
        ::rmdir(mnt_.c_str());
        std::filesystem::remove_all(base_, ec);
    }
}

std::string KvpfsTest::mnt(const std::string& rel) const {
    return rel.empty() ? mnt_ : mnt_ + "/" + rel;
}

std::string KvpfsTest::pool_path(int n) const {
    return pool_ + "/.kvp_pool_" + std::to_string(n);
}

void KvpfsTest::set_pool(int n, const std::vector<Rec>& recs, bool garbage) {
    write_records(pool_path(n), recs, garbage);
}

std::string KvpfsTest::cat(const std::string& rel) const {
    std::string data = read_bytes(mnt(rel));
    if (data == "<missing>") {
        throw std::runtime_error(rel + ": missing");
    }
    return data;
}

int KvpfsTest::read_errno(const std::string& rel) const {
    int fd = ::open(mnt(rel).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno;
    }
    char buf[4096];
    int err = 0;
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            err = errno;
            break;
        }
        if (n == 0) {
            break;
        }
    }
    ::close(fd);
    return err;
}

IoResult KvpfsTest::write_file(const std::string& rel, const std::string& data, int flags) const {
    int fd = ::open(mnt(rel).c_str(), flags | O_CLOEXEC, 0644);
    if (fd < 0) {
        return {errno, "open"};
    }
    IoResult r;
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            r = {errno, "write"};
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    if (::close(fd) != 0 && r.err == 0) {
        r = {errno, "close"};
    }
    return r;
}

std::vector<std::string> KvpfsTest::list(const std::string& rel) const {
    std::vector<std::string> out;
    DIR* d = ::opendir(mnt(rel).c_str());
    if (d == nullptr) {
        throw std::runtime_error("opendir " + rel + ": " + std::strerror(errno));
    }
    while (struct dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") {
            out.push_back(n);
        }
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

int KvpfsTest::stat_errno(const std::string& rel, struct stat* st) const {
    struct stat tmp {};
    return ::stat(mnt(rel).c_str(), st != nullptr ? st : &tmp) == 0 ? 0 : errno;
}

std::string KvpfsTest::daemon_log() const {
    std::string s = read_bytes(log_);
    return s == "<missing>" ? "" : s;
}

int run_program(const std::vector<std::string>& argv_in, std::string* output,
                const std::vector<std::string>& env_extra) {
    std::vector<std::string> args = argv_in;
    auto argv = cstrings(args);
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string var = *e;
        const std::string name = var.substr(0, var.find('='));
        const bool replaced = std::any_of(env_extra.begin(), env_extra.end(), [&](const auto& x) {
            return x.compare(0, name.size() + 1, name + "=") == 0;
        });
        if (!replaced) {
            env.push_back(var);
        }
    }
    for (const auto& e : env_extra) {
        env.push_back(e);
    }
    auto envp = cstrings(env);
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) {
        return -1;
    }
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(pipefd[1], 1);
        ::dup2(pipefd[1], 2);
        ::execvpe(argv[0], argv.data(), envp.data());
        ::_exit(127);
    }
    ::close(pipefd[1]);
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(pipefd[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (output != nullptr) {
        *output = out;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace kvptest
