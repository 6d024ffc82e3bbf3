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
