#pragma once
// A /dev/log for hv_kvp_daemon, which logs only through syslog(3): a datagram socket whose
// messages are appended, one a line with the time kvp-host received them, to a file.

#include <atomic>
#include <string>
#include <thread>

#include "unique_fd.hpp"

namespace hostsim {

class SyslogSink {
  public:
    // Binds `socket_path` (replacing a stale socket) and appends to `log_file`.
    SyslogSink(std::string socket_path, const std::string& log_file);
    SyslogSink(const SyslogSink&) = delete;
    SyslogSink& operator=(const SyslogSink&) = delete;
    SyslogSink(SyslogSink&&) = delete;
    SyslogSink& operator=(SyslogSink&&) = delete;
    ~SyslogSink();

    // Adds a line of kvp-host's own (the device's and the server's events) to the file.
    void note(const std::string& line);

  private:
    void run();
    void append(const std::string& line);

    std::string socket_path_;
    kvp::UniqueFd socket_;
    kvp::UniqueFd file_;
    std::atomic<bool> stop_{false};
    std::thread reader_;
};

}  // namespace hostsim
