// The one UTF-8 decoder and the one escaper of src/base: what the host limits, the write
// path's held-back tail, the log and kvpctl's output all stand on.

#include <gtest/gtest.h>

#include <string>

#include "escape.hpp"
#include "utf8.hpp"

namespace {

TEST(Utf8, DecodesEachSequenceLengthWithItsCodePoint) {
    const std::string text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    EXPECT_EQ(kvp::decode_utf8(text, 0).length, 1u);
    EXPECT_EQ(kvp::decode_utf8(text, 0).code_point, U'a');
    EXPECT_EQ(kvp::decode_utf8(text, 1).length, 2u);
    EXPECT_EQ(kvp::decode_utf8(text, 1).code_point, U'\u00e9');
    EXPECT_EQ(kvp::decode_utf8(text, 3).length, 3u);
    EXPECT_EQ(kvp::decode_utf8(text, 3).code_point, U'\u20ac');
    EXPECT_EQ(kvp::decode_utf8(text, 6).length, 4u);
    EXPECT_EQ(kvp::decode_utf8(text, 6).code_point, U'\U0001f600');
}

TEST(Utf8, BoundariesOfWellFormedSequences) {
    // The first and last code point of each length, and the edges around surrogates.
    for (const std::string ok :
         {"\x7f", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xee\x80\x80",
          "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf"}) {
        SCOPED_TRACE(testing::PrintToString(ok));
        EXPECT_EQ(kvp::decode_utf8(ok, 0).length, ok.size());
        EXPECT_TRUE(kvp::valid_utf8(ok));
    }
    for (const std::string bad : {"\x80", "\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf", "\xed\xa0\x80",
                                  "\xed\xbf\xbf", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80",
                                  "\xf5\x80\x80\x80", "\xff", "\xe2\x82", "\xe2(\xac"}) {
        SCOPED_TRACE(testing::PrintToString(bad));
        EXPECT_EQ(kvp::decode_utf8(bad, 0).length, 0u);
        EXPECT_FALSE(kvp::valid_utf8(bad));
    }
}

TEST(Utf8, Utf16UnitsCountInvalidBytesOneEach) {
    EXPECT_EQ(kvp::utf16_units("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), 5u);
    EXPECT_EQ(kvp::utf16_units("\xff\xfe"), 2u);
}

TEST(Utf8, UnfinishedTailIsAPrefixOfAWellFormedSequence) {
    EXPECT_EQ(kvp::unfinished_utf8_tail(""), 0u);
    EXPECT_EQ(kvp::unfinished_utf8_tail("abc"), 0u);
    EXPECT_EQ(kvp::unfinished_utf8_tail("a\xc3"), 1u);
    EXPECT_EQ(kvp::unfinished_utf8_tail("a\xc3\xa9"), 0u);  // complete
    EXPECT_EQ(kvp::unfinished_utf8_tail("\xe2\x82"), 2u);
    EXPECT_EQ(kvp::unfinished_utf8_tail("\xf0\x9f\x98"), 3u);
    EXPECT_EQ(kvp::unfinished_utf8_tail("\xe0\x80"), 0u);  // can only become overlong
    EXPECT_EQ(kvp::unfinished_utf8_tail("\xed\xa0"), 0u);  // can only become a surrogate
    EXPECT_EQ(kvp::unfinished_utf8_tail("\xf4\x90"), 0u);  // past U+10FFFF
    EXPECT_EQ(kvp::unfinished_utf8_tail("\xc0"), 0u);      // never a lead
    EXPECT_EQ(kvp::unfinished_utf8_tail("\x80\x80\x80"), 0u);
}

TEST(Escape, StylesDifferOnlyInQuotesAndUnicodeControls) {
    const std::string text = "k\"\xc2\x85\xe2\x80\xa8\xc3\xa9\n\x01\xff";
    EXPECT_EQ(kvp::escape(text, {}), "k\"\xc2\x85\xe2\x80\xa8\xc3\xa9\\n\\x01\\xff");
    EXPECT_EQ(kvp::escape(text, {.quoted = true, .unicode_controls = false}),
              "\"k\\\"\xc2\x85\xe2\x80\xa8\xc3\xa9\\n\\x01\\xff\"");
    EXPECT_EQ(kvp::escape(text, {.quoted = false, .unicode_controls = true}),
              "k\"\\xc2\\x85\\xe2\\x80\\xa8\xc3\xa9\\n\\x01\\xff");
    EXPECT_EQ(kvp::printable(text), kvp::escape(text, {.quoted = false, .unicode_controls = true}));
}

}  // namespace
