// Compatibility with the other writers of pool files, imitated here with raw syscalls:
// cloud-init (flock, appends packed records), the seed samples (fcntl write lock, append;
// delete by moving the last record into the hole), hv_kvp_daemon (fcntl lock held while it
// truncates and rewrites the whole file from its in-memory array, garbage after the NULs).
// And the other way round: pools the engine writes, read by an independent decoder.

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "pool_directory.hpp"
#include "pool_file.hpp"
#include "test_support.hpp"

namespace {

using kvptest::decode_records;
using kvptest::encode_record;
using kvptest::kKeyField;
using kvptest::kRecord;
using kvptest::kValueField;
using kvptest::read_file;
using kvptest::Rec;
using Records = std::vector<Rec>;

Records sorted(Records r) {
    std::sort(r.begin(), r.end(), [](const Rec& a, const Rec& b) {
        return std::tie(a.key, a.value) < std::tie(b.key, b.value);
    });
    return r;
}

class CompatibilityTest : public kvptest::PoolDirTest {
  protected:
    std::unique_ptr<kvp::PoolFile> open_pool(const std::string& path, bool create = false) {
        kvp::PoolOptions options;
        options.lock_timeout = std::chrono::milliseconds(2000);
        options.create_on_write = create;
        return std::make_unique<kvp::PoolFile>(path, options);
    }
};

// ---- cloud-init: open for append, flock(LOCK_EX), write struct.pack("512s2048s", ...)
// records (NUL-padded), flock(LOCK_UN).
int cloud_init_append(const std::string& path, const Records& events) {
    return kvptest::run_in_child([&]() -> int {
        const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0 || ::flock(fd, LOCK_EX) != 0) {
            return 10;
        }
        std::string packed;
        for (const auto& e : events) {
            std::string rec(kRecord, '\0');
            rec.replace(0, e.key.size(), e.key);
            rec.replace(kKeyField, e.value.size(), e.value);
            packed += rec;
        }
        const bool ok =
            ::write(fd, packed.data(), packed.size()) == static_cast<ssize_t>(packed.size());
        ::flock(fd, LOCK_UN);
        ::close(fd);
        return ok ? 0 : 11;
    });
}

Records cloud_init_events(int boot, int count) {
    Records events;
    static const char* const kStages[] = {"init-local", "init-network/check-cache",
                                          "modules-config/config-ssh", "init-network/activate"};
    for (int i = 0; i < count; ++i) {
        char uuid[40];
        std::snprintf(uuid, sizeof uuid, "%08x-1f2e-4d3c-9b8a-%012d", 0xabc00 + boot, i);
        const std::string ts = std::to_string(1700000000 + boot * 100 + i);
        const std::string stage = kStages[i % 4];
        const std::string event = i % 2 == 0 ? "start" : "finish";
        events.push_back({"CLOUD_INIT|" + ts + "|" + event + "|" + stage + "|" + uuid,
                          "{\"name\": \"" + stage + "\", \"type\": \"" + event +
                              "\", \"ts\": \"2023-11-14T" + std::to_string(10 + i % 10) +
                              ":13:20.000000Z\", \"msg\": \"running 'init' " +
                              "\xe2\x9c\x93 50% done\", \"result\": \"SUCCESS\"}"});
    }
    return events;
}

TEST_F(CompatibilityTest, CloudInitAppendedEventsReadBackExactly) {
    const std::string path = pool();
    auto p = open_pool(path);
    Records all;
    for (int boot = 0; boot < 3; ++boot) {
        const Records events = cloud_init_events(boot, 25);
        ASSERT_EQ(cloud_init_append(path, events), 0);
        all.insert(all.end(), events.begin(), events.end());
        // The engine, which may have the pool cached, sees each batch.
        std::vector<std::string> keys;
        for (const auto& e : all) {
            keys.push_back(e.key);
        }
        ASSERT_EQ(p->list(), keys);
    }
    for (const auto& e : all) {
        ASSERT_EQ(p->get(e.key), e.value) << e.key;
    }
    const auto s = p->snapshot();
    ASSERT_EQ(s->records().size(), all.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
        EXPECT_EQ(s->records()[i].record.key, all[i].key);
        EXPECT_EQ(s->records()[i].record.value, all[i].value);
    }
}

TEST_F(CompatibilityTest, EngineWritesInterleaveWithCloudInitAppends) {
    const std::string path = pool();
    auto p = open_pool(path, true);
    p->set("PROVISIONING_REPORT", "result=in_progress");
    const Records events = cloud_init_events(7, 5);
    ASSERT_EQ(cloud_init_append(path, events), 0);
    p->set("PROVISIONING_REPORT", "result=success");
    p->set("another", "x");
    Records expected = {{"PROVISIONING_REPORT", "result=success"}};
    expected.insert(expected.end(), events.begin(), events.end());
    expected.push_back({"another", "x"});
    EXPECT_EQ(decode_records(read_file(path)), expected);
}

// ---- The seed samples: open, fcntl(F_SETLKW, F_WRLCK) over the whole file, write one
// zero-filled record at the end, unlock; delete by moving the last record over the found one.
int seed_append(const std::string& path, const std::string& key, const std::string& value) {
    return kvptest::run_in_child([&]() -> int {
        const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
        if (fd < 0) {
            return 10;
        }
        struct flock fl = {};
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        fl.l_pid = ::getpid();
        if (::fcntl(fd, F_SETLKW, &fl) != 0) {
            return 11;
        }
        const std::string rec = encode_record(key, value);
        const bool ok = ::write(fd, rec.data(), rec.size()) == static_cast<ssize_t>(rec.size());
        fl.l_type = F_UNLCK;
        ::fcntl(fd, F_SETLK, &fl);
        ::close(fd);
        return ok ? 0 : 12;
    });
}

int seed_delete(const std::string& path, const std::string& key) {
    return kvptest::run_in_child([&]() -> int {
        const int fd = ::open(path.c_str(), O_RDWR, 0644);
        if (fd < 0) {
            return 10;
        }
        struct flock fl = {};
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (::fcntl(fd, F_SETLKW, &fl) != 0) {
            return 11;
        }
        std::string rec(kRecord, '\0');
        off_t found = -1;
        for (off_t off = 0;; off += static_cast<off_t>(kRecord)) {
            if (::pread(fd, rec.data(), kRecord, off) <= 0) {
                break;
            }
            if (std::string(rec.c_str()) == key) {
                found = off;
                break;
            }
        }
        int status = 1;
        if (found >= 0) {
            const off_t last = ::lseek(fd, -static_cast<off_t>(kRecord), SEEK_END);
            if (last != found) {
                (void)::pread(fd, rec.data(), kRecord, last);
                (void)::pwrite(fd, rec.data(), kRecord, found);
            }
            status = ::ftruncate(fd, last) == 0 ? 0 : 12;
        }
        fl.l_type = F_UNLCK;
        ::fcntl(fd, F_SETLK, &fl);
        ::close(fd);
        return status;
    });
}

TEST_F(CompatibilityTest, SeedSampleWritesAndDeletesReadBackExactly) {
    kvptest::write_file(pool(), "");
    auto p = open_pool(pool());
    ASSERT_EQ(seed_append(pool(), "Status", "Ready"), 0);
    ASSERT_EQ(seed_append(pool(), "Owner", "ops team <ops@example.com>"), 0);
    ASSERT_EQ(seed_append(pool(), "Role", "web"), 0);
    ASSERT_EQ(seed_append(pool(), "Status", "ignored duplicate"), 0);
    EXPECT_EQ(p->list(), (std::vector<std::string>{"Status", "Owner", "Role"}));
    EXPECT_EQ(p->get("Status"), "Ready");
    EXPECT_EQ(p->get("Owner"), "ops team <ops@example.com>");

    ASSERT_EQ(seed_delete(pool(), "Owner"), 0);
    EXPECT_EQ(p->list(), (std::vector<std::string>{"Status", "Role"}));
    EXPECT_EQ(p->get("Status"), "Ready");  // the first record still wins
    ASSERT_EQ(seed_delete(pool(), "Status"), 0);
    EXPECT_EQ(p->get("Status"), "ignored duplicate");  // the moved duplicate now shows
    EXPECT_EQ(p->list(), (std::vector<std::string>{"Role", "Status"}));

    // The engine's own changes are readable by the seed's way of finding a record.
    p->set("Role", "db");
    EXPECT_EQ(decode_records(read_file(pool())),
              (Records{{"Role", "db"}, {"Status", "ignored duplicate"}}));
    ASSERT_EQ(seed_delete(pool(), "Role"), 0);
    EXPECT_EQ(p->list(), std::vector<std::string>{"Status"});
}

// ---- hv_kvp_daemon: keeps the pool as an in-memory array of records (grown by realloc,
// so never zeroed; memcpy of a shorter string leaves the old one behind the NUL), and on
// every change takes its fcntl write lock, reopens the file by name with truncation, writes
// the whole array, closes that stream and unlocks.
struct DaemonRecord {
    char key[kKeyField];
    char value[kValueField];
};

class FakeDaemon {
  public:
    explicit FakeDaemon(std::string path) : path_(std::move(path)) {}

    void set(const std::string& key, const std::string& value) {
        for (auto& r : records_) {
            if (key == r.key) {
                std::memcpy(r.value, value.c_str(), value.size() + 1);
                return;
            }
        }
        DaemonRecord r;
        // Uninitialised memory of a grown array: anything but zeros.
        std::memset(&r, 0xa5, sizeof r);
        if (!records_.empty()) {
            r = records_.back();  // a recycled slot with someone else's leftovers
        }
        std::memcpy(r.key, key.c_str(), key.size() + 1);
        std::memcpy(r.value, value.c_str(), value.size() + 1);
        records_.push_back(r);
    }
    void remove(const std::string& key) {
        for (std::size_t i = 0; i < records_.size(); ++i) {
            if (key == records_[i].key) {
                // The daemon shifts the following records down over the deleted one.
                records_.erase(records_.begin() + static_cast<std::ptrdiff_t>(i));
                return;
            }
        }
    }
    // In a forked child, as the daemon does it.
    int flush() {
        return kvptest::run_in_child([&]() -> int {
            const int lock_fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
            if (lock_fd < 0) {
                return 10;
            }
            struct flock fl = {};
            fl.l_type = F_WRLCK;
            fl.l_whence = SEEK_SET;
            if (::fcntl(lock_fd, F_SETLKW, &fl) != 0) {
                return 11;
            }
            FILE* f = std::fopen(path_.c_str(), "we");
            if (f == nullptr) {
                return 12;
            }
            const std::size_t n =
                std::fwrite(records_.data(), sizeof(DaemonRecord), records_.size(), f);
            std::fclose(f);
            fl.l_type = F_UNLCK;
            ::fcntl(lock_fd, F_SETLK, &fl);
            ::close(lock_fd);
            return n == records_.size() ? 0 : 13;
        });
    }

  private:
    std::string path_;
    std::vector<DaemonRecord> records_;
};

TEST_F(CompatibilityTest, HvKvpDaemonRewritesWithGarbageReadBackExactly) {
    static_assert(sizeof(DaemonRecord) == kRecord);
    const std::string path = pool_path(0);  // external: written by the daemon only
    FakeDaemon daemon(path);
    daemon.set("VirtualMachineName", "a-rather-long-virtual-machine-name-01");
    daemon.set("HostName", "HOST-ABCDEFGHIJKLMNOP");
    daemon.set("OSName", "Ubuntu");
    ASSERT_EQ(daemon.flush(), 0);
    auto p = open_pool(path);
    EXPECT_EQ(p->list(), (std::vector<std::string>{"VirtualMachineName", "HostName", "OSName"}));
    EXPECT_EQ(p->get("HostName"), "HOST-ABCDEFGHIJKLMNOP");
    EXPECT_EQ(p->get("OSName"), "Ubuntu");

    // Shorter values over longer ones leave the old bytes after the NUL; the engine must
    // show only the new strings, also though the size did not change.
    daemon.set("VirtualMachineName", "vm2");
    daemon.set("HostName", "H");
    ASSERT_EQ(daemon.flush(), 0);
    const std::string bytes = read_file(path);
    ASSERT_NE(bytes.find("-long-virtual"), std::string::npos) << "the imitation must leave garbage";
    EXPECT_FALSE(kvptest::zero_filled(bytes));
    EXPECT_EQ(p->get("VirtualMachineName"), "vm2");
    EXPECT_EQ(p->get("HostName"), "H");
    for (const auto& r : p->snapshot()->records()) {
        EXPECT_EQ(r.record.value.find("long"), std::string::npos);
        EXPECT_EQ(r.record.key.find('\xa5'), std::string::npos);
        EXPECT_EQ(r.record.value.find('\xa5'), std::string::npos);
    }

    // A delete shifts the records down and the file shrinks.
    daemon.remove("VirtualMachineName");
    daemon.set("NewKey", "n");
    ASSERT_EQ(daemon.flush(), 0);
    EXPECT_EQ(p->list(), (std::vector<std::string>{"HostName", "OSName", "NewKey"}));
    EXPECT_EQ(p->get("VirtualMachineName"), std::nullopt);
    EXPECT_EQ(p->get("NewKey"), "n");
}

TEST_F(CompatibilityTest, EngineChangeOnTopOfADaemonRewriteKeepsTheDaemonsRecords) {
    const std::string path = pool_path(4);
    FakeDaemon daemon(path);
    for (int i = 0; i < 10; ++i) {
        daemon.set("IP" + std::to_string(i), "10.0.0." + std::to_string(i * 11));
    }
    ASSERT_EQ(daemon.flush(), 0);
    auto p = open_pool(path);
    ASSERT_EQ(p->list().size(), 10u);
    daemon.set("IP3", "x");
    ASSERT_EQ(daemon.flush(), 0);
    p->set("IP5", "engine");
    const Records recs = decode_records(read_file(path));
    ASSERT_EQ(recs.size(), 10u);
    EXPECT_EQ(recs[3], (Rec{"IP3", "x"}));
    EXPECT_EQ(recs[5], (Rec{"IP5", "engine"}));
    EXPECT_EQ(recs[9], (Rec{"IP9", "10.0.0.99"}));
}

// ---- Pools the engine writes, read back by the independent decoder.
TEST_F(CompatibilityTest, EngineWrittenPoolsReadBackByAnIndependentDecoder) {
    auto p = open_pool(pool(), true);
    std::mt19937 rng(42);
    const std::vector<std::string> key_pool = {
        "a",
        "Status",
        "with/slash",
        "100%",
        ".",
        "..",
        "\xc3\xa9t\xc3\xa9",
        "CLOUD_INIT|1700000000|start|init-network/check-cache|uuid",
        std::string(511, 'K'),
        std::string(254, 'h'),
        "\xf0\x9f\x98\x80 emoji",
        "spaces in key",
    };
    std::map<std::string, std::string> model;
    for (int op = 0; op < 300; ++op) {
        const std::string& key = key_pool[rng() % key_pool.size()];
        switch (rng() % 4) {
            case 0:
            case 1: {
                std::string value;
                const auto len = rng() % 5 == 0 ? 2047 : rng() % 40;
                for (std::size_t i = 0; i < len; ++i) {
                    value.push_back(static_cast<char>(' ' + rng() % 95));
                }
                p->set(key, value);
                model[key] = value;
                break;
            }
            case 2:
                EXPECT_EQ(p->remove(key), model.erase(key) == 1);
                break;
            case 3: {
                const std::string& to = key_pool[rng() % key_pool.size()];
                const auto it = model.find(key);
                const bool present = it != model.end();
                EXPECT_EQ(p->rename(key, to), present);
                if (present && key != to) {
                    const std::string v = it->second;
                    model.erase(it);
                    model[to] = v;
                }
                break;
            }
        }
        if (op % 25 == 24 || op == 299) {
            const std::string bytes = read_file(pool());
            ASSERT_EQ(bytes.size() % kRecord, 0u);
            ASSERT_TRUE(kvptest::zero_filled(bytes));
            Records expected;
            for (const auto& [k, v] : model) {
                expected.push_back({k, v});
            }
            ASSERT_EQ(sorted(decode_records(bytes)), sorted(expected)) << "after op " << op;
        }
    }
}

TEST_F(CompatibilityTest, PoolDirectoryWritesEveryPoolReadableByTheDecoder) {
    for (int n = 0; n < 5; ++n) {
        kvptest::write_file(pool_path(n), "");
    }
    kvp::PoolDirectory d(dir(), kvp::DirectoryOptions{});
    for (const auto id : kvp::kAllPools) {
        d.pool(id).set("pool", std::string(kvp::pool_name(id)));
    }
    for (int n = 0; n < 5; ++n) {
        EXPECT_EQ(decode_records(read_file(pool_path(n))),
                  (Records{{"pool", std::string(kvp::pool_name(kvp::kAllPools.at(n)))}}));
    }
}

}  // namespace
