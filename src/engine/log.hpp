#pragma once
// A tiny logging seam: the engine logs through it, each program decides where lines go
// (stderr, syslog, a test's capture).

#include <functional>
#include <string>

namespace kvp {

enum class LogLevel { debug, info, warning, error };

using LogSink = std::function<void(LogLevel, const std::string&)>;

// Replaces the sink (default: stderr, debug lines hidden). Not thread-safe against log();
// call it once at start-up.
void set_log_sink(LogSink sink);
void set_log_debug(bool enabled);
[[nodiscard]] bool log_debug_enabled();
void log(LogLevel level, const std::string& message);

// The lxcfs idiom: log a reason and hand back the errno value to return.
inline int log_error(int negative_errno, const std::string& message) {
    log(LogLevel::error, message);
    return negative_errno;
}

}  // namespace kvp
