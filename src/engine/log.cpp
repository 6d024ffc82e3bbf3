#include "log.hpp"

#include <cstdio>
#include <utility>

namespace kvp {
namespace {

const char* level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warning:
            return "warning";
        case LogLevel::error:
            return "error";
    }
    return "?";
}

void stderr_sink(LogLevel level, const std::string& message) {
    std::fprintf(stderr, "kvp: %s: %s\n", level_name(level), message.c_str());
}

LogSink& sink() {
    static LogSink current = stderr_sink;
    return current;
}

bool& debug_flag() {
    static bool enabled = false;
    return enabled;
}

}  // namespace

void set_log_sink(LogSink new_sink) {
    sink() = new_sink ? std::move(new_sink) : stderr_sink;
}
void set_log_debug(bool enabled) {
    debug_flag() = enabled;
}
bool log_debug_enabled() {
    return debug_flag();
}

void log(LogLevel level, const std::string& message) {
    if (level == LogLevel::debug && !debug_flag()) {
        return;
    }
    sink()(level, message);
}

}  // namespace kvp
