#pragma once
// Moves the calling thread into a fresh network namespace (only loopback, down) for one
// test, and back afterwards; with CLONE_NEWUTS also into its own host name. Namespaces
// belong to a thread, so programs the test runs (ip) and daemons it starts (forked from
// this thread) share the new ones, and the addresses a test adds are exactly the ones there
// are. Needs CAP_SYS_ADMIN.

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace kvptest {

class NetnsGuard {
  public:
    explicit NetnsGuard(bool own_host_name = false) {
        original_net_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        original_uts_ = ::open("/proc/thread-self/ns/uts", O_RDONLY | O_CLOEXEC);
        const int flags = CLONE_NEWNET | (own_host_name ? CLONE_NEWUTS : 0);
        if (original_net_ < 0 || original_uts_ < 0) {
            error_ = std::string("open /proc/thread-self/ns/*: ") + std::strerror(errno);
        } else if (::unshare(flags) != 0) {
            error_ = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
        }
    }
    ~NetnsGuard() {
        if (error_.empty()) {
            (void)::setns(original_net_, CLONE_NEWNET);
            (void)::setns(original_uts_, CLONE_NEWUTS);
        }
        for (int fd : {original_net_, original_uts_}) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    }
    NetnsGuard(const NetnsGuard&) = delete;
    NetnsGuard& operator=(const NetnsGuard&) = delete;

    // "" when the thread is in its own namespace; else why not.
    [[nodiscard]] const std::string& error() const { return error_; }

  private:
    int original_net_ = -1;
    int original_uts_ = -1;
    std::string error_;
};

// Runs `ip ARGS...` (quietly); true when it exits 0.
inline bool ip(const std::vector<std::string>& args) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        std::vector<char*> argv;
        argv.push_back(const_cast<char*>("ip"));
        for (const std::string& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 1);
        ::dup2(null, 2);
        ::execvp("ip", argv.data());
        ::_exit(127);
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid) {
        return false;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Adds an interface that is up, not a loopback, and has no automatic IPv6 link-local
// address (so the test knows every address on it): a dummy, or a bridge without ports
// where the kernel has no dummy driver.
inline bool add_interface(const std::string& name) {
    if (!ip({"link", "add", name, "type", "dummy"}) &&
        !ip({"link", "add", name, "type", "bridge"})) {
        return false;
    }
    return ip({"link", "set", name, "addrgenmode", "none"}) && ip({"link", "set", name, "up"});
}

}  // namespace kvptest
