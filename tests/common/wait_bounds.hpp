#pragma once
// Bounds on the tests' waits. A test waits for a condition by polling it and gives up only
// after a bound far beyond what the condition needs on an idle machine. Every such bound is
// multiplied by KVPFS_TEST_SLACK (a factor >= 1, default 1), so a slow or loaded machine
// stretches them all with one setting. An upper bound on how long something *took* is kept
// only where the bound is the feature (a lock wait ends at lock_timeout; waits do not add
// up), and is then derived from that feature, never from how fast this machine is.

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <thread>

namespace kvptest {

// KVPFS_TEST_SLACK, read once; anything unparsable or below 1 counts as 1.
inline double slack_factor() {
    static const double factor = [] {
        const char* text = std::getenv("KVPFS_TEST_SLACK");
        const double f = text != nullptr ? std::strtod(text, nullptr) : 1.0;
        return f >= 1.0 ? f : 1.0;
    }();
    return factor;
}

// `bound` stretched by the slack factor, in its own unit.
template <class Rep, class Period>
[[nodiscard]] std::chrono::duration<Rep, Period> scaled(std::chrono::duration<Rep, Period> bound) {
    return std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(
        std::chrono::duration<double, Period>(bound) * slack_factor());
}

// The default bound for "this will happen": far beyond any idle-machine time.
inline constexpr std::chrono::seconds kEventually{30};

// How long another process's change may take to show through a cached mount in the tests.
// The window itself is measured by the bench (docs/performance.md), not asserted here: these
// tests catch a change that never shows, and must not fail because a loaded machine is slow.
inline constexpr std::chrono::seconds kStalenessBound{10};

// Polls `holds` (every 100 us at first, backing off to 10 ms) until it is true or the scaled
// `bound` has passed; one last look after the bound, so a condition that became true at the
// very end still counts. Returns whether it held.
inline bool eventually(const std::function<bool()>& holds,
                       std::chrono::steady_clock::duration bound = kEventually) {
    const auto end = std::chrono::steady_clock::now() + scaled(bound);
    auto pause = std::chrono::microseconds(100);
    while (std::chrono::steady_clock::now() < end) {
        if (holds()) {
            return true;
        }
        std::this_thread::sleep_for(pause);
        pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10));
    }
    return holds();
}

}  // namespace kvptest
