// Every other writer is seen (docs/behaviour.md §3), as an adversary tries it, many times over:
// a writer without a lock rewriting another key in place while the mount writes; a writer
// holding the locks storing through a shared mapping (no inotify event); a whole-pool rewrite
// without a lock (cloud-init at boot) racing writes through the mount. Each test runs
// KVPFS_COHERENCE_TRIALS trials (default 40 in the suite; 1,000 for a stress run) and prints
// what it saw.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "stress_support.hpp"

namespace {

using namespace kvpstress;
using Clock = std::chrono::steady_clock;

long trials() {
    return env_long("KVPFS_COHERENCE_TRIALS", 40);
}

std::string numbered(const char* prefix, long i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%06ld", prefix, i);
    return buf;
}

// The value of `key` in the pool file's first record of it, or "<absent>".
std::string pool_value(const std::string& pool, const std::string& key) {
    for (const Rec& r : decode_records(read_file(pool))) {
        if (r.key == key) {
            return r.value;
        }
    }
    return "<absent>";
}

// What the mount shows of guest/`key`, without the newline a read adds.
std::string shown(const Sandbox& sb, const std::string& key) {
    ReadResult r = read_value(sb.mnt("guest/" + key));
    if (r.err != 0) {
        return "<" + errno_name(r.err) + ">";
    }
    if (!r.data.empty() && r.data.back() == '\n') {
        r.data.pop_back();
    }
    return r.data;
}

// A writer without a lock rewrites W in place (same size) once, at a random moment around a
// write through the mount to U. Once both are done, the mount must show the new W, and the
// next change through the mount must not put the older W back.
TEST(CoherenceStress, UnlockedInPlaceRewritesDuringMountWritesAreSeen) {
    Sandbox sb;
    write_file(sb.pool_dir() + "/.kvp_pool_1",
               encode_records({{"U", "u"}, {"W", numbered("w-", 0)}, {"Z", "z"}}));
    for (int n : {0, 2, 3, 4}) {
        write_file(sb.pool(n), "");
    }
    sb.start();
    const long n = trials();
    long unseen = 0;
    long lost = 0;
    long rewrites = 0;
    std::mt19937 rng(static_cast<unsigned>(env_long("KVPFS_STRESS_SEED", 1)));
    for (long t = 1; t <= n; ++t) {
        // One rewrite at a random moment around the mount's write (which takes some 50-200 us),
        // from another process: the kernel tells writers apart by process.
        const std::string last = numbered("w-", t);
        const auto delay = std::chrono::microseconds(rng() % 300);
        const pid_t writer = spawn([&] {
            std::this_thread::sleep_for(delay);
            const int fd = ::open(sb.pool(1).c_str(), O_WRONLY | O_CLOEXEC);
            return ::pwrite(fd, last.data(), last.size(), kRecord + kKeyField) ==
                           static_cast<ssize_t>(last.size())
                       ? 0
                       : 1;
        });
        const Io io = write_value(sb.mnt("guest/U"), numbered("u-", t));
        ASSERT_EQ(wait_for(writer, std::chrono::seconds(30)), 0);
        ++rewrites;
        ASSERT_EQ(io.err, 0) << io.step;
        // Every operation that starts after the writer finished shows its last value.
        const bool seen = shown_after_outside_change([&] { return shown(sb, "W") == last; });
        if (!seen) {
            ++unseen;
            ADD_FAILURE() << "trial " << t << ": W shows " << shown(sb, "W") << ", not " << last;
        }
        ASSERT_EQ(write_value(sb.mnt("guest/U"), numbered("v-", t)).err, 0);
        if (pool_value(sb.pool(1), "W") != last) {
            ++lost;
            ADD_FAILURE() << "trial " << t << ": the next change put W "
                          << pool_value(sb.pool(1), "W") << " back over " << last;
        }
    }
    std::printf("  %ld trials, %ld unlocked rewrites: %ld unseen, %ld lost\n", n, rewrites, unseen,
                lost);
    EXPECT_EQ(sb.stop(), 0) << sb.log();
}

// A writer holding both locks stores through a shared mapping: no inotify event; its first
// store to a clean page moves mtime and ctime. Shown at the next operation (cached modes:
// within the look interval).
TEST(CoherenceStress, LockedStoresThroughASharedMappingAreSeen) {
    Sandbox sb;
    write_file(sb.pool_dir() + "/.kvp_pool_1",
               encode_records({{"A", "a"}, {"K", numbered("k-", 0)}}));
    for (int n : {0, 2, 3, 4}) {
        write_file(sb.pool(n), "");
    }
    sb.start();
    ASSERT_EQ(shown(sb, "K"), numbered("k-", 0));
    const long n = trials();
    long unseen = 0;
    double worst_ms = 0;
    for (long t = 1; t <= n; ++t) {
        const std::string v = numbered("k-", t);
        {
            const int fd = ::open(sb.pool(1).c_str(), O_RDWR | O_CLOEXEC);
            ASSERT_GE(fd, 0);
            struct flock fl {};
            fl.l_type = F_WRLCK;
            fl.l_whence = SEEK_SET;
            ASSERT_EQ(::flock(fd, LOCK_EX), 0);
            ASSERT_EQ(::fcntl(fd, F_SETLKW, &fl), 0);
            void* map = ::mmap(nullptr, 2 * kRecord, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            ASSERT_NE(map, MAP_FAILED);
            std::memcpy(static_cast<char*>(map) + kRecord + kKeyField, v.data(), v.size());
            ::munmap(map, 2 * kRecord);
            fl.l_type = F_UNLCK;
            ::fcntl(fd, F_SETLK, &fl);
            ::flock(fd, LOCK_UN);
            ::close(fd);
        }
        const auto start = Clock::now();
        if (!shown_after_outside_change([&] { return shown(sb, "K") == v; })) {
            ++unseen;
            ADD_FAILURE() << "trial " << t << ": K shows " << shown(sb, "K") << ", not " << v;
        }
        worst_ms = std::max(
            worst_ms, std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
    std::printf("  %ld trials: %ld unseen; slowest shown after %.1f ms\n", n, unseen, worst_ms);
    EXPECT_EQ(sb.stop(), 0) << sb.log();
}

// cloud-init at boot: truncate the pool and write every record again, without a lock, racing a
// write through the mount to another key. Whatever the overlap: the mount's write is stored
// whole or fails; the rewriter's records, all written before the mount's next change starts,
// are never lost by it; the mount's newest value of U is what U reads once the rewriter keeps
// it. What the rewriter writes while the mount's change runs may be overwritten by that change
// (a writer without a lock can always overlap kvpfs): those trials are counted, not failed.
TEST(CoherenceStress, WholePoolRewritesWithoutALockNeverMakeThingsWorse) {
    Sandbox sb;
    std::vector<Rec> theirs;
    for (int i = 0; i < 30; ++i) {
        theirs.push_back({numbered("cloud-", i), numbered("v-", i)});
    }
    write_file(sb.pool_dir() + "/.kvp_pool_1", encode_records(theirs));
    for (int n : {0, 2, 3, 4}) {
        write_file(sb.pool(n), "");
    }
    sb.start();
    const long n = trials();
    long failed = 0;
    long lost = 0;
    long overlapped = 0;
    long hidden = 0;
    std::mt19937 rng(static_cast<unsigned>(env_long("KVPFS_STRESS_SEED", 1)));
    for (long t = 1; t <= n; ++t) {
        // The rewriter's records this trial: its own keys with new values.
        std::vector<Rec> recs = theirs;
        for (Rec& r : recs) {
            r.value = numbered("v-", t);
        }
        const std::string bytes = encode_records(recs);
        const auto delay = std::chrono::microseconds(rng() % 400);
        Clock::time_point rewritten;
        std::thread rewriter([&] {
            std::this_thread::sleep_for(delay);
            const int fd = ::open(sb.pool(1).c_str(), O_WRONLY | O_CLOEXEC);
            (void)!::ftruncate(fd, 0);
            for (std::size_t off = 0; off < bytes.size(); off += 4 * kRecord) {
                (void)!::pwrite(fd, bytes.data() + off, std::min(4 * kRecord, bytes.size() - off),
                                static_cast<off_t>(off));
            }
            ::close(fd);
            rewritten = Clock::now();
        });
        const std::string mine = numbered("u-", t);
        const auto write_started = Clock::now();
        const Io io = write_value(sb.mnt("guest/U"), mine + "\n");
        rewriter.join();
        // Only a rewrite that was complete before the mount's change started is protected
        // whole; records written while the change ran may be overwritten by it (counted).
        const bool before_change = rewritten < write_started;
        if (io.err != 0) {
            ++failed;  // reported: allowed (EIO; ENOENT when the rewrite removed U meanwhile)
            EXPECT_TRUE(io.err == EIO || io.err == ENOENT) << io.step << ": " << errno_name(io.err);
        }
        // A change through the mount after the rewrite finished: it must keep every one of the
        // rewriter's records (all written before it started), and U must read its own value.
        const std::string after = numbered("after-", t);
        ASSERT_EQ(write_value(sb.mnt("guest/U"), after + "\n").err, 0) << "trial " << t;
        for (const Rec& r : recs) {
            if (pool_value(sb.pool(1), r.key) != r.value) {
                if (before_change) {
                    ++lost;
                    ADD_FAILURE() << "trial " << t << ": " << r.key << " reads "
                                  << pool_value(sb.pool(1), r.key) << ", not " << r.value;
                } else {
                    ++overlapped;
                }
                break;
            }
        }
        if (pool_value(sb.pool(1), "U") != after || shown(sb, "U") != after) {
            ++hidden;
            ADD_FAILURE() << "trial " << t << ": U reads " << pool_value(sb.pool(1), "U")
                          << " (shown " << shown(sb, "U") << "), not " << after;
        }
        // The next trial starts from a pool the rewriter would write: its keys and U.
        theirs = recs;
    }
    std::printf(
        "  %ld trials: %ld mount writes failed (EIO/ENOENT), %ld lost records, %ld hidden; "
        "%ld trials lost a record the rewrite wrote while the change ran\n",
        n, failed, lost, hidden, overlapped);
    EXPECT_EQ(sb.stop(), 0) << sb.log();
}

// POOL_DIR is a symbolic link, swapped between two directories with `ln -sfn` (a new link
// renamed over it). With the cache thread's look at every pool made long (600 s), every swap
// shows through the watches: the time each took is printed (median, p99, max), and each must
// show at all within the tests' staleness bound.
TEST(CoherenceStress, SwapsOfAPoolDirectoryLinkAreFollowedAtOnce) {
    Sandbox sb;
    const std::string a = sb.pool_dir() + "/a";
    const std::string b = sb.pool_dir() + "/b";
    for (const std::string& dir : {a, b}) {
        ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
        for (int n = 0; n < 5; ++n) {
            write_file(dir + "/.kvp_pool_" + std::to_string(n),
                       n == 1 ? encode_records({{"Which", dir == a ? "a" : "b"}}) : "");
        }
    }
    const std::string link = sb.pool_dir() + "/link";
    ASSERT_EQ(::symlink("a", link.c_str()), 0);
    sb.set_pool_dir(link);
    sb.start({"-o", "look_interval=600"});
    ASSERT_EQ(shown(sb, "Which"), "a");
    const long n = trials();
    std::vector<double> took;
    long unseen = 0;
    for (long t = 1; t <= n; ++t) {
        const std::string to = t % 2 == 1 ? "b" : "a";
        const std::string tmp = link + ".new";
        ASSERT_EQ(::symlink(to.c_str(), tmp.c_str()), 0);
        const auto start = Clock::now();
        ASSERT_EQ(::rename(tmp.c_str(), link.c_str()), 0);
        if (!kvptest::eventually([&] { return shown(sb, "Which") == to; },
                                 kvptest::kStalenessBound)) {
            ++unseen;
            ADD_FAILURE() << "trial " << t << ": still shows " << shown(sb, "Which");
            continue;
        }
        took.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    }
    std::sort(took.begin(), took.end());
    if (!took.empty()) {
        const auto at = [&](double q) {
            return took[std::min(took.size() - 1, static_cast<std::size_t>(q * took.size()))];
        };
        const long slow =
            std::count_if(took.begin(), took.end(), [](double ms) { return ms > 500; });
        std::printf(
            "  %ld swaps: %ld unseen; shown after median %.2f ms, p99 %.2f ms, max %.2f ms; "
            "%ld over 500 ms\n",
            n, unseen, at(0.5), at(0.99), took.back(), slow);
    }
    EXPECT_EQ(sb.stop(), 0) << sb.log();
}

}  // namespace
