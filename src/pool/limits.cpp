#include "limits.hpp"

#include <cerrno>
#include <cstdint>

namespace kvp {
namespace {

// Length of the well-formed UTF-8 sequence at text[i], or 0 if it is not one
// (overlongs, surrogates and code points past U+10FFFF are refused, as the kernel's
// utf8s_to_utf16s refuses them).
std::size_t sequence_length(std::string_view text, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[k]); };
    const std::uint8_t lead = byte(i);
    if (lead < 0x80) {
        return 1;
    }
    std::size_t length = 0;
    std::uint32_t cp = 0;
    if ((lead & 0xE0) == 0xC0) {
        length = 2;
        cp = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3;
        cp = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4;
        cp = lead & 0x07;
    } else {
        return 0;
    }
    if (i + length > text.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (byte(i + k) & 0x3F);
    }
    static constexpr std::uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMinimum[length] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return length;
}

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

bool valid_utf8(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t length = sequence_length(text, i);
        if (length == 0) {
            return false;
        }
        i += length;
    }
    return true;
}

std::size_t utf16_units(std::string_view text) {
    std::size_t units = 0;
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t length = sequence_length(text, i);
        units += length == 4 ? 2 : 1;
        i += length == 0 ? 1 : length;
    }
    return units;
}

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
