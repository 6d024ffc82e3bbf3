#include "log.hpp"
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

// The length of the well-formed UTF-8 sequence `text` starts with (no overlong forms, no
// surrogates, nothing past U+10FFFF), or 0 when it does not start with one.
std::size_t utf8_sequence_length(std::string_view text) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const auto continuation = [&](std::size_t k) {
        return k < text.size() && (byte(k) & 0xc0) == 0x80;
    };
    const unsigned char lead = byte(0);
    if (lead >= 0xc2 && lead <= 0xdf) {
        return continuation(1) ? 2 : 0;
    }
    if (lead >= 0xe0 && lead <= 0xef) {
        if (!continuation(1) || !continuation(2)) {
            return 0;
        }
        if ((lead == 0xe0 && byte(1) < 0xa0) || (lead == 0xed && byte(1) >= 0xa0)) {
            return 0;  // overlong, or a UTF-16 surrogate
        }
        return 3;
    }
    if (lead >= 0xf0 && lead <= 0xf4) {
        if (!continuation(1) || !continuation(2) || !continuation(3)) {
            return 0;
        }
        if ((lead == 0xf0 && byte(1) < 0x90) || (lead == 0xf4 && byte(1) >= 0x90)) {
            return 0;  // overlong, or past U+10FFFF
        }
        return 4;
    }
    return 0;
}

// The code point of one well-formed sequence (see utf8_sequence_length).
char32_t utf8_code_point(std::string_view sequence) {
    const auto lead = static_cast<unsigned char>(sequence[0]);
    char32_t code = sequence.size() == 2   ? (lead & 0x1fU)
                    : sequence.size() == 3 ? (lead & 0x0fU)
                                           : (lead & 0x07U);
    for (std::size_t k = 1; k < sequence.size(); ++k) {
        code = (code << 6) | (static_cast<unsigned char>(sequence[k]) & 0x3fU);
    }
    return code;
}

}  // namespace

std::string printable(std::string_view text) {
    static const char kHex[] = "0123456789abcdef";
    const auto escape_byte = [](std::string& out, unsigned char c) {
        out += "\\x";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
    };
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            switch (c) {
                case '\n':
                    out += "\\n";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                default:
                    if (c < 0x20 || c == 0x7f) {
                        escape_byte(out, c);
                    } else {
                        out.push_back(static_cast<char>(c));
                    }
            }
            ++i;
            continue;
        }
        // Past ASCII: a well-formed UTF-8 sequence of a printable character stays as it is.
        // Bytes that are not UTF-8 (a lone 0x9b is CSI to an 8-bit terminal), C1 controls
        // (U+0085 NEL ends a line for some readers) and the line and paragraph separators
        // are escaped byte by byte, so nothing in a name can start a line or an escape.
        const std::size_t length = utf8_sequence_length(text.substr(i));
        if (length == 0) {
            escape_byte(out, c);
            ++i;
            continue;
        }
        const char32_t code = utf8_code_point(text.substr(i, length));
        const bool control = code < 0xa0 || code == 0x2028 || code == 0x2029;
        for (std::size_t k = 0; k < length; ++k) {
            if (control) {
                escape_byte(out, static_cast<unsigned char>(text[i + k]));
            } else {
                out.push_back(text[i + k]);
            }
        }
        i += length;
    }
    return out;
}

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
