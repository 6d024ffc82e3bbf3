// Change detection: a change by another process that follows the locking rules is seen by
// the next operation, also when the file's size is unchanged and its mtime is the same
// (the write landed in the same timestamp tick); a change made through the engine never
// loses one made by another process; the per-key changed_at of docs/behaviour.md §4.

#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "pool_file.hpp"
#include "test_support.hpp"

namespace {

// `n` (0..999) with leading zeros to three digits: values of one length in every round.
std::string three_digits(int n) {
    std::string s = std::to_string(n);
    return std::string(s.size() < 3 ? 3 - s.size() : 0, '0') + s;
}

using kvptest::decode_records;
using kvptest::encode_record;
using kvptest::encode_records;
using kvptest::kKeyField;
using kvptest::kRecord;
using kvptest::read_file;
using kvptest::Rec;
using kvptest::same_time;
using kvptest::stat_of;
using kvptest::to_string;
using kvptest::write_file;
using Records = std::vector<Rec>;

enum class Family { fcntl, flock };

// In a forked child: lock the file the way another writer does, overwrite `bytes` at
// `offset` with pwrite (size unchanged), put the mtime back to what it was, unlock.
int same_tick_rewrite(const std::string& path, off_t offset, const std::string& bytes,
                      Family family) {
    return kvptest::run_in_child([&]() -> int {
        const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            return 10;
        }
        struct flock fl {};
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (family == Family::fcntl ? ::fcntl(fd, F_SETLKW, &fl) != 0 : ::flock(fd, LOCK_EX) != 0) {
            return 11;
        }
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            return 12;
        }
        if (::pwrite(fd, bytes.data(), bytes.size(), offset) !=
            static_cast<ssize_t>(bytes.size())) {
            return 13;
        }
        const struct timespec times[2] = {st.st_atim, st.st_mtim};
        if (::futimens(fd, times) != 0) {
            return 14;
        }
        if (family == Family::fcntl) {
            fl.l_type = F_UNLCK;
            ::fcntl(fd, F_SETLK, &fl);
        } else {
            ::flock(fd, LOCK_UN);
        }
        ::close(fd);
        return 0;
    });
}

// In a forked child: hv_kvp_daemon's way: under an fcntl write lock, truncate the file and
// write the whole new content, then restore the old mtime.
int daemon_style_rewrite(const std::string& path, const std::string& content) {
    return kvptest::run_in_child([&]() -> int {
        const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            return 10;
        }
        struct flock fl {};
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (::fcntl(fd, F_SETLKW, &fl) != 0) {
            return 11;
        }
        struct stat st {};
        (void)::fstat(fd, &st);
        if (::ftruncate(fd, 0) != 0) {
            return 12;
        }
        if (::pwrite(fd, content.data(), content.size(), 0) !=
            static_cast<ssize_t>(content.size())) {
            return 13;
        }
        const struct timespec times[2] = {st.st_atim, st.st_mtim};
        (void)::futimens(fd, times);
        fl.l_type = F_UNLCK;
        ::fcntl(fd, F_SETLK, &fl);
        ::close(fd);
        return 0;
    });
}

class ChangeDetectionTest : public kvptest::PoolDirTest {
  protected:
    std::unique_ptr<kvp::PoolFile> open_pool(bool create = false) {
        kvp::PoolOptions options;
        options.lock_timeout = std::chrono::milliseconds(2000);
        options.create_on_write = create;
        return std::make_unique<kvp::PoolFile>(pool(), options);
    }
};

std::string value_of_length(int i, std::size_t len) {
    std::string v = "v" + std::to_string(i);
    v.resize(len, '.');
    return v;
}

void same_size_same_tick(const std::string& pool, Family family, kvp::PoolFile& p) {
    constexpr std::size_t kLen = 12;
    write_file(pool, encode_records({{"other", "x"}, {"k", value_of_length(0, kLen)}, {"z", "y"}}));
    // An old mtime, put back after every write: only the content (and ctime) changes.
    kvptest::set_mtime(pool, {1'600'000'000, 0});
    ASSERT_EQ(p.get("k"), value_of_length(0, kLen));
    const struct stat before = stat_of(pool);
    std::uint64_t generation = p.snapshot()->generation();
    for (int i = 1; i <= 150; ++i) {
        SCOPED_TRACE("round " + std::to_string(i));
        const std::string value = value_of_length(i, kLen);
        ASSERT_EQ(same_tick_rewrite(pool, kRecord + kKeyField, value, family), 0);
        // The writer really left size and mtime as they were: only the content changed.
        const struct stat now = stat_of(pool);
        ASSERT_EQ(now.st_size, before.st_size);
        ASSERT_TRUE(same_time(now.st_mtim, before.st_mtim))
            << to_string(now.st_mtim) << " vs " << to_string(before.st_mtim);
        ASSERT_EQ(p.get("k"), value);
        const std::uint64_t g = p.snapshot()->generation();
        EXPECT_GT(g, generation);
        generation = g;
    }
}

TEST_F(ChangeDetectionTest, SameSizeSameTickRewriteUnderFcntlLockIsSeen) {
    write_file(pool(), "");
    auto p = open_pool();
    same_size_same_tick(pool(), Family::fcntl, *p);
}

TEST_F(ChangeDetectionTest, SameSizeSameTickRewriteUnderFlockIsSeen) {
    write_file(pool(), "");
    auto p = open_pool();
    same_size_same_tick(pool(), Family::flock, *p);
}

TEST_F(ChangeDetectionTest, SameSizeKeyRenameIsSeenByList) {
    write_file(pool(), encode_records({{"aaa", "1"}, {"bbb", "2"}}));
    auto p = open_pool();
    ASSERT_EQ(p->list(), (std::vector<std::string>{"aaa", "bbb"}));
    for (int i = 0; i < 50; ++i) {
        const std::string key = "k" + std::to_string(100 + i);  // same length as "aaa"
        ASSERT_EQ(same_tick_rewrite(pool(), 0, key, Family::fcntl), 0);
        ASSERT_EQ(p->list(), (std::vector<std::string>{key, "bbb"}));
        ASSERT_EQ(p->get("aaa"), std::nullopt);
    }
}

TEST_F(ChangeDetectionTest, DaemonStyleTruncateAndRewriteOfTheSameSizeIsSeen) {
    write_file(pool(), encode_records({{"a", "0"}, {"b", "0"}}));
    auto p = open_pool();
    ASSERT_EQ(p->get("a"), "0");
    const struct stat before = stat_of(pool());
    for (int i = 1; i <= 60; ++i) {
        const std::string v = std::to_string(i % 10);
        ASSERT_EQ(daemon_style_rewrite(pool(), encode_records({{"b", v}, {"a", v}})), 0);
        ASSERT_TRUE(same_time(stat_of(pool()).st_mtim, before.st_mtim));
        ASSERT_EQ(p->get("a"), v) << "round " << i;
        ASSERT_EQ(p->list(), (std::vector<std::string>{"b", "a"}));
    }
}

TEST_F(ChangeDetectionTest, EngineChangeNeverLosesAnUnseenSameTickChange) {
    // The engine has the pool cached; another process changes one value in the same size
    // and tick; the engine's next change (of another key, and of the same record's key)
    // must be made on top of that change, not on the stale cache.
    write_file(pool(), encode_records({{"x", "000"}, {"y", "a"}, {"z", "b"}}));
    auto p = open_pool();
    ASSERT_EQ(p->get("x"), "000");
    for (int i = 1; i <= 60; ++i) {
        SCOPED_TRACE(i);
        char v[4];
        std::snprintf(v, sizeof v, "%03d", i);
        ASSERT_EQ(same_tick_rewrite(pool(), kKeyField, v, Family::fcntl), 0);
        p->set("y", "round" + std::to_string(i));
        const Records recs = decode_records(read_file(pool()));
        ASSERT_EQ(recs.size(), 3u);
        EXPECT_EQ(recs[0], (Rec{"x", v}));
        EXPECT_EQ(recs[1], (Rec{"y", "round" + std::to_string(i)}));
    }
}

TEST_F(ChangeDetectionTest, EngineChangeAfterAnUnseenSeedStyleDeleteUsesTheNewOffsets) {
    // Another process deletes "a" the seed's way (last record into the hole, truncate);
    // the engine, which still has the old layout cached, then replaces "d", which moved.
    write_file(pool(), encode_records({{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}));
    auto p = open_pool();
    ASSERT_EQ(p->list().size(), 4u);
    ASSERT_EQ(
        kvptest::run_in_child([&]() -> int {
            const int fd = ::open(pool().c_str(), O_RDWR);
            struct flock fl {};
            fl.l_type = F_WRLCK;
            fl.l_whence = SEEK_SET;
            if (fd < 0 || ::fcntl(fd, F_SETLKW, &fl) != 0) {
                return 10;
            }
            std::string last(kRecord, '\0');
            if (::pread(fd, last.data(), kRecord, 3 * kRecord) != static_cast<ssize_t>(kRecord) ||
                ::pwrite(fd, last.data(), kRecord, 0) != static_cast<ssize_t>(kRecord) ||
                ::ftruncate(fd, 3 * kRecord) != 0) {
                return 11;
            }
            fl.l_type = F_UNLCK;
            ::fcntl(fd, F_SETLK, &fl);
            ::close(fd);
            return 0;
        }),
        0);
    p->set("d", "44");
    EXPECT_EQ(decode_records(read_file(pool())), (Records{{"d", "44"}, {"b", "2"}, {"c", "3"}}));
    EXPECT_EQ(p->get("a"), std::nullopt);
}

TEST_F(ChangeDetectionTest, AppendByAnotherProcessIsSeen) {
    write_file(pool(), encode_records({{"a", "1"}}));
    auto p = open_pool();
    ASSERT_EQ(p->list().size(), 1u);
    for (int i = 0; i < 20; ++i) {
        const std::string rec = encode_record("n" + std::to_string(i), "v");
        ASSERT_EQ(kvptest::run_in_child([&]() -> int {
                      const int fd = ::open(pool().c_str(), O_WRONLY | O_APPEND);
                      if (fd < 0 || ::flock(fd, LOCK_EX) != 0) {
                          return 10;
                      }
                      const bool ok =
                          ::write(fd, rec.data(), rec.size()) == static_cast<ssize_t>(rec.size());
                      ::flock(fd, LOCK_UN);
                      ::close(fd);
                      return ok ? 0 : 11;
                  }),
                  0);
        ASSERT_EQ(p->list().size(), static_cast<std::size_t>(i + 2));
        ASSERT_EQ(p->get("n" + std::to_string(i)), "v");
    }
}

TEST_F(ChangeDetectionTest, FileCreatedLaterIsSeen) {
    auto p = open_pool();
    EXPECT_FALSE(p->snapshot()->exists());
    EXPECT_TRUE(p->list().empty());
    write_file(pool(), encode_records({{"a", "1"}}));
    EXPECT_EQ(p->list(), std::vector<std::string>{"a"});
    EXPECT_TRUE(p->snapshot()->exists());
}

TEST_F(ChangeDetectionTest, FileRemovedByOthersIsAnEmptyPool) {
    write_file(pool(), encode_records({{"a", "1"}}));
    auto p = open_pool();
    ASSERT_EQ(p->list().size(), 1u);
    ASSERT_EQ(::unlink(pool().c_str()), 0);
    EXPECT_TRUE(p->list().empty());
    EXPECT_EQ(p->get("a"), std::nullopt);
    EXPECT_FALSE(p->snapshot()->exists());
}

TEST_F(ChangeDetectionTest, FileReplacedByRenameWithSameSizeAndMtimeIsSeen) {
    write_file(pool(), encode_records({{"a", "1"}}));
    const struct timespec t = {1'500'000'000, 0};
    kvptest::set_mtime(pool(), t);
    auto p = open_pool();
    ASSERT_EQ(p->get("a"), "1");
    const std::string tmp = dir() + "/replacement";
    write_file(tmp, encode_records({{"a", "2"}}));
    kvptest::set_mtime(tmp, t);
    ASSERT_EQ(::rename(tmp.c_str(), pool().c_str()), 0);
    EXPECT_EQ(p->get("a"), "2");
    // And the engine's next change goes to the new file.
    p->set("b", "3");
    EXPECT_EQ(decode_records(read_file(pool())), (Records{{"a", "2"}, {"b", "3"}}));
}

TEST_F(ChangeDetectionTest, ChangeInAnotherPoolFileOfTheDirectoryDoesNotInvalidate) {
    write_file(pool(), encode_records({{"a", "1"}}));
    auto p = open_pool();
    const auto s = p->snapshot();
    write_file(pool_path(0), encode_records({{"other", "x"}}));
    write_file(pool_path(2), encode_records({{"other", "y"}}));
    EXPECT_EQ(p->snapshot().get(), s.get());
    EXPECT_EQ(p->get("a"), "1");
}

// ---- docs/behaviour.md §4: changed_at is the pool file's mtime when the value was last seen to
// change; a key whose value did not change keeps its time.

struct timespec changed_at(kvp::PoolFile& p, const std::string& key) {
    const auto s = p.snapshot();
    const auto* r = s->find(key);
    if (r == nullptr) {
        ADD_FAILURE() << "no record for " << key;
        return {};
    }
    return r->changed_at;
}

TEST_F(ChangeDetectionTest, ChangedAtStartsAtTheFilesMtime) {
    write_file(pool(), encode_records({{"a", "1"}, {"b", "2"}}));
    const struct timespec t1 = {1'000'000'000, 123'456'789};
    kvptest::set_mtime(pool(), t1);
    auto p = open_pool();
    EXPECT_TRUE(same_time(changed_at(*p, "a"), t1)) << to_string(changed_at(*p, "a"));
    EXPECT_TRUE(same_time(changed_at(*p, "b"), t1));
    EXPECT_TRUE(same_time(p->snapshot()->mtime(), t1));
}

TEST_F(ChangeDetectionTest, ChangedAtMovesOnlyForKeysWhoseValueChanged) {
    write_file(pool(), encode_records({{"a", "1"}, {"b", "2"}, {"c", "3"}}));
    const struct timespec t1 = {1'000'000'000, 0};
    kvptest::set_mtime(pool(), t1);
    auto p = open_pool();
    ASSERT_TRUE(same_time(changed_at(*p, "b"), t1));

    // Another process changes b; the file's mtime is then t2.
    write_file(pool(), encode_records({{"a", "1"}, {"b", "22"}, {"c", "3"}}));
    const struct timespec t2 = {1'100'000'000, 5};
    kvptest::set_mtime(pool(), t2);
    EXPECT_EQ(p->get("b"), "22");
    EXPECT_TRUE(same_time(changed_at(*p, "a"), t1)) << to_string(changed_at(*p, "a"));
    EXPECT_TRUE(same_time(changed_at(*p, "b"), t2)) << to_string(changed_at(*p, "b"));
    EXPECT_TRUE(same_time(changed_at(*p, "c"), t1));

    // The engine changes a: a gets the file's new mtime, the others keep theirs.
    p->set("a", "11");
    const struct timespec t3 = stat_of(pool()).st_mtim;
    EXPECT_TRUE(same_time(changed_at(*p, "a"), t3))
        << to_string(changed_at(*p, "a")) << " vs " << to_string(t3);
    EXPECT_TRUE(same_time(changed_at(*p, "b"), t2));
    EXPECT_TRUE(same_time(changed_at(*p, "c"), t1));

    // A new key gets the mtime of the write that created it.
    p->set("d", "4");
    EXPECT_TRUE(same_time(changed_at(*p, "d"), stat_of(pool()).st_mtim));
    EXPECT_TRUE(same_time(changed_at(*p, "c"), t1));
}

TEST_F(ChangeDetectionTest, ChangedAtSurvivesBeingMovedByADelete) {
    write_file(pool(), encode_records({{"a", "1"}, {"b", "2"}, {"c", "3"}}));
    const struct timespec t1 = {1'000'000'000, 0};
    kvptest::set_mtime(pool(), t1);
    auto p = open_pool();
    ASSERT_TRUE(same_time(changed_at(*p, "c"), t1));
    ASSERT_TRUE(p->remove("a"));  // c moves into a's slot; its value did not change
    EXPECT_EQ(decode_records(read_file(pool())), (Records{{"c", "3"}, {"b", "2"}}));
    EXPECT_TRUE(same_time(changed_at(*p, "c"), t1)) << to_string(changed_at(*p, "c"));
    EXPECT_TRUE(same_time(changed_at(*p, "b"), t1));
}

TEST_F(ChangeDetectionTest, ChangedAtIsKeptWhenAnotherProcessRewritesTheSameValue) {
    write_file(pool(), encode_records({{"a", "1"}, {"b", "2"}}));
    const struct timespec t1 = {1'000'000'000, 0};
    kvptest::set_mtime(pool(), t1);
    auto p = open_pool();
    ASSERT_TRUE(same_time(changed_at(*p, "a"), t1));
    // hv_kvp_daemon-style rewrite of the whole file: a unchanged, b changed.
    ASSERT_EQ(daemon_style_rewrite(pool(), encode_records({{"a", "1"}, {"b", "3"}})), 0);
    const struct timespec t2 = {1'200'000'000, 0};
    kvptest::set_mtime(pool(), t2);
    EXPECT_EQ(p->get("b"), "3");
    EXPECT_TRUE(same_time(changed_at(*p, "a"), t1)) << to_string(changed_at(*p, "a"));
    EXPECT_TRUE(same_time(changed_at(*p, "b"), t2)) << to_string(changed_at(*p, "b"));
}

// A writer that takes no lock rewrites another key in place (same size) while a change through
// the engine is being made, after the engine checked the file: its events and the engine's own
// cannot be told apart (repeated IN_MODIFY events merge), so the engine reads the file back
// after its change. The next operation shows the writer's value, and the change's own.
TEST_F(ChangeDetectionTest, UnlockedRewriteLandingDuringAnEngineChangeIsSeen) {
    write_file(pool(), encode_records({{"a", "mine-000"}, {"b", "old-b"}, {"c", "z"}}));
    auto p = open_pool();
    ASSERT_EQ(p->get("b"), "old-b");
    for (int i = 1; i <= 100; ++i) {
        SCOPED_TRACE("round " + std::to_string(i));
        const std::string theirs = value_of_length(i, 5);
        const std::string mine = "mine-" + three_digits(i);
        ASSERT_TRUE(p->update("a", [&](const std::string*) {
            // Another process, under the engine's exclusive lock, which it does not look at.
            EXPECT_EQ(kvptest::run_in_child([&]() -> int {
                          const int fd = ::open(pool().c_str(), O_WRONLY | O_CLOEXEC);
                          const bool ok = fd >= 0 && ::pwrite(fd, theirs.data(), theirs.size(),
                                                              kRecord + kKeyField) ==
                                                         static_cast<ssize_t>(theirs.size());
                          return ok ? 0 : 1;
                      }),
                      0);
            return std::optional<std::string>(mine);
        }));
        ASSERT_EQ(p->get("b"), theirs) << "the other writer's change was swallowed";
        ASSERT_EQ(p->get("a"), mine);
    }
    EXPECT_EQ(decode_records(read_file(pool())),
              (Records{{"a", "mine-100"}, {"b", value_of_length(100, 5)}, {"c", "z"}}));
}

// A writer holding both locks stores through a shared mapping: no inotify event at all, but
// the first store to a clean page moves the file's mtime and ctime, which every look compares.
TEST_F(ChangeDetectionTest, LockedStoreThroughASharedMappingIsSeen) {
    write_file(pool(), encode_records({{"a", "1"}, {"k", "value-000"}}));
    auto p = open_pool();
    ASSERT_EQ(p->get("k"), "value-000");
    for (int i = 1; i <= 50; ++i) {
        SCOPED_TRACE("round " + std::to_string(i));
        const std::string v = "value-" + three_digits(i);
        ASSERT_EQ(
            kvptest::run_in_child([&]() -> int {
                const int fd = ::open(pool().c_str(), O_RDWR | O_CLOEXEC);
                struct flock fl {};
                fl.l_type = F_WRLCK;
                fl.l_whence = SEEK_SET;
                if (fd < 0 || ::flock(fd, LOCK_EX) != 0 || ::fcntl(fd, F_SETLKW, &fl) != 0) {
                    return 10;
                }
                void* map = ::mmap(nullptr, 2 * kRecord, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (map == MAP_FAILED) {
                    return 11;
                }
                std::memcpy(static_cast<char*>(map) + kRecord + kKeyField, v.data(), v.size());
                ::munmap(map, 2 * kRecord);
                fl.l_type = F_UNLCK;
                ::fcntl(fd, F_SETLK, &fl);
                ::flock(fd, LOCK_UN);
                ::close(fd);
                return 0;
            }),
            0);
        ASSERT_EQ(p->get("k"), v) << "a store through a shared mapping went unseen";
    }
}

}  // namespace

// ---- Without inotify (ChangeWatch's fallback on the file's stat fields).

namespace {

// Builds the object while the process has no free file descriptor, so inotify_init1 fails
// with EMFILE and the object's ChangeWatch falls back to stat; then frees the descriptors.
template <typename T, typename... Args>
std::unique_ptr<T> make_without_inotify(Args&&... args) {
    // One T made first, with descriptors to spare: UBSan's vptr check looks a type up on its
    // first construction and, starved of descriptors, reports an "invalid vptr" (seen for the
    // shared_ptr control block of the directory watcher) instead.
    { const T warm_up(args...); }
    struct rlimit old {};
    if (::getrlimit(RLIMIT_NOFILE, &old) != 0) {
        throw std::runtime_error("getrlimit");
    }
    struct rlimit low = old;
    low.rlim_cur = 256;
    if (::setrlimit(RLIMIT_NOFILE, &low) != 0) {
        throw std::runtime_error("setrlimit");
    }
    std::vector<int> fillers;
    for (;;) {
        const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            break;
        }
        fillers.push_back(fd);
    }
    // The condition the object meets when it asks for its inotify instance.
    const int probe = ::inotify_init1(IN_CLOEXEC);
    if (probe >= 0) {
        ::close(probe);
    }
    std::unique_ptr<T> made;
    try {
        made = std::make_unique<T>(std::forward<Args>(args)...);
    } catch (...) {
    }
    for (const int fd : fillers) {
        ::close(fd);
    }
    ::setrlimit(RLIMIT_NOFILE, &old);
    if (probe >= 0) {
        throw std::runtime_error("inotify_init1 still worked without free descriptors");
    }
    return made;
}

}  // namespace

TEST_F(ChangeDetectionTest, FallbackWatchWithoutInotifySeesSameTickRewrites) {
    write_file(pool(), encode_records({{"k", "aaaa"}}));
    kvptest::set_mtime(pool(), {1'600'000'000, 0});
    auto w = make_without_inotify<kvp::ChangeWatch>(dir(), std::string(".kvp_pool_1"));
    ASSERT_NE(w, nullptr);
    ASSERT_FALSE(w->using_inotify()) << "could not make inotify fail";
    for (int i = 0; i < 30; ++i) {
        const struct stat st = stat_of(pool());
        w->mark_loaded(&st);
        ASSERT_EQ(same_tick_rewrite(pool(), kKeyField, i % 2 == 0 ? "bbbb" : "aaaa", Family::fcntl),
                  0);
        ASSERT_TRUE(w->maybe_changed()) << "round " << i;
    }
}

TEST_F(ChangeDetectionTest, PoolFileWithoutInotifySeesSameTickRewrites) {
    write_file(pool(), "");
    kvp::PoolOptions options;
    options.lock_timeout = std::chrono::milliseconds(2000);
    auto p = make_without_inotify<kvp::PoolFile>(pool(), options);
    ASSERT_NE(p, nullptr);
    same_size_same_tick(pool(), Family::fcntl, *p);
}
