#include "log.hpp"

#include "escape.hpp"
#include "ranked_mutex.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_set>
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

// Error lines (refusals, mostly) are rate-limited in windows of kWindow: at most kPerWindow
// of them each, the rest counted and said in one summary line when the next window starts
// (or at exit), so a user who repeats a bad request 5,000 times fills neither the journal
// nor the disk, and a reader still learns how many there were.
constexpr auto kWindow = std::chrono::seconds(5);
constexpr unsigned kPerWindow = 20;

struct RateLimit {
    // Innermost: lines are logged under any other lock.
    RankedMutex mutex{LockRank::log_rate_limit};
    std::chrono::steady_clock::time_point window_start{};
    unsigned in_window = 0;
    unsigned long long left_out = 0;
};

RateLimit& rate_limit() {
    static RateLimit r;
    return r;
}

// Call under r.mutex; "" when nothing was left out.
std::string take_summary(RateLimit& r) {
    if (r.left_out == 0) {
        return "";
    }
    std::string s = std::to_string(r.left_out) + " more error line" + (r.left_out == 1 ? "" : "s") +
                    " left out (at most " + std::to_string(kPerWindow) + " every " +
                    std::to_string(kWindow.count()) + " s)";
    r.left_out = 0;
    return s;
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
    std::string summary;
    if (!debug_flag()) {  // -d asks for every line
        RateLimit& r = rate_limit();
        std::lock_guard lock(r.mutex);
        const auto now = std::chrono::steady_clock::now();
        if (now - r.window_start >= kWindow) {
            summary = take_summary(r);
            r.window_start = now;
            r.in_window = 0;
        }
        if (level == LogLevel::error && r.in_window++ >= kPerWindow) {
            ++r.left_out;  // (a new window always has room: no summary is pending here)
            return;
        }
    }
    if (!summary.empty()) {
        sink()(LogLevel::warning, summary);
    }
    // Every control byte escaped here, in the one place all lines pass: a crafted key name
    // can never start a log line of its own.
    sink()(level, printable(message));
}

void log_once(LogLevel level, const std::string& message) {
    {
        static RankedMutex mutex{LockRank::log_once};  // the set below; released before log()
        static std::unordered_set<std::string> said;
        std::lock_guard lock(mutex);
        // Bounded: past that many distinct lines, repeating one beats growing for ever.
        constexpr std::size_t kRemembered = 1024;
        if (said.count(message) != 0) {
            return;
        }
        if (said.size() < kRemembered) {
            said.insert(message);
        }
    }
    log(level, message);
}

void log_flush() {
    std::string summary;
    {
        RateLimit& r = rate_limit();
        std::lock_guard lock(r.mutex);
        summary = take_summary(r);
    }
    if (!summary.empty()) {
        sink()(LogLevel::warning, summary);
    }
}

}  // namespace kvp
