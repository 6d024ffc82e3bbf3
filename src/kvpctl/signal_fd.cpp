#include "signal_fd.hpp"

#include <sys/signalfd.h>
#include <unistd.h>

#include "error.hpp"

namespace kvpctl {

SignalFd::SignalFd() {
    sigemptyset(&mask_);
    sigaddset(&mask_, SIGINT);
    sigaddset(&mask_, SIGTERM);
    if (::sigprocmask(SIG_BLOCK, &mask_, &old_mask_) != 0) {
        kvp::throw_errno("sigprocmask");
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGINT, &dfl, &old_int_);
    ::sigaction(SIGTERM, &dfl, &old_term_);
    fd_.reset(::signalfd(-1, &mask_, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd_) {
        restore();
        kvp::throw_errno("signalfd");
    }
}

int SignalFd::take() {
    struct signalfd_siginfo info {};
    if (::read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        return static_cast<int>(info.ssi_signo);
    }
    return 0;
}

void SignalFd::restore() {
    fd_.reset();
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
}

}  // namespace kvpctl
