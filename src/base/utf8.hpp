#pragma once
// The one UTF-8 decoder of kvpfs, kvpctl and kvp-host. Well-formed means what the kernel's
// utf8s_to_utf16s and Unicode's table of well-formed sequences accept: no overlong forms, no
// UTF-16 surrogates (U+D800..U+DFFF), nothing past U+10FFFF.

#include <cstddef>
#include <string_view>

namespace kvp {

// One character of UTF-8 text: its bytes and its code point. `length` 0: the bytes at that
// place are not a well-formed sequence (code_point is then meaningless).
struct Utf8Char {
    std::size_t length = 0;
    char32_t code_point = 0;
};

// The well-formed sequence starting at text[at] (ASCII is one byte long), or length 0.
// `at` must be inside `text`.
[[nodiscard]] Utf8Char decode_utf8(std::string_view text, std::size_t at);

[[nodiscard]] bool valid_utf8(std::string_view text);

// UTF-16 code units the text becomes (4-byte sequences count 2). Meant for valid UTF-8;
// a byte that starts no well-formed sequence counts 1.
[[nodiscard]] std::size_t utf16_units(std::string_view text);

// Length of the unfinished UTF-8 sequence `text` ends in (1-3 bytes that later bytes may
// finish into a well-formed one), 0 when it ends complete or in bytes nothing could make valid.
[[nodiscard]] std::size_t unfinished_utf8_tail(std::string_view text);

}  // namespace kvp
