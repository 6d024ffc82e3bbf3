#pragma once
// A tiny logging seam: the engine logs through it, each program decides where lines go
// (stderr, syslog, a test's capture).

#include <functional>
#include <string>
#include <string_view>

#include "escape.hpp"  // printable(): the escaping every line gets

namespace kvp {

enum class LogLevel { debug, info, warning, error };

using LogSink = std::function<void(LogLevel, const std::string&)>;

// Replaces the sink (default: stderr, debug lines hidden). Not thread-safe against log();
// call it once at start-up.
void set_log_sink(LogSink sink);
void set_log_debug(bool enabled);
[[nodiscard]] bool log_debug_enabled();
// Every control byte of `message` is escaped (\n, \xNN; '\\' doubled) before it reaches
// the sink, so no name in it can start a line of its own. Error lines are rate-limited:
// after a burst, the ones left out are counted and said in one summary line.
void log(LogLevel level, const std::string& message);
// log() the first time this process says `message`; later calls with the same text say
// nothing. For a lasting condition met again at every look (a directory inotify may not
// watch): one line, not one per look for as long as the condition lasts.
void log_once(LogLevel level, const std::string& message);
// Says how many error lines the rate limit left out, if any (at exit).
void log_flush();

// The lxcfs idiom: log a reason and hand back the errno value to return.
inline int log_error(int negative_errno, const std::string& message) {
    log(LogLevel::error, message);
    return negative_errno;
}

}  // namespace kvp
