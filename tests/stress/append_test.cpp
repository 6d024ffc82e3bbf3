// Concurrent `>>` through the mount (docs/behaviour.md §5: O_APPEND writes append to the
// current value, so appends from many processes lose no line). 8 bash processes each append
// 200 lines with the builtin echo, spread over 4 shared keys, while kvpctl rewrites other
// keys of the same pool file. Afterwards every line is present exactly once in its key and
// the pool holds one record per key.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "stress_support.hpp"

namespace kvpstress {
namespace {

constexpr int kAppenders = 8;
constexpr int kLinesEach = 200;
constexpr int kKeys = 4;

std::string kvpctl_binary() {
    const char* env = std::getenv("KVPCTL_BIN");
    return env != nullptr ? env : KVPCTL_BIN;
}

pid_t spawn_exec(const std::vector<std::string>& argv) {
    return spawn([argv] {
        std::vector<char*> args;
        for (const std::string& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        return 127;
    });
}

TEST(Stress, ConcurrentShellAppendsLoseNoLine) {
    Sandbox sb;
    write_file(sb.pool(1), "");
    // 400 lines of 4 bytes per key: 1600 bytes, within the format's limit (not the host's).
    sb.start({"-o", "limits=pool"});
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<pid_t> appenders;
    for (int p = 0; p < kAppenders; ++p) {
        // Line "<p><i in 2 hex digits>", to key app<i mod 4>.
        const std::string script = "for ((i = 0; i < " + std::to_string(kLinesEach) +
                                   "; i++)); do printf -v line '%d%02x' " + std::to_string(p) +
                                   " $i; echo $line >> \"$1/guest/app$((i % " +
                                   std::to_string(kKeys) + "))\" || exit 1; done";
        appenders.push_back(spawn_exec({"bash", "-c", script, "bash", sb.mnt()}));
    }
    // kvpctl rewrites other keys of the same pool until the appenders are done (each of the
    // three at least once: with -o cache the appenders may be done before kvpctl got going).
    const std::string rewriter_script =
        "i=0; while [ ! -e \"$2/done\" ] || [ $i -lt 3 ]; do \"$1\" --pool-dir \"$3\" set guest "
        "other$((i % 3)) "
        "v$i || exit 1; i=$((i + 1)); done; echo $i > \"$2/rewrites\"";
    const pid_t rewriter = spawn_exec(
        {"bash", "-c", rewriter_script, "bash", kvpctl_binary(), sb.base(), sb.pool_dir()});
    for (pid_t pid : appenders) {
        EXPECT_EQ(wait_for(pid, std::chrono::seconds(60)), 0) << "an appender failed";
    }
    write_file(sb.base() + "/done", "");
    EXPECT_EQ(wait_for(rewriter, std::chrono::seconds(30)), 0) << "kvpctl set failed";
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    const std::vector<Rec> recs = decode_records(read_file(sb.pool(1)));
    std::map<std::string, int> records_of;
    std::map<std::string, std::string> value_of;
    for (const Rec& r : recs) {
        ++records_of[r.key];
        value_of.emplace(r.key, r.value);
    }
    for (const auto& [key, n] : records_of) {
        EXPECT_EQ(n, 1) << "duplicate records of " << printable(key);
    }
    std::map<std::string, int> seen;
    for (int k = 0; k < kKeys; ++k) {
        const std::string key = "app" + std::to_string(k);
        ASSERT_EQ(value_of.count(key), 1u) << key << " missing";
        std::istringstream in(value_of[key]);
        int lines = 0;
        for (std::string line; std::getline(in, line); ++lines) {
            ++seen[key + ":" + line];
        }
        EXPECT_EQ(lines, kAppenders * kLinesEach / kKeys) << key;
    }
    int missing = 0;
    for (int p = 0; p < kAppenders; ++p) {
        for (int i = 0; i < kLinesEach; ++i) {
            char line[8];
            std::snprintf(line, sizeof line, "%d%02x", p, i);
            const std::string id = "app" + std::to_string(i % kKeys) + ":" + line;
            const int n = seen.count(id) != 0 ? seen[id] : 0;
            if (n != 1) {
                ++missing;
                ADD_FAILURE() << id << " present " << n << " times";
            }
            seen.erase(id);
        }
    }
    EXPECT_TRUE(seen.empty()) << seen.size() << " lines nobody wrote, e.g. " << seen.begin()->first;
    EXPECT_EQ(missing, 0);
    for (int k = 0; k < 3; ++k) {
        EXPECT_EQ(value_of.count("other" + std::to_string(k)), 1u);
    }
    std::printf("  %d appends in %.1f s, kvpctl rewrites: %s", kAppenders * kLinesEach, seconds,
                read_file(sb.base() + "/rewrites").c_str());
}

}  // namespace
}  // namespace kvpstress
