#include "guest_daemon.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace hostsim {
namespace {

// Everything the child needs, prepared before fork(): after it, in a threaded parent, the
// child may only make system calls.
struct ChildPlan {
    std::string program;
    std::string pool_dir;
    std::string device_file;
    std::string log_socket;
    std::string stage;
    std::string stage_vmbus;
    std::string stage_device;
    std::string stage_log;
    std::vector<std::pair<std::string, std::string>> nodes;  // host /dev/X -> stage/X
    std::vector<std::pair<std::string, std::string>> links;  // target, stage/name
    bool var_lib_hyperv_exists = false;
};

void say(int fd, const char* text) {
    (void)!::write(fd, text, std::strlen(text));
}

[[noreturn]] void child_fail(int fd, const char* step, const char* path) {
    const int err = errno;
    say(fd, "kvp-host: cannot start hv_kvp_daemon: ");
    say(fd, step);
    say(fd, " ");
    say(fd, path);
    say(fd, ": ");
    say(fd, ::strerrordesc_np(err) != nullptr ? ::strerrordesc_np(err) : "error");
    say(fd, "\n");
    ::_exit(126);
}

void make_file(int log, const std::string& path) {
    const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
        child_fail(log, "create", path.c_str());
    }
    ::close(fd);
}

void bind(int log, const std::string& from, const std::string& to) {
    if (::mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        child_fail(log, "bind mount onto", to.c_str());
    }
}

[[noreturn]] void run_child(const ChildPlan& p, int log) {
    // The server blocks its signals for sigwait(): the daemon gets the defaults back.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) {
        ::signal(sig, SIG_DFL);
    }
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || ::dup2(null_fd, 0) < 0 || ::dup2(log, 1) < 0 || ::dup2(log, 2) < 0) {
        child_fail(log, "redirect", "stdio");
    }
    if (::unshare(CLONE_NEWNS) != 0) {
        child_fail(log, "unshare", "a mount namespace");
    }
    // Nothing mounted from here on reaches the rest of the machine.
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
        child_fail(log, "make slave", "/");
    }
    if (::mount("kvp-host-dev", p.stage.c_str(), "tmpfs", MS_NOSUID, "mode=0755,size=64k") != 0) {
        child_fail(log, "mount tmpfs on", p.stage.c_str());
    }
    if (::mkdir(p.stage_vmbus.c_str(), 0755) != 0) {
        child_fail(log, "mkdir", p.stage_vmbus.c_str());
    }
    make_file(log, p.stage_device);
    make_file(log, p.stage_log);
    for (const auto& [from, to] : p.nodes) {
        make_file(log, to);
        bind(log, from, to);
    }
    for (const auto& [target, name] : p.links) {
        if (::symlink(target.c_str(), name.c_str()) != 0) {
            child_fail(log, "symlink", name.c_str());
        }
    }
    bind(log, p.device_file, p.stage_device);
    bind(log, p.log_socket, p.stage_log);
    if (::mount(p.stage.c_str(), "/dev", nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        child_fail(log, "bind mount onto", "/dev");
    }
    if (!p.var_lib_hyperv_exists) {
        // No /var/lib/hyperv on this machine: a small tmpfs over /var/lib holds the mount
        // point (the daemon reads nothing else there).
        if (::mount("kvp-host-var-lib", "/var/lib", "tmpfs", MS_NOSUID, "mode=0755,size=64k") !=
            0) {
            child_fail(log, "mount tmpfs on", "/var/lib");
        }
        if (::mkdir("/var/lib/hyperv", 0755) != 0) {
            child_fail(log, "mkdir", "/var/lib/hyperv");
        }
    }
    if (::mount(p.pool_dir.c_str(), "/var/lib/hyperv", nullptr, MS_BIND, nullptr) != 0) {
        child_fail(log, "bind mount onto", "/var/lib/hyperv");
    }
    if (::chdir("/") != 0) {
        child_fail(log, "chdir", "/");
    }
    const std::array<const char*, 3> argv{p.program.c_str(), "-n", nullptr};
    ::execv(p.program.c_str(), const_cast<char* const*>(argv.data()));
    const int err = errno;
    say(log, "kvp-host: cannot execute ");
    say(log, p.program.c_str());
    say(log, ": ");
    say(log, ::strerrordesc_np(err) != nullptr ? ::strerrordesc_np(err) : "error");
    say(log, "\n");
    ::_exit(127);
}

}  // namespace

pid_t start_guest_daemon(const GuestDaemonSetup& setup) {
    ChildPlan p;
    p.program = setup.program;
    p.pool_dir = setup.pool_dir;
    p.device_file = setup.device_file;
    p.log_socket = setup.log_socket;
    p.stage = setup.stage_dir;
    p.stage_vmbus = p.stage + "/vmbus";
    p.stage_device = p.stage_vmbus + "/hv_kvp";
    p.stage_log = p.stage + "/log";
    for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
        const std::string host = std::string("/dev/") + node;
        struct stat st {};
        if (::stat(host.c_str(), &st) == 0) {
            p.nodes.emplace_back(host, p.stage + "/" + node);
        }
    }
    p.links = {{"/proc/self/fd", p.stage + "/fd"},
               {"/proc/self/fd/0", p.stage + "/stdin"},
               {"/proc/self/fd/1", p.stage + "/stdout"},
               {"/proc/self/fd/2", p.stage + "/stderr"}};
    struct stat st {};
    p.var_lib_hyperv_exists = ::stat("/var/lib/hyperv", &st) == 0 && S_ISDIR(st.st_mode);

    const int log =
        ::open(setup.output_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) {
        throw std::runtime_error("cannot open " + setup.output_log + ": " + std::strerror(errno));
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
        const int err = errno;
        ::close(log);
        throw std::runtime_error(std::string("fork: ") + std::strerror(err));
    }
    if (pid == 0) {
        run_child(p, log);
    }
    ::close(log);
    return pid;
}

}  // namespace hostsim
