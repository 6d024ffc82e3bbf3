// Key <-> file name (docs/behaviour.md §6) as a pure pair of functions: exactly three escapes,
// canonical decoding only, so every key round-trips and every other name is refused.

#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <set>
#include <string>

#include "key_name.hpp"

namespace {

using kvp::key_to_name;
using kvp::name_to_key;

TEST(KeyName, PlainKeysStandAsTheyAre) {
    for (const std::string key : {"Status", "a", "key with spaces", "...", ".hidden", "a."}) {
        EXPECT_EQ(key_to_name(key), key);
        EXPECT_EQ(name_to_key(key), key);
    }
    const std::string bytes = "\x01\x7f\xc3\xa9\xff\t\n|:*?\\ ";
    EXPECT_EQ(key_to_name(bytes), bytes);
    EXPECT_EQ(name_to_key(bytes), bytes);
}

TEST(KeyName, TheThreeEscapes) {
    EXPECT_EQ(key_to_name("%"), "%25");
    EXPECT_EQ(key_to_name("/"), "%2F");
    EXPECT_EQ(key_to_name("."), "%2E");
    EXPECT_EQ(key_to_name(".."), "%2E%2E");
    EXPECT_EQ(key_to_name("a/b%c"), "a%2Fb%25c");
    EXPECT_EQ(key_to_name("100%"), "100%25");
    EXPECT_EQ(key_to_name("%2F"), "%252F");
    // Dots are only escaped when they are the whole key.
    EXPECT_EQ(key_to_name("..."), "...");
    EXPECT_EQ(key_to_name("./"), ".%2F");
    EXPECT_EQ(key_to_name("../x"), "..%2Fx");
    EXPECT_EQ(key_to_name("CLOUD_INIT|1700000000|start|init-network/check-cache|1f2e"),
              "CLOUD_INIT|1700000000|start|init-network%2Fcheck-cache|1f2e");
}

TEST(KeyName, CanonicalNamesDecode) {
    EXPECT_EQ(name_to_key("%25"), "%");
    EXPECT_EQ(name_to_key("%2F"), "/");
    EXPECT_EQ(name_to_key("%2E"), ".");
    EXPECT_EQ(name_to_key("%2E%2E"), "..");
    EXPECT_EQ(name_to_key("a%2Fb%25c"), "a/b%c");
    EXPECT_EQ(name_to_key("%252F"), "%2F");
    EXPECT_EQ(name_to_key("%2F..%2F"), "/../");
}

TEST(KeyName, NonCanonicalNamesAreRefused) {
    for (const std::string name : {
             "%",          // bare percent
             "a%",         // percent at the end
             "%2",         // truncated escape
             "%2f",        // lower-case hex is not the canonical form
             "%2e",        //
             "%41",        // an escape of a byte that stands as itself
             "%%",         //
             "%zz",        //
             "%2E.",       // ".." spelled half escaped
             ".%2E",       //
             "%2Ex",       // %2E only as the whole name
             "x%2E",       //
             "%2E%2E%2E",  // "..." stands as itself
             ".",          // the key "." is spelled %2E
             "..",         // the key ".." is spelled %2E%2E
             "a/b",        // a name never holds '/'
             "",           // no key is empty
         }) {
        SCOPED_TRACE(testing::PrintToString(name));
        EXPECT_EQ(name_to_key(name), std::nullopt);
    }
}

std::string random_bytes(std::mt19937_64& rng, std::size_t max_len, bool allow_slash) {
    // Biased towards the bytes the escaping is about, plus the whole 1..255 range.
    static const std::string interesting = "%/.2EeFf5%%..//";
    std::uniform_int_distribution<std::size_t> len_dist(1, max_len);
    std::uniform_int_distribution<int> pick(0, 3);
    std::uniform_int_distribution<std::size_t> which(0, interesting.size() - 1);
    std::uniform_int_distribution<int> byte(1, 255);
    std::string s;
    const std::size_t len = len_dist(rng);
    while (s.size() < len) {
        char c = pick(rng) == 0 ? static_cast<char>(byte(rng)) : interesting[which(rng)];
        if (c == '/' && !allow_slash) {
            c = '%';
        }
        s.push_back(c);
    }
    return s;
}

TEST(KeyName, PropertyEveryKeyRoundTrips) {
    std::mt19937_64 rng(20261127);
    for (int i = 0; i < 100000; ++i) {
        const std::string key = random_bytes(rng, i % 7 == 0 ? 600 : 12, true);
        const std::string name = key_to_name(key);
        ASSERT_EQ(name.find('/'), std::string::npos) << testing::PrintToString(key);
        ASSERT_EQ(name.find('\0'), std::string::npos) << testing::PrintToString(key);
        ASSERT_NE(name, ".");
        ASSERT_NE(name, "..");
        ASSERT_FALSE(name.empty());
        const auto back = name_to_key(name);
        ASSERT_TRUE(back.has_value()) << testing::PrintToString(key);
        ASSERT_EQ(*back, key);
    }
}

TEST(KeyName, PropertyEveryNonCanonicalNameIsRefused) {
    // A name is canonical exactly when it is key_to_name of some key: decoding it must give
    // that key back, and every name that decodes must be what its key encodes to.
    std::mt19937_64 rng(5);
    int accepted = 0;
    int refused = 0;
    for (int i = 0; i < 100000; ++i) {
        const std::string name = random_bytes(rng, 10, i % 3 == 0);
        const auto key = name_to_key(name);
        if (key.has_value()) {
            ++accepted;
            ASSERT_FALSE(key->empty()) << testing::PrintToString(name);
            ASSERT_EQ(key_to_name(*key), name) << testing::PrintToString(name);
        } else {
            ++refused;
        }
    }
    // The generator must exercise both sides or the property says nothing.
    EXPECT_GT(accepted, 1000);
    EXPECT_GT(refused, 1000);
}

TEST(KeyName, EncodingIsInjective) {
    // Two different keys never share a name (a consequence of the round trip, checked on
    // the keys most likely to collide).
    const std::vector<std::string> keys = {"%",      "%25", "%2F", "/",  ".",     "..",  "%2E",
                                           "%2E%2E", "./.", "%%",  "%2", "%2525", ". .", "../"};
    std::set<std::string> names;
    for (const auto& k : keys) {
        EXPECT_TRUE(names.insert(key_to_name(k)).second) << k;
    }
}

}  // namespace
