// The small seams every part uses: kvp::Error, the log sink, UniqueFd.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "error.hpp"
#include "log.hpp"
#include "test_support.hpp"
#include "unique_fd.hpp"

namespace {

TEST(Error, CarriesTheErrnoAndTheMessage) {
    try {
        kvp::throw_error(ENAMETOOLONG, "key too long");
    } catch (const std::system_error& e) {  // catchable as std::system_error
        EXPECT_EQ(e.code().value(), ENAMETOOLONG);
        EXPECT_EQ(e.code().category(), std::generic_category());
        EXPECT_NE(std::string(e.what()).find("key too long"), std::string::npos);
    }
    EXPECT_EQ(kvp::Error(EFBIG, "x").errno_value(), EFBIG);
}

TEST(Error, ThrowErrnoUsesTheCurrentErrno) {
    ASSERT_LT(::open("/nonexistent/kvp-test", O_RDONLY), 0);
    try {
        kvp::throw_errno("open /nonexistent/kvp-test");
        ADD_FAILURE() << "throw_errno returned";
    } catch (const kvp::Error& e) {
        EXPECT_EQ(e.errno_value(), ENOENT);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/kvp-test"), std::string::npos);
    }
}

TEST(Log, LinesReachTheSinkWithTheirLevel) {
    kvptest::clear_captured_log();
    kvp::log(kvp::LogLevel::warning, "a warning line");
    EXPECT_EQ(kvp::log_error(-EIO, "an error line"), -EIO);
    const auto lines = kvptest::captured_log();
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0].level, kvp::LogLevel::warning);
    EXPECT_EQ(lines[0].text, "a warning line");
    EXPECT_EQ(lines[1].level, kvp::LogLevel::error);
    EXPECT_EQ(lines[1].text, "an error line");
}

TEST(Log, DebugLinesOnlyWhenEnabled) {
    const bool was = kvp::log_debug_enabled();
    kvptest::clear_captured_log();
    kvp::set_log_debug(false);
    EXPECT_FALSE(kvp::log_debug_enabled());
    kvp::log(kvp::LogLevel::debug, "hidden");
    EXPECT_TRUE(kvptest::captured_log().empty());
    kvp::set_log_debug(true);
    EXPECT_TRUE(kvp::log_debug_enabled());
    kvp::log(kvp::LogLevel::debug, "shown");
    ASSERT_EQ(kvptest::captured_log().size(), 1u);
    EXPECT_EQ(kvptest::captured_log()[0].text, "shown");
    kvp::set_log_debug(was);
}

bool fd_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

TEST(UniqueFd, ClosesExactlyOnce) {
    int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(raw, 0);
    {
        kvp::UniqueFd a(raw);
        EXPECT_TRUE(a);
        EXPECT_EQ(a.get(), raw);
        kvp::UniqueFd b(std::move(a));
        EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from state is specified
        EXPECT_EQ(b.get(), raw);
        EXPECT_TRUE(fd_open(raw));
    }
    EXPECT_FALSE(fd_open(raw));

    raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    kvp::UniqueFd c(raw);
    const int released = c.release();
    EXPECT_EQ(released, raw);
    EXPECT_FALSE(c);
    c.reset();
    EXPECT_TRUE(fd_open(raw)) << "release() hands the descriptor over";
    ::close(raw);

    const int r1 = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const int r2 = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    kvp::UniqueFd d(r1);
    kvp::UniqueFd e(r2);
    d = std::move(e);
    EXPECT_FALSE(fd_open(r1)) << "move-assignment closes the old descriptor";
    EXPECT_TRUE(fd_open(r2));
    EXPECT_EQ(d.get(), r2);
}

}  // namespace
