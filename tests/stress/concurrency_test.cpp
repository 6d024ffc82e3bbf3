// Concurrency stress (docs/reliability.md): at once, for a bounded time,
//   - 3 processes write, delete and rename keys through the mount (text mode, some writes
//     in several chunks, some with the trailing "\n" echo adds),
//   - 1 process rewrites its keys directly in the pool under classic fcntl locks, in place
//     or appended, leaving garbage after the NULs (as hv_kvp_daemon may),
//   - 1 process appends cloud-init event records under flock,
//   - 2 processes list and read guest/ through the mount.
// Afterwards: every key written is present exactly once with its last value, the pool is
// whole records, the mount shows the same, and every value any reader saw is whole and
// was written by someone.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "stress_support.hpp"

namespace kvpstress {
namespace {

using Clock = std::chrono::steady_clock;

long long now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
}

// What one worker leaves behind for the checks: every value id it wrote, its keys' final
// state (id or "-" when deleted), the ids it saw, problems, and counters.
struct Journal {
    std::vector<std::string> written;
    std::map<std::string, std::string> final_state;
    std::set<std::string> seen;
    std::vector<std::string> problems;
    std::map<std::string, long> counts;
    // "key\tstart_ns\tend_ns": writers' creations of absent keys; readers' empty reads.
    std::vector<std::string> windows;

    void save(const std::string& dir, const std::string& tag) const {
        std::ofstream w(dir + "/" + tag + ".written");
        for (const auto& id : written)
            w << id << "\n";
        std::ofstream f(dir + "/" + tag + ".final");
        for (const auto& [k, v] : final_state)
            f << k << "\t" << v << "\n";
        std::ofstream s(dir + "/" + tag + ".seen");
        for (const auto& id : seen)
            s << id << "\n";
        std::ofstream p(dir + "/" + tag + ".problems");
        for (const auto& x : problems)
            p << x << "\n";
        std::ofstream c(dir + "/" + tag + ".counts");
        for (const auto& [k, v] : counts)
            c << k << "\t" << v << "\n";
        std::ofstream win(dir + "/" + tag + ".windows");
        for (const auto& x : windows)
            win << x << "\n";
    }
};

std::vector<std::string> lines_of(const std::string& path) {
    std::ifstream in(path);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

struct Plan {
    Clock::time_point deadline;
    long max_ops;
    unsigned seed;
    std::string logs;
};

int mount_writer(const Sandbox& sb, int w, const Plan& plan) {
    const std::string tag = "m" + std::to_string(w);
    std::mt19937 rng(plan.seed + w);
    std::vector<std::string> keys;
    for (int j = 0; j < 6; ++j) {
        keys.push_back(j % 2 == 0 ? tag + "-k" + std::to_string(j)
                                  : tag + "/dir%/k" + std::to_string(j));
    }
    Journal j;
    std::map<std::string, std::string> state;  // key -> id, absent when not present
    std::uint64_t seq = 0;
    for (long op = 0; op < plan.max_ops && Clock::now() < plan.deadline; ++op) {
        const int r = static_cast<int>(rng() % 100);
        const std::string key = keys[rng() % keys.size()];
        const std::string path = sb.mnt("guest/" + escape_key(key));
        if (r < 75) {
            // A value written in chunks is visible after each (docs/behaviour.md §5): its tag ends
            // in 'c', so a reader knows a cut value of it for one in progress.
            const bool chunked = rng() % 3 == 0;
            const std::string value =
                make_value(chunked ? tag + "c" : tag, ++seq, 40 + rng() % 900);
            const std::string id = *verify_value(value);
            j.written.push_back(id);
            const bool newline = rng() % 2 == 0;
            // A present key is replaced without O_CREAT, an absent one created with O_EXCL:
            // only a creation may show an empty value to a reader, and only meanwhile.
            const bool present = state.count(key) != 0;
            const long long t0 = now_ns();
            const Io io = write_value(path, newline ? value + "\n" : value,
                                      present ? O_WRONLY | O_TRUNC : O_WRONLY | O_CREAT | O_EXCL,
                                      chunked ? 97 : 0);
            if (!present) {
                j.windows.push_back(key + "\t" + std::to_string(t0) + "\t" +
                                    std::to_string(now_ns()));
            }
            if (io.err != 0) {
                j.problems.push_back("write " + key + ": " + io.step + " " + errno_name(io.err));
            } else {
                state[key] = id;
                ++j.counts["writes"];
            }
        } else if (r < 87) {
            const bool present = state.count(key) != 0;
            const int rc = ::unlink(path.c_str());
            const int e = rc == 0 ? 0 : errno;
            if (e != (present ? 0 : ENOENT)) {
                j.problems.push_back("unlink " + key + ": " + errno_name(e) +
                                     (present ? " (present)" : " (absent)"));
            }
            state.erase(key);
            ++j.counts["deletes"];
        } else {
            const std::string to = keys[rng() % keys.size()];
            const bool present = state.count(key) != 0;
            const int rc = ::rename(path.c_str(), sb.mnt("guest/" + escape_key(to)).c_str());
            const int e = rc == 0 ? 0 : errno;
            if (e != (present ? 0 : ENOENT)) {
                j.problems.push_back("rename " + key + " -> " + to + ": " + errno_name(e));
            }
            if (present && key != to) {
                state[to] = state[key];
                state.erase(key);
            }
            ++j.counts["renames"];
        }
    }
    for (const auto& key : keys) {
        j.final_state[key] = state.count(key) != 0 ? state[key] : "-";
    }
    j.save(plan.logs, tag);
    return j.problems.empty() ? 0 : 1;
}

// hv_kvp_daemon / the seed samples: classic fcntl write lock on the whole file, the key's
// first record rewritten in place or a record appended. Garbage after the NULs.
int fcntl_writer(const Sandbox& sb, const Plan& plan) {
    const std::string tag = "f";
    std::mt19937 rng(plan.seed + 100);
    Journal j;
    const int fd = ::open(sb.pool(1).c_str(), O_RDWR | O_CLOEXEC);
    const int app = ::open(sb.pool(1).c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0 || app < 0) {
        std::perror("open pool 1");
        return 2;
    }
    std::map<std::string, std::string> state;
    std::uint64_t seq = 0;
    for (long op = 0; op < plan.max_ops && Clock::now() < plan.deadline; ++op) {
        const std::string key = "f-k" + std::to_string(rng() % 6);
        const std::string value = make_value(tag, ++seq, 40 + rng() % 900);
        j.written.push_back(*verify_value(value));
        struct flock lk {};
        lk.l_type = F_WRLCK;
        lk.l_whence = SEEK_SET;
        if (::fcntl(fd, F_SETLKW, &lk) != 0) {
            j.problems.push_back(std::string("F_SETLKW: ") + std::strerror(errno));
            break;
        }
        std::string bytes;
        char buf[65536];
        for (off_t off = 0;;) {
            const ssize_t n = ::pread(fd, buf, sizeof buf, off);
            if (n <= 0)
                break;
            bytes.append(buf, static_cast<std::size_t>(n));
            off += n;
        }
        const auto recs = decode_records(bytes);
        std::size_t at = recs.size();
        for (std::size_t i = 0; i < recs.size(); ++i) {
            if (recs[i].key == key) {
                at = i;
                break;
            }
        }
        const std::string rec = encode_record(key, value, rng() % 2 == 0 ? 'G' : '\0');
        const ssize_t w = at < recs.size() ? ::pwrite(fd, rec.data(), rec.size(),
                                                      static_cast<off_t>(at * kRecord))
                                           : ::write(app, rec.data(), rec.size());
        if (w != static_cast<ssize_t>(rec.size())) {
            j.problems.push_back("record write failed");
        } else {
            state[key] = *verify_value(value);
            ++j.counts[at < recs.size() ? "in_place" : "appends"];
        }
        lk.l_type = F_UNLCK;
        ::fcntl(fd, F_SETLK, &lk);
        if (rng() % 4 == 0) {
            ::usleep(200);  // pacing, so the mount's writers get the lock in between
        }
    }
    ::close(app);
    ::close(fd);
    for (const auto& [k, v] : state)
        j.final_state[k] = v;
    j.save(plan.logs, tag);
    return j.problems.empty() ? 0 : 1;
}

// cloud-init's KVP reporter: open for append, flock(LOCK_EX), one record, unlock, close.
int flock_appender(const Sandbox& sb, const Plan& plan, long max_events) {
    const std::string tag = "c";
    std::mt19937 rng(plan.seed + 200);
    Journal j;
    for (long seq = 1; seq <= max_events && Clock::now() < plan.deadline; ++seq) {
        const std::string key = "CLOUD_INIT|" + std::to_string(1700000000 + seq) +
                                "|start|init-network/check-cache|c" + std::to_string(seq);
        const std::string value =
            make_value(tag, static_cast<std::uint64_t>(seq), 40 + rng() % 300);
        j.written.push_back(*verify_value(value));
        const int fd = ::open(sb.pool(1).c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0 || ::flock(fd, LOCK_EX) != 0) {
            j.problems.push_back(std::string("open/flock: ") + std::strerror(errno));
            break;
        }
        const std::string rec = encode_record(key, value);
        if (::write(fd, rec.data(), rec.size()) != static_cast<ssize_t>(rec.size())) {
            j.problems.push_back("append failed");
        } else {
            j.final_state[key] = *verify_value(value);
            ++j.counts["appends"];
        }
        ::flock(fd, LOCK_UN);
        ::close(fd);
        ::usleep(20'000);  // cloud-init reports a few events a second, not thousands
    }
    j.save(plan.logs, tag);
    return j.problems.empty() ? 0 : 1;
}

int mount_reader(const Sandbox& sb, int r, const Plan& plan) {
    const std::string tag = "r" + std::to_string(r);
    std::mt19937 rng(plan.seed + 300 + r);
    Journal j;
    for (long op = 0; op < plan.max_ops && Clock::now() < plan.deadline; ++op) {
        DIR* dir = ::opendir(sb.mnt("guest").c_str());
        if (dir == nullptr) {
            j.problems.push_back(std::string("opendir: ") + std::strerror(errno));
            break;
        }
        std::vector<std::string> names;
        std::set<std::string> unique;
        while (const dirent* e = ::readdir(dir)) {
            const std::string name = e->d_name;
            if (name == "." || name == "..")
                continue;
            if (!unique.insert(name).second) {
                j.problems.push_back("readdir lists " + printable(name) + " twice");
            }
            names.push_back(name);
        }
        ::closedir(dir);
        ++j.counts["listings"];
        for (int k = 0; k < 8 && !names.empty(); ++k) {
            const std::string& name = names[rng() % names.size()];
            const std::string key = unescape_name(name);
            if (key.rfind("m", 0) != 0 && key.rfind("f-k", 0) != 0 &&
                key.rfind("CLOUD_INIT|", 0) != 0) {
                j.problems.push_back("a key nobody wrote: " + printable(key));
                continue;
            }
            const long long t0 = now_ns();
            const ReadResult got = read_value(sb.mnt("guest/" + name));
            const long long t1 = now_ns();
            if (got.err == ENOENT) {
                ++j.counts["vanished"];
                continue;
            }
            if (got.err != 0) {
                j.problems.push_back("read " + printable(key) + ": " + errno_name(got.err));
                continue;
            }
            ++j.counts["reads"];
            const auto torn = [](const std::string& d) {
                return d.size() <= 1 || d.back() != '\n' || d.find('\0') != std::string::npos ||
                       !verify_value(d.substr(0, d.size() - 1));
            };
            if (contents_cached() && torn(got.data)) {
                // -o cache=all: a read overlapping a change can be cut at the old size or
                // padded with NUL bytes (docs/behaviour.md); counted, not a failure.
                ++j.counts["torn_reads"];
                continue;
            }
            if (got.data.empty() || got.data.back() != '\n') {
                j.problems.push_back("no trailing newline in " + printable(key) + ": " +
                                     printable(got.data));
                continue;
            }
            const std::string value = got.data.substr(0, got.data.size() - 1);
            if (value.empty()) {
                // Judged afterwards: fine only while a writer was creating this key.
                j.windows.push_back(key + "\t" + std::to_string(t0) + "\t" + std::to_string(t1));
                ++j.counts["empty_reads"];
                continue;
            }
            const auto id = verify_value(value);
            if (!id && partial_value_id(value)) {
                ++j.counts["partial_reads"];
                continue;
            }
            if (!id) {
                j.problems.push_back("torn or foreign value in " + printable(key) + ": " +
                                     printable(value, 200));
                continue;
            }
            j.seen.insert(*id);
        }
    }
    j.save(plan.logs, tag);
    return j.problems.empty() ? 0 : 1;
}

TEST(Stress, WritersThroughMountFcntlWritersFlockAppendersAndReadersAtOnce) {
    const double seconds = env_seconds("KVPFS_STRESS_SECONDS", 20);
    const unsigned seed =
        static_cast<unsigned>(env_long("KVPFS_STRESS_SEED", std::random_device{}()));
    std::printf("stress: %.0f s, seed %u (KVPFS_STRESS_SEED to repeat)\n", seconds, seed);

    Sandbox sb;
    for (int n = 0; n < 5; ++n)
        write_file(sb.pool(n), "");
    sb.start();
    const std::string logs = sb.base() + "/logs";
    ASSERT_EQ(::mkdir(logs.c_str(), 0755), 0);

    const auto start = Clock::now();
    const Plan plan{start + std::chrono::milliseconds(static_cast<long>(seconds * 1000)), 200000,
                    seed, logs};
    std::vector<std::pair<std::string, pid_t>> workers;
    for (int w = 0; w < 3; ++w) {
        workers.emplace_back("m" + std::to_string(w),
                             spawn([&, w] { return mount_writer(sb, w, plan); }));
    }
    workers.emplace_back("f", spawn([&] { return fcntl_writer(sb, plan); }));
    workers.emplace_back("c", spawn([&] { return flock_appender(sb, plan, 2000); }));
    for (int r = 0; r < 2; ++r) {
        workers.emplace_back("r" + std::to_string(r),
                             spawn([&, r] { return mount_reader(sb, r, plan); }));
    }
    const auto limit = std::chrono::milliseconds(static_cast<long>(seconds * 1000) + 60'000);
    for (const auto& [tag, pid] : workers) {
        const int status = wait_for(pid, limit);
        EXPECT_EQ(status, 0) << "worker " << tag << " exited with " << status;
        for (const auto& p : lines_of(logs + "/" + tag + ".problems")) {
            ADD_FAILURE() << tag << ": " << p;
        }
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

    // Expected final state and every id ever written.
    std::map<std::string, std::string> expected;
    std::set<std::string> written;
    std::map<std::string, long> counts;
    for (const auto& [tag, pid] : workers) {
        for (const auto& line : lines_of(logs + "/" + tag + ".final")) {
            const auto tab = line.find('\t');
            if (line.substr(tab + 1) != "-")
                expected[line.substr(0, tab)] = line.substr(tab + 1);
        }
        for (const auto& id : lines_of(logs + "/" + tag + ".written"))
            written.insert(id);
        for (const auto& line : lines_of(logs + "/" + tag + ".counts")) {
            const auto tab = line.find('\t');
            counts[tag + "." + line.substr(0, tab)] += std::stol(line.substr(tab + 1));
        }
    }

    // The readers never saw a value that was never written.
    long seen_total = 0;
    for (const auto& [tag, pid] : workers) {
        if (tag[0] != 'r')
            continue;
        for (const auto& id : lines_of(logs + "/" + tag + ".seen")) {
            ++seen_total;
            EXPECT_TRUE(written.count(id)) << tag << " saw value " << id << " that nobody wrote";
        }
    }

    // An empty value was seen only while the key was being created (open(O_CREAT) until
    // close()): the empty file a creation shows, never a replaced value cut short.
    std::map<std::string, std::vector<std::pair<long long, long long>>> creations;
    std::vector<std::tuple<std::string, long long, long long>> empties;
    for (const auto& [tag, pid] : workers) {
        for (const auto& line : lines_of(logs + "/" + tag + ".windows")) {
            std::istringstream in(line);
            std::string key;
            long long a = 0, b = 0;
            std::getline(in, key, '\t');
            in >> a >> b;
            if (tag[0] == 'm') {
                creations[key].emplace_back(a, b);
            } else {
                empties.emplace_back(key, a, b);
            }
        }
    }
    long empty_ok = 0;
    for (const auto& [key, a, b] : empties) {
        bool during_create = false;
        for (const auto& [c0, c1] : creations[key]) {
            during_create = during_create || (c0 <= b && a <= c1);
        }
        if (during_create) {
            ++empty_ok;
        } else {
            ADD_FAILURE() << "a reader saw " << printable(key)
                          << " empty while nobody was creating it (a value nobody wrote)";
        }
    }

    // The pool file: whole records, each key once, its last value.
    const std::string bytes = read_file(sb.pool(1));
    EXPECT_EQ(bytes.size() % kRecord, 0U) << "pool 1 is " << bytes.size() << " bytes";
    const auto recs = decode_records(bytes);
    std::map<std::string, int> occurrences;
    for (const auto& r : recs) {
        ++occurrences[r.key];
    }
    for (const auto& [key, n] : occurrences) {
        EXPECT_EQ(n, 1) << printable(key) << " has " << n << " records";
        EXPECT_TRUE(expected.count(key))
            << "pool holds " << printable(key) << " which should not be there";
    }
    for (const auto& [key, id] : expected) {
        const auto it =
            std::find_if(recs.begin(), recs.end(), [&](const Rec& r) { return r.key == key; });
        if (it == recs.end()) {
            ADD_FAILURE() << printable(key) << " (last value " << id << ") is missing";
            continue;
        }
        const auto got = verify_value(it->value);
        EXPECT_TRUE(got.has_value() && *got == id)
            << printable(key) << " holds " << printable(it->value, 80) << ", last written " << id;
    }

    // The mount shows the same.
    std::set<std::string> listed;
    DIR* dir = ::opendir(sb.mnt("guest").c_str());
    ASSERT_NE(dir, nullptr);
    while (const dirent* e = ::readdir(dir)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..")
            listed.insert(unescape_name(name));
    }
    ::closedir(dir);
    std::set<std::string> want;
    for (const auto& [key, id] : expected)
        want.insert(key);
    EXPECT_EQ(listed, want);
    for (const auto& [key, id] : expected) {
        const ReadResult got = read_value(sb.mnt("guest/" + escape_key(key)));
        ASSERT_EQ(got.err, 0) << key;
        const auto read_id = verify_value(got.data.substr(0, got.data.size() - 1));
        EXPECT_TRUE(read_id && *read_id == id) << key;
    }
    EXPECT_TRUE(sb.mounted());

    std::printf(
        "stress: %.1f s; keys at the end %zu; values written %zu; values seen by readers %ld; "
        "empty reads during a creation %ld\n",
        elapsed, expected.size(), written.size(), seen_total, empty_ok);
    for (const auto& [k, v] : counts)
        std::printf("  %s = %ld\n", k.c_str(), v);
    ::testing::Test::RecordProperty("values_written", static_cast<int>(written.size()));
    ::testing::Test::RecordProperty("values_seen", static_cast<int>(seen_total));
    if (::testing::Test::HasFailure()) {
        std::printf("daemon log:\n%s\n", sb.log().substr(0, 4000).c_str());
    }
}

}  // namespace
}  // namespace kvpstress
