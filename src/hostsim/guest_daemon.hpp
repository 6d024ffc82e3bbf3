#pragma once
// Runs the real, unmodified hv_kvp_daemon (-n, in the foreground) in a private mount
// namespace of its own, where /dev/vmbus/hv_kvp is the FUSE device file, /dev/log is
// kvp-host's syslog socket, and /var/lib/hyperv is the pool directory under test.

#include <sys/types.h>

#include <string>

namespace hostsim {

struct GuestDaemonSetup {
    std::string program;      // hv_kvp_daemon
    std::string pool_dir;     // becomes /var/lib/hyperv
    std::string device_file;  // becomes /dev/vmbus/hv_kvp
    std::string log_socket;   // becomes /dev/log
    std::string stage_dir;    // an empty directory: the new /dev is built on it
    std::string output_log;   // the daemon's stdout and stderr (and why it could not start)
};

// Forks and starts the daemon; returns its pid. Throws std::runtime_error when it cannot
// even fork; a failure inside the new namespace ends the child with status 126 (reason in
// output_log) and 127 when the program cannot be executed.
pid_t start_guest_daemon(const GuestDaemonSetup& setup);

}  // namespace hostsim
