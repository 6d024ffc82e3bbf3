#pragma once
// `kvp-host serve`: mounts the device, runs hv_kvp_daemon on it and answers host verbs on
// the control socket until SIGTERM/SIGINT.

#include <chrono>
#include <string>

namespace hostsim {

struct ServeOptions {
    std::string pool_dir;
    std::string state_dir;
    std::string socket_path;
    std::string daemon_program = "/usr/sbin/hv_kvp_daemon";
    std::string log_file;
    std::chrono::milliseconds timeout{30000};  // the driver's (Linux 6.1: 30 s)
    bool start_daemon = true;
};

int serve(ServeOptions options);

}  // namespace hostsim
