#pragma once
// The one escaper: a string made printable on one line, for the log and for kvpctl's output.
// Well-formed UTF-8 stays as it is; '\\' and the C0 controls become C escapes (\n, \r, \t,
// \\, \xNN for the others and DEL); bytes that are not UTF-8 become \xNN, one per byte.

#include <string>
#include <string_view>

namespace kvp {

struct EscapeStyle {
    // Wrapped in double quotes, '"' escaped as \": unambiguous where the text is quoted.
    bool quoted = false;
    // C1 controls (U+0080..U+009F), U+2028 and U+2029 escaped as \xNN per byte too: nothing
    // in the text can start a line or a terminal escape (what a log line needs).
    bool unicode_controls = false;
};

[[nodiscard]] std::string escape(std::string_view text, EscapeStyle style);

// The log's style: every control, C0 or C1, escaped (log() passes every line through it).
[[nodiscard]] inline std::string printable(std::string_view text) {
    return escape(text, {.quoted = false, .unicode_controls = true});
}

}  // namespace kvp
