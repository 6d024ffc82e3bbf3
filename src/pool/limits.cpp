#include "limits.hpp"

#include <cerrno>

namespace kvp {
namespace {

// The length limits; `utf8_valid` is passed in so that the text is scanned only once.
Violation check_length(std::string_view text, Limits limits, std::size_t max_bytes,
                       std::size_t max_units, bool utf8_valid) {
    if (text.find('\0') != std::string_view::npos) {
        return Violation::contains_nul;
    }
    if (text.size() > max_bytes) {
        return Violation::too_long_bytes;
    }
    if (limits == Limits::host && utf8_valid && utf16_units(text) > max_units) {
        return Violation::too_long_utf16;
    }
    return Violation::none;
}

Violation check_text(std::string_view text, Limits limits, std::size_t max_bytes,
                     std::size_t max_units) {
    const bool utf8_valid = limits == Limits::pool || valid_utf8(text);
    const Violation length = check_length(text, limits, max_bytes, max_units, utf8_valid);
    if (length != Violation::none) {
        return length;
    }
    return utf8_valid ? Violation::none : Violation::invalid_utf8;
}

}  // namespace

Violation check_key(std::string_view key, Limits limits) {
    if (key.empty()) {
        return Violation::empty_key;
    }
    return check_text(key, limits, kMaxKeyBytes, kMaxHostKeyUtf16);
}

Violation check_value(std::string_view value, Limits limits) {
    return check_text(value, limits, kMaxValueBytes, kMaxHostValueUtf16);
}

Violation check_value_length(std::string_view value, Limits limits) {
    const bool utf8_valid = limits == Limits::pool || valid_utf8(value);
    const Violation v = check_length(value, limits, kMaxValueBytes, kMaxHostValueUtf16, utf8_valid);
    return v == Violation::contains_nul ? Violation::none : v;
}

int key_errno(Violation v) {
    switch (v) {
        case Violation::none:
            return 0;
        case Violation::too_long_bytes:
        case Violation::too_long_utf16:
            return ENAMETOOLONG;
        case Violation::empty_key:
        case Violation::contains_nul:
        case Violation::invalid_utf8:
            return EINVAL;
    }
    return EINVAL;
}

int value_errno(Violation v) {
    switch (v) {
        case Violation::none:
            return 0;
        case Violation::too_long_bytes:
        case Violation::too_long_utf16:
            return EFBIG;
        case Violation::empty_key:
        case Violation::contains_nul:
        case Violation::invalid_utf8:
            return EINVAL;
    }
    return EINVAL;
}

const char* describe(Violation v) {
    switch (v) {
        case Violation::none:
            return "within limits";
        case Violation::empty_key:
            return "the key is empty";
        case Violation::contains_nul:
            return "contains a NUL byte, which the pool format cannot store";
        case Violation::too_long_bytes:
            return "longer than the pool format allows (keys 511 bytes, values 2047)";
        case Violation::too_long_utf16:
            return "longer than the host receives intact (keys 254 UTF-16 units, values 1022)";
        case Violation::invalid_utf8:
            return "not valid UTF-8, which the host rejects";
    }
    return "unknown";
}

}  // namespace kvp
