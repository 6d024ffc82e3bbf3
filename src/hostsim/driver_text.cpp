#include "driver_text.hpp"

#include <array>
#include <cstdio>

namespace hostsim {
namespace {

constexpr std::uint32_t kPlaneSize = 0x10000;
constexpr std::uint32_t kUnicodeMax = 0x10FFFF;
constexpr std::uint16_t kSurrogateMask = 0xF800;
constexpr std::uint16_t kSurrogatePair = 0xD800;
constexpr std::uint16_t kSurrogateLow = 0x0400;
constexpr std::uint16_t kSurrogateBits = 0x03FF;

bool is_surrogate(std::uint32_t u) {
    return (u & kSurrogateMask) == kSurrogatePair;
}

// One row per UTF-8 sequence length: lead-byte mask and value, the largest code point of
// that length and the smallest (anything below is an overlong form).
struct SequenceRow {
    unsigned lead_mask;
    unsigned lead_value;
    std::uint32_t value_mask;
    std::uint32_t smallest;
};
constexpr std::array<SequenceRow, 6> kSequences{{
    {0x80, 0x00, 0x7F, 0},
    {0xE0, 0xC0, 0x7FF, 0x80},
    {0xF0, 0xE0, 0xFFFF, 0x800},
    {0xF8, 0xF0, 0x1FFFFF, 0x10000},
    {0xFC, 0xF8, 0x3FFFFFF, 0x200000},
    {0xFE, 0xFC, 0x7FFFFFFF, 0x4000000},
}};

// One code point from `s` (length `len` > 0): its length, or -1 when the bytes are not a
// well-formed sequence of a Unicode scalar value.
int decode_one(const unsigned char* s, std::size_t len, std::uint32_t* out) {
    const unsigned lead = s[0];
    std::uint32_t value = lead;
    for (std::size_t n = 0; n < kSequences.size(); ++n) {
        const SequenceRow& row = kSequences[n];
        if ((lead & row.lead_mask) == row.lead_value) {
            value &= row.value_mask;
            if (value < row.smallest || value > kUnicodeMax || is_surrogate(value)) {
                return -1;
            }
            *out = value;
            return static_cast<int>(n + 1);
        }
        if (len <= n + 1) {
            return -1;
        }
        const unsigned next = s[n + 1] ^ 0x80U;
        if ((next & 0xC0U) != 0) {
            return -1;
        }
        value = (value << 6) | next;
    }
    return -1;
}

// Appends `u` as UTF-8 if it fits in `room` bytes; returns the bytes written or -1.
int encode_one(std::uint32_t u, std::size_t room, std::string* out) {
    if (u > kUnicodeMax || is_surrogate(u)) {
        return -1;
    }
    const int need = u < 0x80 ? 1 : u < 0x800 ? 2 : u < 0x10000 ? 3 : 4;
    if (static_cast<std::size_t>(need) > room) {
        return -1;
    }
    if (need == 1) {
        out->push_back(static_cast<char>(u));
        return 1;
    }
    const std::array<unsigned, 5> lead{0, 0, 0xC0, 0xE0, 0xF0};
    int shift = 6 * (need - 1);
    out->push_back(static_cast<char>(lead[need] | (u >> shift)));
    while (shift > 0) {
        shift -= 6;
        out->push_back(static_cast<char>(0x80U | ((u >> shift) & 0x3FU)));
    }
    return need;
}

}  // namespace

std::string driver_utf16_to_utf8(const Utf16& in, std::size_t in_units, std::size_t max_bytes) {
    std::string out;
    std::size_t i = 0;
    std::size_t left = std::min(in_units, in.size());
    std::size_t room = max_bytes;
    while (left > 0 && room > 0) {
        std::uint32_t u = in[i];
        if (u == 0) {
            break;
        }
        ++i;
        --left;
        if (u <= 0x7F) {
            out.push_back(static_cast<char>(u));
            --room;
            continue;
        }
        if (is_surrogate(u)) {
            if ((u & kSurrogateLow) != 0) {
                continue;  // a low surrogate without its high one: dropped
            }
            if (left == 0) {
                break;
            }
            const std::uint32_t v = in[i];
            if (!is_surrogate(v) || (v & kSurrogateLow) == 0) {
                continue;  // a high surrogate without its low one: dropped
            }
            u = kPlaneSize + ((u & kSurrogateBits) << 10) + (v & kSurrogateBits);
            ++i;
            --left;
        }
        const int n = encode_one(u, room, &out);
        if (n > 0) {
            room -= static_cast<std::size_t>(n);
        }
    }
    return out;
}

std::optional<Utf16> driver_utf8_to_utf16(std::string_view in, std::size_t max_units) {
    Utf16 out;
    const auto* s = reinterpret_cast<const unsigned char*>(in.data());
    std::size_t len = in.size();
    std::size_t room = max_units;
    while (len > 0 && room > 0 && *s != 0) {
        if ((*s & 0x80U) == 0) {
            out.push_back(*s);
            ++s;
            --len;
            --room;
            continue;
        }
        std::uint32_t u = 0;
        const int n = decode_one(s, len, &u);
        if (n < 0) {
            return std::nullopt;
        }
        s += n;
        len -= static_cast<std::size_t>(n);
        if (u >= kPlaneSize) {
            if (room < 2) {
                break;
            }
            u -= kPlaneSize;
            out.push_back(
                static_cast<std::uint16_t>(kSurrogatePair | ((u >> 10) & kSurrogateBits)));
            out.push_back(
                static_cast<std::uint16_t>(kSurrogatePair | kSurrogateLow | (u & kSurrogateBits)));
            room -= 2;
        } else {
            out.push_back(static_cast<std::uint16_t>(u));
            --room;
        }
    }
    return out;
}

std::optional<Utf16> command_line_to_utf16(std::string_view arg, std::string* why) {
    Utf16 out;
    const auto* s = reinterpret_cast<const unsigned char*>(arg.data());
    std::size_t len = arg.size();
    std::size_t offset = 0;
    while (len > 0) {
        std::uint32_t u = *s;
        int n = 1;
        if ((*s & 0x80U) != 0) {
            // Surrogates are found first so that the message can name them.
            if (len >= 3 && s[0] == 0xED && (s[1] & 0xE0U) == 0xA0 && (s[2] & 0xC0U) == 0x80) {
                std::array<char, 64> text{};
                std::snprintf(text.data(), text.size(),
                              "an unpaired UTF-16 surrogate (U+%04X) at byte %zu",
                              0xD000U | ((s[1] & 0x3FU) << 6) | (s[2] & 0x3FU), offset);
                *why = text.data();
                return std::nullopt;
            }
            n = decode_one(s, len, &u);
            if (n < 0) {
                *why = "bytes that are not UTF-8 at byte " + std::to_string(offset);
                return std::nullopt;
            }
        }
        if (u >= kPlaneSize) {
            u -= kPlaneSize;
            out.push_back(
                static_cast<std::uint16_t>(kSurrogatePair | ((u >> 10) & kSurrogateBits)));
            out.push_back(
                static_cast<std::uint16_t>(kSurrogatePair | kSurrogateLow | (u & kSurrogateBits)));
        } else {
            out.push_back(static_cast<std::uint16_t>(u));
        }
        s += n;
        len -= static_cast<std::size_t>(n);
        offset += static_cast<std::size_t>(n);
    }
    return out;
}

std::string utf16_to_utf8(const Utf16& in) {
    return driver_utf16_to_utf8(in, in.size(), in.size() * 3 + 4);
}

}  // namespace hostsim
