#pragma once
// SIGINT and SIGTERM as a descriptor, for the commands that sleep in poll() until something
// happens (watch, wait): they end cleanly on either signal instead of dying half-way.

#include <signal.h>

#include "unique_fd.hpp"

namespace kvpctl {

// Blocks SIGINT and SIGTERM into a signalfd for the life of the object, restoring the
// previous mask and dispositions after. The dispositions are set to default first: a
// shell starts background jobs with SIGINT ignored, and an ignored signal never queues.
class SignalFd {
  public:
    SignalFd();
    SignalFd(const SignalFd&) = delete;
    SignalFd& operator=(const SignalFd&) = delete;
    SignalFd(SignalFd&&) = delete;
    SignalFd& operator=(SignalFd&&) = delete;
    ~SignalFd() { restore(); }

    [[nodiscard]] int get() const { return fd_.get(); }
    // The signal received, or 0.
    int take();

  private:
    void restore();

    sigset_t mask_{};
    sigset_t old_mask_{};
    struct sigaction old_int_ {};
    struct sigaction old_term_ {};
    kvp::UniqueFd fd_;
};

}  // namespace kvpctl
