#include "utf8.hpp"

#include <algorithm>

namespace kvp {
namespace {

// What a lead byte allows: the sequence's length (0: no sequence starts with it; 1: ASCII)
// and the range of its second byte, which alone excludes overlong forms, surrogates and code
// points past U+10FFFF (Unicode's table of well-formed byte sequences). Bytes after the
// second are any continuation byte.
struct Lead {
    std::size_t length = 0;
    unsigned char second_low = 0x80;
    unsigned char second_high = 0xBF;
};

Lead lead_of(unsigned char lead) {
    if (lead < 0x80) {
        return {1};
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        return {2};
    }
    if (lead >= 0xE0 && lead <= 0xEF) {
        return {3, static_cast<unsigned char>(lead == 0xE0 ? 0xA0 : 0x80),
                static_cast<unsigned char>(lead == 0xED ? 0x9F : 0xBF)};
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        return {4, static_cast<unsigned char>(lead == 0xF0 ? 0x90 : 0x80),
                static_cast<unsigned char>(lead == 0xF4 ? 0x8F : 0xBF)};
    }
    return {};
}

bool continuation(unsigned char byte) {
    return (byte & 0xC0) == 0x80;
}

unsigned char byte_at(std::string_view text, std::size_t at) {
    return static_cast<unsigned char>(text[at]);
}

}  // namespace

Utf8Char decode_utf8(std::string_view text, std::size_t at) {
    const unsigned char first = byte_at(text, at);
    const Lead lead = lead_of(first);
    if (lead.length == 0 || lead.length > text.size() - at) {
        return {};
    }
    if (lead.length == 1) {
        return {1, first};
    }
    const unsigned char second = byte_at(text, at + 1);
    if (second < lead.second_low || second > lead.second_high) {
        return {};
    }
    static constexpr unsigned char kLeadBits[] = {0, 0, 0x1F, 0x0F, 0x07};
    char32_t code = first & kLeadBits[lead.length];
    for (std::size_t k = 1; k < lead.length; ++k) {
        const unsigned char next = byte_at(text, at + k);
        if (!continuation(next)) {
            return {};
        }
        code = (code << 6) | (next & 0x3FU);
    }
    return {lead.length, code};
}

bool valid_utf8(std::string_view text) {
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t length = decode_utf8(text, i).length;
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
        const std::size_t length = decode_utf8(text, i).length;
        units += length == 4 ? 2 : 1;
        i += length == 0 ? 1 : length;
    }
    return units;
}

std::size_t unfinished_utf8_tail(std::string_view text) {
    const std::size_t n = text.size();
    for (std::size_t back = 1; back <= std::min<std::size_t>(3, n); ++back) {
        const unsigned char c = byte_at(text, n - back);
        if (continuation(c)) {
            continue;  // the lead is further back
        }
        const Lead lead = lead_of(c);
        if (lead.length <= back) {
            return 0;  // ASCII, an invalid lead, or a sequence that is already complete
        }
        if (back >= 2) {
            const unsigned char second = byte_at(text, n - back + 1);
            if (second < lead.second_low || second > lead.second_high) {
                return 0;
            }
        }
        return back;
    }
    return 0;
}

}  // namespace kvp
