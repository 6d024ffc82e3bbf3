// Every operation of PoolFile on real pool files: list, get, set (first record in place,
// later duplicates dropped, new keys appended), create_if_absent, remove (last record into
// the hole, truncate), rename, compact; the limits; creation of pool 1 with mode 0644; the
// file is only ever changed in place (its inode never changes); the in-memory snapshot.

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pool_file.hpp"
#include "test_support.hpp"

namespace {

using kvptest::decode_records;
using kvptest::encode_record;
using kvptest::encode_records;
using kvptest::errno_of;
using kvptest::read_file;
using kvptest::Rec;
using kvptest::stat_of;
using kvptest::write_file;
using Records = std::vector<Rec>;

Records sorted(Records r) {
    std::sort(r.begin(), r.end(), [](const Rec& a, const Rec& b) {
        return std::tie(a.key, a.value) < std::tie(b.key, b.value);
    });
    return r;
}

class PoolFileTest : public kvptest::PoolDirTest {
  protected:
    std::unique_ptr<kvp::PoolFile> open_pool(bool create_on_write = false) {
        kvp::PoolOptions options;
        options.lock_timeout = std::chrono::milliseconds(2000);
        options.create_on_write = create_on_write;
        return std::make_unique<kvp::PoolFile>(pool(), options);
    }
    void write_pool(const Records& records) { write_file(pool(), encode_records(records)); }
    Records on_disk() { return decode_records(read_file(pool())); }
    ino_t inode() { return stat_of(pool()).st_ino; }
    // The engine's in-memory picture must be what is in the file, record for record.
    void expect_cache_matches_file(kvp::PoolFile& p) {
        Records cached;
        for (const auto& r : p.snapshot()->records()) {
            cached.push_back({r.record.key, r.record.value});
        }
        EXPECT_EQ(cached, on_disk()) << "the cached snapshot differs from the pool file";
        EXPECT_EQ(p.list(), open_pool()->list()) << "a fresh reader sees other keys";
    }
};

TEST_F(PoolFileTest, AnInPlaceRewriteZeroFillsBytesAnotherWriterLeftAfterTheKeyAndValue) {
    // Another tool left bytes after the NULs; a rewrite of the value in place leaves the
    // record exactly as the codec encodes it, key field included.
    write_file(pool(), kvptest::encode_record("k", "old", 'G') + kvptest::encode_record("n", "1"));
    auto p = open_pool();
    p->set("k", "new");
    EXPECT_EQ(read_file(pool()),
              kvptest::encode_record("k", "new") + kvptest::encode_record("n", "1"));
    p->set("k", "newer");  // the key field is clean now: only the value is written
    EXPECT_EQ(read_file(pool()),
              kvptest::encode_record("k", "newer") + kvptest::encode_record("n", "1"));
}

TEST_F(PoolFileTest, MissingFileIsAnEmptyPoolAndReadsCreateNothing) {
    auto p = open_pool(true);
    const auto snap = p->snapshot();
    ASSERT_NE(snap, nullptr);
    EXPECT_FALSE(snap->exists());
    EXPECT_TRUE(snap->records().empty());
    EXPECT_TRUE(snap->listing().empty());
    EXPECT_TRUE(p->list().empty());
    EXPECT_EQ(p->get("anything"), std::nullopt);
    EXPECT_FALSE(kvptest::exists(pool()));
}

TEST_F(PoolFileTest, FirstWriteCreatesPool1WithMode0644) {
    const mode_t old = ::umask(022);
    auto p = open_pool(true);
    p->set("Status", "Ready");
    ::umask(old);
    ASSERT_TRUE(kvptest::exists(pool()));
    EXPECT_EQ(stat_of(pool()).st_mode & 07777, 0644u);
    EXPECT_EQ(read_file(pool()), encode_record("Status", "Ready"));
    EXPECT_EQ(p->get("Status"), "Ready");
    EXPECT_EQ(kvptest::dir_entries(dir()), std::vector<std::string>{".kvp_pool_1"});
}

TEST_F(PoolFileTest, CreatedPoolIs0644WhateverTheUmask) {
    // docs/behaviour.md §2: "creates .kvp_pool_1 with mode 0644" - the host-side daemon and other
    // readers must be able to read it even when the creator runs under a strict umask.
    const mode_t old = ::umask(077);
    auto p = open_pool(true);
    p->set("k", "v");
    ::umask(old);
    EXPECT_EQ(stat_of(pool()).st_mode & 07777, 0644u);
}

TEST_F(PoolFileTest, ChangesToAMissingFileFailWithENOENTUnlessCreationIsAllowed) {
    auto p = open_pool(false);
    EXPECT_EQ(errno_of([&] { p->set("k", "v"); }), ENOENT);
    EXPECT_EQ(errno_of([&] { (void)p->create_if_absent("k"); }), ENOENT);
    EXPECT_FALSE(kvptest::exists(pool()));
    EXPECT_TRUE(kvptest::dir_entries(dir()).empty());
}

TEST_F(PoolFileTest, OperationsWithNothingToDoOnAMissingFileCreateNothing) {
    auto p = open_pool(true);  // even where a change may create the file
    EXPECT_FALSE(p->remove("k"));
    EXPECT_FALSE(p->rename("k", "j"));
    EXPECT_EQ(p->compact(), 0u);
    EXPECT_FALSE(kvptest::exists(pool()));
    EXPECT_TRUE(kvptest::dir_entries(dir()).empty());
}

TEST_F(PoolFileTest, CreateIfAbsentOnMissingPool1CreatesIt) {
    auto p = open_pool(true);
    EXPECT_TRUE(p->create_if_absent("k"));
    EXPECT_EQ(read_file(pool()), encode_record("k", ""));
    EXPECT_EQ(stat_of(pool()).st_mode & 07777, 0644u);
}

TEST_F(PoolFileTest, ListAndGetFollowTheFirstRecordOfEachKey) {
    write_pool({{"b", "b1"}, {"a", "a1"}, {"b", "b2"}, {"c", "c1"}, {"a", "a2"}});
    auto p = open_pool();
    EXPECT_EQ(p->list(), (std::vector<std::string>{"b", "a", "c"}));
    EXPECT_EQ(p->get("a"), "a1");
    EXPECT_EQ(p->get("b"), "b1");
    EXPECT_EQ(p->get("c"), "c1");
    EXPECT_EQ(p->get("d"), std::nullopt);
    EXPECT_EQ(p->get("A"), std::nullopt);  // keys are case-sensitive bytes
}

TEST_F(PoolFileTest, SetAppendsANewKeyWithoutTouchingTheRest) {
    // Garbage after the NULs of existing records must survive a change that did not ask
    // to touch them (nothing else is ever rewritten).
    const std::string before = encode_record("a", "1", 'x') + encode_record("b", "2", 'y');
    write_file(pool(), before);
    const ino_t ino = inode();
    auto p = open_pool();
    p->set("c", "3");
    const std::string after = read_file(pool());
    ASSERT_EQ(after.size(), 3 * kvptest::kRecord);
    EXPECT_EQ(after.substr(0, before.size()), before);
    EXPECT_EQ(after.substr(before.size()), encode_record("c", "3"));
    EXPECT_EQ(inode(), ino);
    EXPECT_EQ(p->get("c"), "3");
}

TEST_F(PoolFileTest, SetReplacesTheRecordInPlaceZeroFilled) {
    const std::string r0 = encode_record("a", "1", 'x');
    const std::string r1 = encode_record("b", std::string(1500, 'o'), 'y');
    const std::string r2 = encode_record("c", "3", 'z');
    write_file(pool(), r0 + r1 + r2);
    const ino_t ino = inode();
    auto p = open_pool();
    p->set("b", "new");
    const std::string after = read_file(pool());
    ASSERT_EQ(after.size(), 3 * kvptest::kRecord);
    EXPECT_EQ(after.substr(0, kvptest::kRecord), r0);
    EXPECT_EQ(after.substr(kvptest::kRecord, kvptest::kRecord), encode_record("b", "new"));
    EXPECT_EQ(after.substr(2 * kvptest::kRecord), r2);
    EXPECT_EQ(inode(), ino);
    EXPECT_EQ(p->get("b"), "new");
}

TEST_F(PoolFileTest, SetRewritesTheFirstDuplicateAndDropsTheLaterOnes) {
    write_pool({{"a", "a1"}, {"b", "b"}, {"a", "a2"}, {"c", "c"}, {"a", "a3"}});
    const ino_t ino = inode();
    auto p = open_pool();
    p->set("a", "new");
    const std::string bytes = read_file(pool());
    EXPECT_EQ(bytes.size(), 3 * kvptest::kRecord);
    EXPECT_TRUE(kvptest::zero_filled(bytes));
    const Records recs = decode_records(bytes);
    ASSERT_FALSE(recs.empty());
    EXPECT_EQ(recs[0], (Rec{"a", "new"}));
    EXPECT_EQ(sorted(recs), sorted({{"a", "new"}, {"b", "b"}, {"c", "c"}}));
    EXPECT_EQ(inode(), ino);
    EXPECT_EQ(p->list().size(), 3u);
    EXPECT_EQ(p->get("a"), "new");
    expect_cache_matches_file(*p);
}

TEST_F(PoolFileTest, SetWithSeveralLaterDuplicatesLosesNoOtherKey) {
    // Two later duplicates: the first hole is filled from the end, then the second hole
    // takes the record that is last by then.
    write_pool({{"a", "a1"}, {"a", "a2"}, {"b", "b"}, {"a", "a3"}, {"c", "c"}});
    auto p = open_pool();
    p->set("a", "new");
    EXPECT_EQ(on_disk().front(), (Rec{"a", "new"}));
    EXPECT_EQ(sorted(on_disk()), sorted({{"a", "new"}, {"b", "b"}, {"c", "c"}}));
    expect_cache_matches_file(*p);
}

TEST_F(PoolFileTest, SetOfTheSameValueKeepsOneRecord) {
    auto p = open_pool(true);
    for (int i = 0; i < 5; ++i) {
        p->set("k", "v");
    }
    EXPECT_EQ(on_disk(), (Records{{"k", "v"}}));
}

TEST_F(PoolFileTest, RemoveMovesTheLastRecordIntoTheHoleAndTruncates) {
    write_pool({{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}});
    const ino_t ino = inode();
    auto p = open_pool();
    EXPECT_TRUE(p->remove("b"));
    EXPECT_EQ(on_disk(), (Records{{"a", "1"}, {"d", "4"}, {"c", "3"}}));
    EXPECT_EQ(stat_of(pool()).st_size, static_cast<off_t>(3 * kvptest::kRecord));
    EXPECT_EQ(inode(), ino);
    EXPECT_EQ(p->get("b"), std::nullopt);
    EXPECT_EQ(p->list(), (std::vector<std::string>{"a", "d", "c"}));
}

TEST_F(PoolFileTest, RemoveOfTheLastRecordJustTruncates) {
    write_pool({{"a", "1"}, {"b", "2"}});
    auto p = open_pool();
    EXPECT_TRUE(p->remove("b"));
    EXPECT_EQ(read_file(pool()), encode_record("a", "1"));
}

TEST_F(PoolFileTest, RemoveDeletesEveryRecordOfTheKey) {
    write_pool({{"a", "1"}, {"b", "2"}, {"a", "3"}, {"c", "4"}, {"a", "5"}});
    const ino_t ino = inode();
    auto p = open_pool();
    EXPECT_TRUE(p->remove("a"));
    EXPECT_EQ(sorted(on_disk()), sorted({{"b", "2"}, {"c", "4"}}));
    EXPECT_EQ(stat_of(pool()).st_size, static_cast<off_t>(2 * kvptest::kRecord));
    EXPECT_EQ(inode(), ino);
    EXPECT_EQ(p->get("a"), std::nullopt);
    expect_cache_matches_file(*p);
}

TEST_F(PoolFileTest, RemoveOfAKeyThatFillsThePoolOrItsEnd) {
    write_pool({{"a", "1"}, {"a", "2"}, {"a", "3"}});
    auto p = open_pool();
    EXPECT_TRUE(p->remove("a"));
    EXPECT_EQ(read_file(pool()), "");
    expect_cache_matches_file(*p);

    write_pool({{"x", "1"}, {"a", "2"}, {"a", "3"}});
    EXPECT_TRUE(p->remove("a"));
    EXPECT_EQ(on_disk(), (Records{{"x", "1"}}));
    expect_cache_matches_file(*p);

    write_pool({{"a", "1"}, {"x", "2"}, {"a", "3"}, {"y", "4"}, {"z", "5"}});
    EXPECT_TRUE(p->remove("a"));
    EXPECT_EQ(sorted(on_disk()), sorted({{"x", "2"}, {"y", "4"}, {"z", "5"}}));
    expect_cache_matches_file(*p);
}

TEST_F(PoolFileTest, RemoveOfAnAbsentKeyChangesNothing) {
    write_pool({{"a", "1"}, {"b", "2"}});
    const struct timespec old_mtime = {1'000'000'000, 0};
    kvptest::set_mtime(pool(), old_mtime);
    const std::string before = read_file(pool());
    auto p = open_pool();
    EXPECT_FALSE(p->remove("zzz"));
    EXPECT_EQ(read_file(pool()), before);
    EXPECT_TRUE(kvptest::same_time(stat_of(pool()).st_mtim, old_mtime));
}

TEST_F(PoolFileTest, RemovingEveryKeyLeavesAnEmptyFileNotUnlinked) {
    write_pool({{"a", "1"}, {"b", "2"}, {"c", "3"}});
    const ino_t ino = inode();
    auto p = open_pool();
    for (const char* k : {"b", "a", "c"}) {
        EXPECT_TRUE(p->remove(k)) << k;
    }
    ASSERT_TRUE(kvptest::exists(pool()));
    EXPECT_EQ(stat_of(pool()).st_size, 0);
    EXPECT_EQ(inode(), ino);
    EXPECT_TRUE(p->list().empty());
    EXPECT_TRUE(p->snapshot()->exists());
    EXPECT_EQ(kvptest::dir_entries(dir()), std::vector<std::string>{".kvp_pool_1"});
}

TEST_F(PoolFileTest, RenameMovesTheValue) {
    write_pool({{"a", "va"}, {"b", "vb"}});
    const ino_t ino = inode();
    auto p = open_pool();
    EXPECT_TRUE(p->rename("a", "c"));
    EXPECT_EQ(p->get("a"), std::nullopt);
    EXPECT_EQ(p->get("c"), "va");
    EXPECT_EQ(p->get("b"), "vb");
    EXPECT_EQ(sorted(on_disk()), sorted({{"c", "va"}, {"b", "vb"}}));
    EXPECT_EQ(inode(), ino);
}

TEST_F(PoolFileTest, RenameReplacesTheTargetAndEveryDuplicateOfIt) {
    write_pool({{"b", "old1"}, {"a", "va"}, {"b", "old2"}, {"x", "vx"}, {"a", "va2"}});
    const ino_t ino = inode();
    auto p = open_pool();
    EXPECT_TRUE(p->rename("a", "b"));
    EXPECT_EQ(p->get("b"), "va");
    EXPECT_EQ(p->get("a"), std::nullopt);
    EXPECT_EQ(sorted(on_disk()), sorted({{"b", "va"}, {"x", "vx"}}));
    EXPECT_TRUE(kvptest::zero_filled(read_file(pool())));
    EXPECT_EQ(inode(), ino);
    expect_cache_matches_file(*p);
}

TEST_F(PoolFileTest, RenameOfAnAbsentKeyChangesNothing) {
    write_pool({{"a", "1"}});
    const std::string before = read_file(pool());
    auto p = open_pool();
    EXPECT_FALSE(p->rename("nope", "a"));
    EXPECT_FALSE(p->rename("nope", "other"));
    EXPECT_EQ(read_file(pool()), before);
}

TEST_F(PoolFileTest, RenameChecksTheNewKeyAgainstTheLimits) {
    write_pool({{"a", "1"}});
    const std::string before = read_file(pool());
    auto p = open_pool();
    EXPECT_EQ(errno_of([&] { (void)p->rename("a", std::string(512, 'n')); }), ENAMETOOLONG);
    EXPECT_EQ(errno_of([&] { (void)p->rename("a", std::string(255, 'n'), kvp::Limits::host); }),
              ENAMETOOLONG);
    EXPECT_EQ(errno_of([&] { (void)p->rename("a", "bad\xff", kvp::Limits::host); }), EINVAL);
    EXPECT_NE(errno_of([&] { (void)p->rename("a", ""); }), 0);
    EXPECT_EQ(read_file(pool()), before);
    EXPECT_TRUE(p->rename("a", std::string(511, 'n')));
    EXPECT_EQ(p->get(std::string(511, 'n')), "1");
}

TEST_F(PoolFileTest, CreateIfAbsent) {
    write_pool({{"a", "1"}});
    auto p = open_pool();
    EXPECT_FALSE(p->create_if_absent("a"));
    EXPECT_EQ(read_file(pool()), encode_record("a", "1"));
    EXPECT_TRUE(p->create_if_absent("b"));
    EXPECT_EQ(on_disk(), (Records{{"a", "1"}, {"b", ""}}));
    EXPECT_EQ(p->get("b"), "");
    EXPECT_FALSE(p->create_if_absent("b"));
    EXPECT_EQ(on_disk().size(), 2u);
    EXPECT_EQ(errno_of([&] { (void)p->create_if_absent(std::string(512, 'k')); }), ENAMETOOLONG);
}

TEST_F(PoolFileTest, CompactDropsLaterDuplicatesKeepingTheFirst) {
    write_pool({{"a", "a1"}, {"b", "b1"}, {"a", "a2"}, {"c", "c1"}, {"b", "b2"}, {"a", "a3"}});
    const ino_t ino = inode();
    auto p = open_pool();
    EXPECT_EQ(p->compact(), 3u);
    EXPECT_EQ(sorted(on_disk()), sorted({{"a", "a1"}, {"b", "b1"}, {"c", "c1"}}));
    EXPECT_EQ(p->get("a"), "a1");
    EXPECT_EQ(p->get("b"), "b1");
    EXPECT_EQ(inode(), ino);
    expect_cache_matches_file(*p);
    EXPECT_EQ(p->compact(), 0u);
}

TEST_F(PoolFileTest, CompactCutsAPartialTail) {
    const std::string whole = encode_records({{"a", "1"}, {"b", "2"}});
    write_file(pool(), whole + std::string(700, 'T'));
    const ino_t ino = inode();
    auto p = open_pool();
    (void)p->compact();
    EXPECT_EQ(read_file(pool()), whole);
    EXPECT_EQ(inode(), ino);
}

struct Refusal {
    std::string key;
    std::string value;
    kvp::Limits limits;
    int expected_errno;
};

TEST_F(PoolFileTest, LimitViolationsAreRefusedWithTheirErrnoAndChangeNothing) {
    write_pool({{"k", "old"}});
    const std::string before = read_file(pool());
    auto p = open_pool();
    const std::vector<Refusal> refusals = {
        {std::string(512, 'k'), "v", kvp::Limits::pool, ENAMETOOLONG},
        {std::string(512, 'k'), "v", kvp::Limits::host, ENAMETOOLONG},
        {std::string(255, 'k'), "v", kvp::Limits::host, ENAMETOOLONG},
        {"k", std::string(2048, 'v'), kvp::Limits::pool, EFBIG},
        {"k", std::string(1023, 'v'), kvp::Limits::host, EFBIG},
        {"k\xc3", "v", kvp::Limits::host, EINVAL},
        {"k", "v\xed\xa0\x80", kvp::Limits::host, EINVAL},
        {std::string("k\0k", 3), "v", kvp::Limits::pool, EINVAL},
        {"k", std::string("v\0v", 3), kvp::Limits::pool, EINVAL},
        {"", "v", kvp::Limits::pool, kvp::key_errno(kvp::Violation::empty_key)},
    };
    for (const auto& r : refusals) {
        SCOPED_TRACE(testing::PrintToString(r.key.substr(0, 20)) + " / " +
                     testing::PrintToString(r.value.substr(0, 20)));
        EXPECT_EQ(errno_of([&] { p->set(r.key, r.value, r.limits); }), r.expected_errno);
        EXPECT_EQ(read_file(pool()), before);
        EXPECT_EQ(p->get("k"), "old");
    }
    EXPECT_NE(kvp::key_errno(kvp::Violation::empty_key), 0);
}

TEST_F(PoolFileTest, ValuesAtTheLimitsAreStoredExactly) {
    auto p = open_pool(true);
    const std::string k511(511, 'K');
    const std::string v2047(2047, 'V');
    const std::string k254(254, 'h');
    const std::string v1022(1022, 'w');
    const std::string not_utf8 = "\xff\xfe raw \x80";
    p->set(k511, v2047, kvp::Limits::pool);
    p->set(k254, v1022, kvp::Limits::host);
    p->set(not_utf8, not_utf8, kvp::Limits::pool);
    p->set("empty", "", kvp::Limits::host);
    EXPECT_EQ(on_disk(),
              (Records{{k511, v2047}, {k254, v1022}, {not_utf8, not_utf8}, {"empty", ""}}));
    EXPECT_TRUE(kvptest::zero_filled(read_file(pool())));
    EXPECT_EQ(p->get(k511), v2047);
    EXPECT_EQ(p->get(not_utf8), not_utf8);
}

TEST_F(PoolFileTest, SnapshotIsCachedWhileNothingChangesAndNeverMutates) {
    write_pool({{"a", "1"}, {"b", "2"}});
    auto p = open_pool();
    const auto s1 = p->snapshot();
    const auto s2 = p->snapshot();
    EXPECT_EQ(s1.get(), s2.get()) << "an unchanged pool must be served from memory";
    (void)p->get("a");
    (void)p->list();
    EXPECT_EQ(p->snapshot().get(), s1.get());
    EXPECT_EQ(s1->generation(), s2->generation());

    p->set("a", "changed");
    const auto s3 = p->snapshot();
    EXPECT_NE(s3.get(), s1.get());
    EXPECT_GT(s3->generation(), s1->generation());
    // The old snapshot is immutable: a reader holding it still sees the old state.
    ASSERT_NE(s1->find("a"), nullptr);
    EXPECT_EQ(s1->find("a")->record.value, "1");
    ASSERT_NE(s3->find("a"), nullptr);
    EXPECT_EQ(s3->find("a")->record.value, "changed");
}

TEST_F(PoolFileTest, SnapshotHoldsRecordsInFileOrderAndIndexesFirstRecords) {
    write_pool({{"b", "b1"}, {"a", "a1"}, {"b", "b2"}, {"", "hidden"}, {"c", "c1"}});
    auto p = open_pool();
    const auto s = p->snapshot();
    EXPECT_TRUE(s->exists());
    EXPECT_EQ(s->file_size(), 5 * kvptest::kRecord);
    EXPECT_FALSE(s->partial_tail());
    ASSERT_EQ(s->records().size(), 5u);
    const std::vector<std::string> keys = {"b", "a", "b", "", "c"};
    for (std::size_t i = 0; i < keys.size(); ++i) {
        EXPECT_EQ(s->records()[i].record.key, keys[i]);
    }
    EXPECT_EQ(s->listing(), (std::vector<std::size_t>{0, 1, 4}));
    EXPECT_EQ(s->find("b"), &s->records()[0]);
    EXPECT_EQ(s->find("c"), &s->records()[4]);
    EXPECT_EQ(s->find("z"), nullptr);
}

TEST_F(PoolFileTest, GenerationGrowsWithEveryChange) {
    auto p = open_pool(true);
    std::uint64_t last = p->snapshot()->generation();
    for (int i = 0; i < 20; ++i) {
        if (i % 3 == 2) {
            ASSERT_TRUE(p->remove("k" + std::to_string(i - 1)));
        } else {
            p->set("k" + std::to_string(i), "v");
        }
        const std::uint64_t g = p->snapshot()->generation();
        EXPECT_GT(g, last);
        last = g;
    }
}

TEST_F(PoolFileTest, LargePoolIsIndexed) {
    Records recs;
    for (int i = 0; i < 3000; ++i) {
        recs.push_back({"key-" + std::to_string(i), "value-" + std::to_string(i * 7)});
    }
    write_pool(recs);
    auto p = open_pool();
    const auto snap = p->snapshot();
    for (int i = 0; i < 3000; ++i) {
        ASSERT_EQ(p->get("key-" + std::to_string(i)), "value-" + std::to_string(i * 7));
    }
    EXPECT_EQ(p->snapshot().get(), snap.get());
    EXPECT_EQ(p->list().size(), 3000u);
    p->set("key-2999", "last");
    p->set("key-0", "first");
    EXPECT_EQ(on_disk().front(), (Rec{"key-0", "first"}));
    EXPECT_EQ(on_disk().back(), (Rec{"key-2999", "last"}));
}

TEST_F(PoolFileTest, ConcurrentWritersThroughTwoObjectsLoseNothing) {
    write_pool({});
    auto p1 = open_pool();
    auto p2 = open_pool();
    constexpr int kThreads = 4;
    constexpr int kPerThread = 40;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            kvp::PoolFile& p = (t % 2 == 0) ? *p1 : *p2;
            for (int i = 0; i < kPerThread; ++i) {
                try {
                    const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i);
                    p.set(key, "first");
                    p.set(key, "v" + std::to_string(i));
                    if (i % 5 == 0) {
                        (void)p.remove(key);
                    }
                } catch (const std::exception&) {
                    ++failures;
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    EXPECT_EQ(failures.load(), 0);
    Records expected;
    for (int t = 0; t < kThreads; ++t) {
        for (int i = 0; i < kPerThread; ++i) {
            if (i % 5 != 0) {
                expected.push_back(
                    {"t" + std::to_string(t) + "-" + std::to_string(i), "v" + std::to_string(i)});
            }
        }
    }
    const std::string bytes = read_file(pool());
    EXPECT_EQ(bytes.size() % kvptest::kRecord, 0u);
    EXPECT_EQ(sorted(decode_records(bytes)), sorted(expected));
    EXPECT_EQ(p1->list().size(), expected.size());
    EXPECT_EQ(p2->list().size(), expected.size());
}

TEST_F(PoolFileTest, ReadersKeepConsistentSnapshotsWhileAWriterChangesThePool) {
    write_pool({});
    auto p = open_pool();
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::atomic<int> reads{0};
    const auto well_formed = [](const std::string& v) {
        return v.size() >= 4 && v[0] == 'k' && v.find('=') != std::string::npos;
    };
    auto reader = [&] {
        while (!stop.load()) {
            const auto s = p->snapshot();
            // Every value is "k<m>=<n>" (a rename carries a value to another key).
            for (const std::size_t i : s->listing()) {
                const auto& r = s->records()[i].record;
                if (!well_formed(r.value) || s->find(r.key) != &s->records()[i]) {
                    ++bad;
                }
            }
            const auto keys = p->list();
            for (const auto& k : keys) {
                const auto v = p->get(k);
                if (v && !well_formed(*v)) {
                    ++bad;
                }
            }
            ++reads;
        }
    };
    std::thread r1(reader);
    std::thread r2(reader);
    while (reads.load() < 2) {  // the readers run before the writes start
        std::this_thread::yield();
    }
    for (int i = 0; i < 300; ++i) {
        const std::string key = "k" + std::to_string(i % 17);
        if (i % 5 == 4) {
            (void)p->remove(key);
        } else if (i % 7 == 6) {
            (void)p->rename(key, "k" + std::to_string((i + 3) % 17));
        } else {
            p->set(key, key + "=" + std::to_string(i));
        }
    }
    stop = true;
    r1.join();
    r2.join();
    EXPECT_EQ(bad.load(), 0);
    expect_cache_matches_file(*p);
}

TEST_F(PoolFileTest, ConcurrentWriterProcessesLoseNothing) {
    write_pool({});
    constexpr int kEach = 60;
    auto body = [this](const std::string& prefix) {
        return [this, prefix]() -> int {
            auto p = open_pool();
            for (int i = 0; i < kEach; ++i) {
                p->set(prefix + std::to_string(i), prefix);
                if (i % 4 == 0) {
                    p->set(prefix + std::to_string(i), prefix + "again");
                }
            }
            return 0;
        };
    };
    const pid_t a = kvptest::fork_child(body("A"));
    const pid_t b = kvptest::fork_child(body("B"));
    EXPECT_EQ(kvptest::wait_child(a), 0);
    EXPECT_EQ(kvptest::wait_child(b), 0);
    Records expected;
    for (const std::string prefix : {"A", "B"}) {
        for (int i = 0; i < kEach; ++i) {
            expected.push_back(
                {prefix + std::to_string(i), i % 4 == 0 ? prefix + "again" : prefix});
        }
    }
    EXPECT_EQ(sorted(on_disk()), sorted(expected));
    EXPECT_EQ(read_file(pool()).size(), expected.size() * kvptest::kRecord);
}

TEST_F(PoolFileTest, NoOperationLeavesAnyOtherFileBehind) {
    write_pool({{"a", "1"}, {"b", "2"}, {"a", "3"}});
    const ino_t ino = inode();
    auto p = open_pool();
    p->set("c", "x");
    p->set("a", "y");
    (void)p->rename("c", "d");
    (void)p->remove("b");
    (void)p->create_if_absent("e");
    (void)p->compact();
    EXPECT_EQ(kvptest::dir_entries(dir()), std::vector<std::string>{".kvp_pool_1"});
    EXPECT_EQ(inode(), ino);
    EXPECT_EQ(sorted(on_disk()), sorted({{"a", "y"}, {"d", "x"}, {"e", ""}}));
}

}  // namespace
