// The one validator of keys and values: format limits (511/2047 bytes, no NUL) and host
// limits (254/1022 UTF-16 units, valid UTF-8), saying which limit was crossed.

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>

#include "limits.hpp"
#include "test_support.hpp"

namespace {

using kvp::Limits;
using kvp::Violation;
using kvptest::repeat;

const std::string kE2 = "\xc3\xa9";          // é: 2 bytes, 1 UTF-16 unit
const std::string kE3 = "\xe2\x82\xac";      // €: 3 bytes, 1 unit
const std::string kE4 = "\xf0\x9f\x98\x80";  // 😀: 4 bytes, 2 units (a surrogate pair)

TEST(Limits, Constants) {
    EXPECT_EQ(kvp::kMaxKeyBytes, 511u);
    EXPECT_EQ(kvp::kMaxValueBytes, 2047u);
    EXPECT_EQ(kvp::kMaxHostKeyUtf16, 254u);
    EXPECT_EQ(kvp::kMaxHostValueUtf16, 1022u);
}

TEST(Limits, KeyFormatLimitIs511Bytes) {
    EXPECT_EQ(kvp::check_key(std::string(511, 'k'), Limits::pool), Violation::none);
    EXPECT_EQ(kvp::check_key(std::string(512, 'k'), Limits::pool), Violation::too_long_bytes);
    EXPECT_EQ(kvp::check_key(std::string(4000, 'k'), Limits::pool), Violation::too_long_bytes);
}

TEST(Limits, ValueFormatLimitIs2047Bytes) {
    EXPECT_EQ(kvp::check_value(std::string(2047, 'v'), Limits::pool), Violation::none);
    EXPECT_EQ(kvp::check_value(std::string(2048, 'v'), Limits::pool), Violation::too_long_bytes);
    EXPECT_EQ(kvp::check_value_length(std::string(2047, 'v'), Limits::pool), Violation::none);
    EXPECT_EQ(kvp::check_value_length(std::string(2048, 'v'), Limits::pool),
              Violation::too_long_bytes);
}

TEST(Limits, KeyHostLimitIs254Utf16Units) {
    EXPECT_EQ(kvp::check_key(std::string(254, 'k'), Limits::host), Violation::none);
    EXPECT_EQ(kvp::check_key(std::string(255, 'k'), Limits::host), Violation::too_long_utf16);
    // Two-byte characters are one unit each: 254 of them (508 bytes) fit, 255 do not.
    EXPECT_EQ(kvp::check_key(repeat(kE2, 254), Limits::host), Violation::none);
    EXPECT_EQ(kvp::check_key(repeat(kE2, 255), Limits::host), Violation::too_long_utf16);
    // Four-byte characters are two units: 127 fit (254 units), 127 + one ASCII do not.
    EXPECT_EQ(kvp::check_key(repeat(kE4, 127), Limits::host), Violation::none);
    EXPECT_EQ(kvp::check_key(repeat(kE4, 127) + "a", Limits::host), Violation::too_long_utf16);
    // The same keys are fine under the pool's limits.
    EXPECT_EQ(kvp::check_key(std::string(255, 'k'), Limits::pool), Violation::none);
    EXPECT_EQ(kvp::check_key(repeat(kE2, 255), Limits::pool), Violation::none);
}

TEST(Limits, HostLimitsStillHoldTheFormatsByteLimit) {
    // 170 three-byte characters: 510 bytes and 170 units, within both limits.
    EXPECT_EQ(kvp::check_key(repeat(kE3, 170), Limits::host), Violation::none);
    // 200 three-byte characters: only 200 units but 600 bytes, which the record cannot hold.
    EXPECT_EQ(kvp::check_key(repeat(kE3, 200), Limits::host), Violation::too_long_bytes);
    // Values: 682 € are 2046 bytes (fine), 700 are 2100 bytes and only 700 units.
    EXPECT_EQ(kvp::check_value(repeat(kE3, 682), Limits::host), Violation::none);
    EXPECT_EQ(kvp::check_value(repeat(kE3, 700), Limits::host), Violation::too_long_bytes);
    EXPECT_EQ(kvp::check_value_length(repeat(kE3, 700), Limits::host), Violation::too_long_bytes);
}

TEST(Limits, ValueHostLimitIs1022Utf16Units) {
    EXPECT_EQ(kvp::check_value(std::string(1022, 'v'), Limits::host), Violation::none);
    EXPECT_EQ(kvp::check_value(std::string(1023, 'v'), Limits::host), Violation::too_long_utf16);
    EXPECT_EQ(kvp::check_value(repeat(kE4, 511), Limits::host), Violation::none);
    EXPECT_EQ(kvp::check_value(repeat(kE4, 511) + "x", Limits::host), Violation::too_long_utf16);
    EXPECT_EQ(kvp::check_value_length(std::string(1022, 'v'), Limits::host), Violation::none);
    EXPECT_EQ(kvp::check_value_length(std::string(1023, 'v'), Limits::host),
              Violation::too_long_utf16);
    EXPECT_EQ(kvp::check_value(std::string(1023, 'v'), Limits::pool), Violation::none);
}

TEST(Limits, EmptyKeyIsNotAKeyButEmptyValueIsFine) {
    EXPECT_EQ(kvp::check_key("", Limits::pool), Violation::empty_key);
    EXPECT_EQ(kvp::check_key("", Limits::host), Violation::empty_key);
    EXPECT_EQ(kvp::check_value("", Limits::pool), Violation::none);
    EXPECT_EQ(kvp::check_value("", Limits::host), Violation::none);
}

TEST(Limits, NulCannotBeStoredUnderEitherLimits) {
    const std::string with_nul("a\0b", 3);
    for (const auto limits : {Limits::pool, Limits::host}) {
        EXPECT_EQ(kvp::check_key(with_nul, limits), Violation::contains_nul);
        EXPECT_EQ(kvp::check_value(with_nul, limits), Violation::contains_nul);
        EXPECT_EQ(kvp::check_key(std::string(1, '\0'), limits), Violation::contains_nul);
    }
}

const std::vector<std::string>& invalid_utf8_samples() {
    static const std::vector<std::string> samples = {
        "\x80",                  // lone continuation byte
        "abc\xff",               // never valid
        "\xc3",                  // truncated two-byte sequence
        "\xe2\x82",              // truncated three-byte sequence
        "\xc0\x80",              // overlong NUL
        "\xc1\xbf",              // overlong
        "\xe0\x80\xaf",          // overlong '/'
        "\xed\xa0\x80",          // UTF-16 surrogate half
        "\xf4\x90\x80\x80",      // beyond U+10FFFF
        "\xf8\x88\x80\x80\x80",  // five-byte form
        "ok\xc3(",               // bad continuation
    };
    return samples;
}

TEST(Limits, InvalidUtf8IsRefusedOnlyUnderHostLimits) {
    for (const auto& s : invalid_utf8_samples()) {
        SCOPED_TRACE(testing::PrintToString(s));
        EXPECT_FALSE(kvp::valid_utf8(s));
        EXPECT_EQ(kvp::check_key(s, Limits::host), Violation::invalid_utf8);
        EXPECT_EQ(kvp::check_value(s, Limits::host), Violation::invalid_utf8);
        EXPECT_EQ(kvp::check_key(s, Limits::pool), Violation::none);
        EXPECT_EQ(kvp::check_value(s, Limits::pool), Violation::none);
        // A write() is judged on length only; UTF-8 waits for the commit.
        EXPECT_EQ(kvp::check_value_length(s, Limits::host), Violation::none);
    }
}

TEST(Limits, ValidUtf8AndUtf16Units) {
    EXPECT_TRUE(kvp::valid_utf8(""));
    EXPECT_TRUE(kvp::valid_utf8("plain ascii"));
    EXPECT_TRUE(kvp::valid_utf8(kE2 + kE3 + kE4));
    EXPECT_TRUE(kvp::valid_utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
    EXPECT_TRUE(kvp::valid_utf8("\xef\xbf\xbf"));      // U+FFFF
    EXPECT_EQ(kvp::utf16_units(""), 0u);
    EXPECT_EQ(kvp::utf16_units("abc"), 3u);
    EXPECT_EQ(kvp::utf16_units(kE2), 1u);
    EXPECT_EQ(kvp::utf16_units(kE3), 1u);
    EXPECT_EQ(kvp::utf16_units(kE4), 2u);
    EXPECT_EQ(kvp::utf16_units("a" + kE2 + kE3 + kE4), 5u);
}

TEST(Limits, ErrnoMapping) {
    EXPECT_EQ(kvp::key_errno(Violation::too_long_bytes), ENAMETOOLONG);
    EXPECT_EQ(kvp::key_errno(Violation::too_long_utf16), ENAMETOOLONG);
    EXPECT_EQ(kvp::key_errno(Violation::invalid_utf8), EINVAL);
    EXPECT_EQ(kvp::key_errno(Violation::contains_nul), EINVAL);
    EXPECT_EQ(kvp::value_errno(Violation::too_long_bytes), EFBIG);
    EXPECT_EQ(kvp::value_errno(Violation::too_long_utf16), EFBIG);
    EXPECT_EQ(kvp::value_errno(Violation::invalid_utf8), EINVAL);
    EXPECT_EQ(kvp::value_errno(Violation::contains_nul), EINVAL);
}

TEST(Limits, EveryViolationIsDescribedDistinctly) {
    std::set<std::string> texts;
    for (const auto v :
         {Violation::none, Violation::empty_key, Violation::contains_nul, Violation::too_long_bytes,
          Violation::too_long_utf16, Violation::invalid_utf8}) {
        const char* d = kvp::describe(v);
        ASSERT_NE(d, nullptr);
        EXPECT_GT(std::strlen(d), 0u);
        texts.insert(d);
    }
    EXPECT_EQ(texts.size(), 6u);
}

}  // namespace
