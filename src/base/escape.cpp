#include "escape.hpp"

#include <algorithm>

#include "utf8.hpp"

namespace kvp {
namespace {

void escape_byte(std::string& out, unsigned char c) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\x";
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
}

void escape_ascii(std::string& out, unsigned char c, bool quoted) {
    switch (c) {
        case '\n':
            out += "\\n";
            return;
        case '\r':
            out += "\\r";
            return;
        case '\t':
            out += "\\t";
            return;
        case '\\':
            out += "\\\\";
            return;
        case '"':
            out += quoted ? "\\\"" : "\"";
            return;
        default:
            if (c < 0x20 || c == 0x7f) {
                escape_byte(out, c);
            } else {
                out.push_back(static_cast<char>(c));
            }
    }
}

bool unicode_control(char32_t code) {
    return (code >= 0x80 && code < 0xa0) || code == 0x2028 || code == 0x2029;
}

}  // namespace

std::string escape(std::string_view text, EscapeStyle style) {
    std::string out;
    out.reserve(text.size() + (style.quoted ? 2 : 0));
    if (style.quoted) {
        out.push_back('"');
    }
    for (std::size_t i = 0; i < text.size();) {
        const Utf8Char c = decode_utf8(text, i);
        if (c.length == 1) {
            escape_ascii(out, static_cast<unsigned char>(text[i]), style.quoted);
        } else if (c.length == 0 || (style.unicode_controls && unicode_control(c.code_point))) {
            // Not UTF-8 (a lone 0x9b is CSI to an 8-bit terminal), or a control past ASCII
            // (U+0085 NEL ends a line for some readers): byte by byte.
            for (std::size_t k = 0; k < std::max<std::size_t>(c.length, 1); ++k) {
                escape_byte(out, static_cast<unsigned char>(text[i + k]));
            }
        } else {
            out.append(text.substr(i, c.length));
        }
        i += c.length == 0 ? 1 : c.length;
    }
    if (style.quoted) {
        out.push_back('"');
    }
    return out;
}

}  // namespace kvp
