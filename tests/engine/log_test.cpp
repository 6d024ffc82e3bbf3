// The log seam: every line on one line whatever names it carries, and floods of error lines
// cut down to a bounded number plus a summary of what was left out.
#include <gtest/gtest.h>

#include <string>

#include "log.hpp"
#include "test_support.hpp"

namespace {

TEST(LogTest, PrintableEscapesEveryControlByte) {
    EXPECT_EQ(kvp::printable("plain ünïcode %2F"), "plain ünïcode %2F");
    EXPECT_EQ(kvp::printable("a\nb\rc\td"), "a\\nb\\rc\\td");
    EXPECT_EQ(kvp::printable(std::string("\x1b[2K\x7f\x01", 6) + std::string(1, '\0')),
              "\\x1b[2K\\x7f\\x01\\x00");
    EXPECT_EQ(kvp::printable("back\\slash"), "back\\\\slash");
}

// C1 controls (U+0080..U+009F: NEL ends a line for some readers, CSI starts a terminal escape
// sequence), the Unicode line and paragraph separators, and bytes that are not UTF-8 (a lone
// 0x9b is CSI to an 8-bit terminal) are escaped byte by byte, like the C0 controls.
TEST(LogTest, C1ControlsSeparatorsAndInvalidUtf8AreEscaped) {
    EXPECT_EQ(kvp::printable("a\xc2\x85"
                             "b"),
              "a\\xc2\\x85b");  // NEL
    EXPECT_EQ(kvp::printable("\xc2\x9b"
                             "31m"),
              "\\xc2\\x9b31m");  // CSI as UTF-8
    EXPECT_EQ(kvp::printable("x\x9b"
                             "31m"),
              "x\\x9b31m");  // lone CSI byte
    EXPECT_EQ(kvp::printable("\xff\xfe ok"), "\\xff\\xfe ok");
    EXPECT_EQ(kvp::printable("l\xe2\x80\xa8"
                             "s"),
              "l\\xe2\\x80\\xa8s");                                // U+2028
    EXPECT_EQ(kvp::printable("cut \xc3"), "cut \\xc3");            // truncated sequence
    EXPECT_EQ(kvp::printable("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
    EXPECT_EQ(kvp::printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
    EXPECT_EQ(kvp::printable("\xc2\xa0\xe2\x82\xac\xf0\x9f\x98\x80"),
              "\xc2\xa0\xe2\x82\xac\xf0\x9f\x98\x80");  // NBSP, euro, emoji stay
}

TEST(LogTest, ANameCannotStartALineOfItsOwn) {
    kvptest::clear_captured_log();
    kvp::log(kvp::LogLevel::error, "lookup: guest/%zz\nkvpfs: error: forged: Invalid argument");
    const auto lines = kvptest::captured_log();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_EQ(lines[0].text, "lookup: guest/%zz\\nkvpfs: error: forged: Invalid argument");
}

TEST(LogTest, RepeatedErrorsAreCutToABurstAndSummarised) {
    kvp::set_log_debug(false);  // -d turns the limit off; the test program runs with it on
    kvptest::clear_captured_log();
    for (int i = 0; i < 5000; ++i) {
        kvp::log(kvp::LogLevel::error, "lookup: guest/%zz" + std::to_string(i) + ": refused");
    }
    kvp::log(kvp::LogLevel::info, "an info line is never left out");
    kvp::log_flush();
    kvp::set_log_debug(true);
    int errors = 0;
    int infos = 0;
    std::string summary;
    for (const auto& line : kvptest::captured_log()) {
        errors += line.level == kvp::LogLevel::error ? 1 : 0;
        infos += line.level == kvp::LogLevel::info ? 1 : 0;
        if (line.level == kvp::LogLevel::warning) {
            summary = line.text;
        }
    }
    EXPECT_EQ(errors, 20);
    EXPECT_EQ(infos, 1);
    EXPECT_EQ(summary, "4980 more error lines left out (at most 20 every 5 s)");
}

}  // namespace
