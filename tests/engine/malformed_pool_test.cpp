// The tolerant snapshot: a partial tail is ignored on reading and cut off (with a warning)
// by the next change; empty keys stay where they are and are not listed; garbage after a
// field's NUL never shows; unterminated fields are the whole field.

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "pool_file.hpp"
#include "test_support.hpp"

namespace {

using kvptest::decode_records;
using kvptest::encode_record;
using kvptest::encode_records;
using kvptest::kRecord;
using kvptest::read_file;
using kvptest::Rec;
using kvptest::write_file;
using Records = std::vector<Rec>;

class MalformedPoolTest : public kvptest::PoolDirTest {
  protected:
    std::unique_ptr<kvp::PoolFile> open_pool() {
        kvp::PoolOptions options;
        options.lock_timeout = std::chrono::milliseconds(2000);
        return std::make_unique<kvp::PoolFile>(pool(), options);
    }
    static std::size_t warnings() {
        const auto log = kvptest::captured_log();
        return static_cast<std::size_t>(std::count_if(log.begin(), log.end(), [](const auto& l) {
            return l.level == kvp::LogLevel::warning;
        }));
    }
};

// A tail that looks like the start of a record, so that a reader which rounds up or
// decodes the tail would show "ghost".
std::string ghost_tail(std::size_t size) {
    std::string tail = encode_record("ghost", "boo").substr(0, size);
    return tail;
}

TEST_F(MalformedPoolTest, PartialTailIsIgnoredAndReadingLeavesItAlone) {
    for (const std::size_t tail_size : {std::size_t{1}, std::size_t{7}, std::size_t{511},
                                        std::size_t{512}, std::size_t{600}, kRecord - 1}) {
        SCOPED_TRACE(tail_size);
        const std::string bytes = encode_records({{"a", "1"}, {"b", "2"}}) + ghost_tail(tail_size);
        write_file(pool(), bytes);
        auto p = open_pool();
        EXPECT_EQ(p->list(), (std::vector<std::string>{"a", "b"}));
        EXPECT_EQ(p->get("ghost"), std::nullopt);
        const auto s = p->snapshot();
        EXPECT_TRUE(s->partial_tail());
        EXPECT_EQ(s->file_size(), bytes.size());
        EXPECT_EQ(s->records().size(), 2u);
        EXPECT_EQ(read_file(pool()), bytes) << "reading must not change the file";
    }
}

TEST_F(MalformedPoolTest, NextChangeCutsThePartialTailWithAWarning) {
    const std::string whole = encode_records({{"a", "1"}, {"b", "2"}});
    write_file(pool(), whole + ghost_tail(1000));
    const ino_t ino = kvptest::stat_of(pool()).st_ino;
    auto p = open_pool();
    (void)p->list();
    EXPECT_EQ(warnings(), 0u) << "reading alone must not warn about cutting";
    kvptest::clear_captured_log();
    p->set("c", "3");
    EXPECT_EQ(read_file(pool()), whole + encode_record("c", "3"));
    EXPECT_EQ(kvptest::stat_of(pool()).st_ino, ino);
    EXPECT_GE(warnings(), 1u) << "cutting a partial tail must log a warning";
    EXPECT_FALSE(p->snapshot()->partial_tail());
    EXPECT_EQ(p->list(), (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(MalformedPoolTest, ReplacingAKeyAlsoCutsTheTail) {
    write_file(pool(), encode_records({{"a", "1"}, {"b", "2"}}) + ghost_tail(100));
    auto p = open_pool();
    p->set("a", "x");
    EXPECT_EQ(read_file(pool()), encode_records({{"a", "x"}, {"b", "2"}}));
    EXPECT_GE(warnings(), 1u);
}

TEST_F(MalformedPoolTest, RemoveWithAPartialTailMovesTheLastWholeRecord) {
    write_file(pool(), encode_records({{"a", "1"}, {"b", "2"}, {"c", "3"}}) + ghost_tail(2000));
    auto p = open_pool();
    EXPECT_TRUE(p->remove("a"));
    EXPECT_EQ(read_file(pool()), encode_records({{"c", "3"}, {"b", "2"}}));
    EXPECT_GE(warnings(), 1u);
}

TEST_F(MalformedPoolTest, ARefusedOrEmptyOperationLeavesTheTail) {
    const std::string bytes = encode_records({{"a", "1"}}) + ghost_tail(300);
    write_file(pool(), bytes);
    auto p = open_pool();
    EXPECT_FALSE(p->remove("absent"));
    EXPECT_FALSE(p->rename("absent", "x"));
    EXPECT_NE(kvptest::errno_of([&] { p->set(std::string(600, 'k'), "v"); }), 0);
    EXPECT_EQ(read_file(pool()), bytes);
}

TEST_F(MalformedPoolTest, EmptyKeysAreNotListedAndStayWhereTheyAre) {
    const std::string e1 = encode_record("", "hidden value", 'q');
    const std::string e2 = encode_record("", "");
    write_file(pool(), encode_record("a", "1") + e1 + encode_record("b", "2") + e2 +
                           encode_record("c", "3"));
    auto p = open_pool();
    EXPECT_EQ(p->list(), (std::vector<std::string>{"a", "b", "c"}));
    const auto s = p->snapshot();
    ASSERT_EQ(s->records().size(), 5u);
    EXPECT_EQ(s->records()[1].record.key, "");
    EXPECT_EQ(s->records()[1].record.value, "hidden value");
    EXPECT_EQ(s->listing(), (std::vector<std::size_t>{0, 2, 4}));

    p->set("a", "changed");
    p->set("d", "new");
    p->set("b", "changed too");
    const std::string after = read_file(pool());
    ASSERT_EQ(after.size(), 6 * kRecord);
    EXPECT_EQ(after.substr(1 * kRecord, kRecord), e1) << "an empty-key record must stay untouched";
    EXPECT_EQ(after.substr(3 * kRecord, kRecord), e2);
    EXPECT_EQ(p->list(), (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST_F(MalformedPoolTest, GarbageAfterTheNulNeverShows) {
    write_file(pool(), encode_record("key1", "value1", 'G') + encode_record("key2", "", '\x01') +
                           encode_record("k", std::string(2000, 'v'), '\xff'));
    auto p = open_pool();
    EXPECT_EQ(p->list(), (std::vector<std::string>{"key1", "key2", "k"}));
    EXPECT_EQ(p->get("key1"), "value1");
    EXPECT_EQ(p->get("key2"), "");
    EXPECT_EQ(p->get("k"), std::string(2000, 'v'));
    for (const auto& r : p->snapshot()->records()) {
        EXPECT_EQ(r.record.key.find('G'), std::string::npos);
        EXPECT_EQ(r.record.value.find('G'), std::string::npos);
    }
}

TEST_F(MalformedPoolTest, UnterminatedFieldsAreTheWholeField) {
    const std::string key(512, 'K');
    const std::string value(2048, 'V');
    write_file(pool(), key + value + encode_record("b", "2"));
    auto p = open_pool();
    const auto s = p->snapshot();
    ASSERT_EQ(s->records().size(), 2u);
    EXPECT_EQ(s->records()[0].record.key, key);
    EXPECT_EQ(s->records()[0].record.value, value);
    ASSERT_NE(s->find(key), nullptr);
    EXPECT_EQ(s->find(key)->record.value, value);
    EXPECT_EQ(p->list(), (std::vector<std::string>{key, "b"}));
    // Changing another key does not rewrite the unterminated record.
    p->set("b", "3");
    EXPECT_EQ(read_file(pool()).substr(0, kRecord), key + value);
}

TEST_F(MalformedPoolTest, EmptyFileIsAnExistingEmptyPool) {
    write_file(pool(), "");
    auto p = open_pool();
    EXPECT_TRUE(p->snapshot()->exists());
    EXPECT_TRUE(p->list().empty());
    p->set("a", "1");
    EXPECT_EQ(read_file(pool()), encode_record("a", "1"));
}

TEST_F(MalformedPoolTest, OnlyAPartialRecord) {
    write_file(pool(), ghost_tail(2559));
    auto p = open_pool();
    EXPECT_TRUE(p->list().empty());
    EXPECT_TRUE(p->snapshot()->records().empty());
    p->set("a", "1");
    EXPECT_EQ(read_file(pool()), encode_record("a", "1"));
    EXPECT_EQ(decode_records(read_file(pool())), (Records{{"a", "1"}}));
}

}  // namespace
