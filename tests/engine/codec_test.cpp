// The record codec: 2560-byte records, first-NUL semantics, zero-filled encoding.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <span>
#include <stdexcept>
#include <string>

#include "record_format.hpp"
#include "record_reader.hpp"
#include "test_support.hpp"
#include "unique_fd.hpp"

namespace {

using kvptest::encode_field;
using kvptest::encode_record;

kvp::Record decode(const std::string& bytes) {
    EXPECT_EQ(bytes.size(), kvp::kRecordSize);
    return kvp::decode_record(std::span<const char, kvp::kRecordSize>(bytes.data(), bytes.size()));
}

TEST(Codec, SizesMatchLinuxHypervHeader) {
    EXPECT_EQ(kvp::kKeyFieldSize, 512u);
    EXPECT_EQ(kvp::kValueFieldSize, 2048u);
    EXPECT_EQ(kvp::kRecordSize, 2560u);
    EXPECT_EQ(sizeof(kvp::RecordBytes), 2560u);
}

TEST(Codec, EncodeIsZeroFilledAndMatchesIndependentLayout) {
    const auto bytes = kvp::encode_record("Status", "Ready");
    const std::string got(bytes.data(), bytes.size());
    EXPECT_EQ(got, encode_record("Status", "Ready"));
}

TEST(Codec, EncodeEmptyValueAndMaximumLengths) {
    const std::string key(511, 'k');
    const std::string value(2047, 'v');
    const auto bytes = kvp::encode_record(key, value);
    const std::string got(bytes.data(), bytes.size());
    EXPECT_EQ(got, encode_record(key, value));
    EXPECT_EQ(got[511], '\0');
    EXPECT_EQ(got[2559], '\0');

    const auto empty = kvp::encode_record("k", "");
    EXPECT_EQ(std::string(empty.data(), empty.size()), encode_record("k", ""));
}

TEST(Codec, EncodeRefusesStringsThatLeaveNoRoomForTheTerminator) {
    EXPECT_THROW((void)kvp::encode_record(std::string(512, 'k'), "v"), std::length_error);
    EXPECT_THROW((void)kvp::encode_record("k", std::string(2048, 'v')), std::length_error);
}

TEST(Codec, DecodeRoundTripsEncode) {
    for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"a", ""},
             {"key with spaces", "value with\nnewline"},
             {"CLOUD_INIT|1700000000|start|init-network/check-cache|abc", "{\"json\": 1}"},
             {"\xc3\xa9t\xc3\xa9", "\xe2\x82\xac \xf0\x9f\x98\x80"},
             {std::string(511, 'x'), std::string(2047, 'y')}}) {
        const auto bytes = kvp::encode_record(k, v);
        const std::string s(bytes.data(), bytes.size());
        EXPECT_EQ(decode(s), (kvp::Record{k, v}));
    }
}

TEST(Codec, DecodeStopsAtFirstNulAndHidesGarbage) {
    const auto rec = decode(encode_record("abc", "value", 'G'));
    EXPECT_EQ(rec.key, "abc");
    EXPECT_EQ(rec.value, "value");

    // A second string after the NUL (what a shorter rewrite leaves) never shows either.
    std::string key_field = encode_field("short", 512, '\0');
    const std::string old_tail = "er-and-longer-old-key";
    key_field.replace(6, old_tail.size(), old_tail);
    const auto rec2 = decode(key_field + encode_field("v", 2048, '\x7f'));
    EXPECT_EQ(rec2.key, "short");
    EXPECT_EQ(rec2.value, "v");
}

TEST(Codec, EmptyKeyFieldDecodesToEmptyKeyWhateverFollows) {
    const auto rec = decode(encode_record("", "value", 'Z'));
    EXPECT_EQ(rec.key, "");
    EXPECT_EQ(rec.value, "value");
}

TEST(Codec, UnterminatedFieldIsTheWholeField) {
    const std::string key_field(512, 'K');
    const std::string value_field(2048, 'V');
    const auto rec = decode(key_field + value_field);
    EXPECT_EQ(rec.key, key_field);
    EXPECT_EQ(rec.value, value_field);
    EXPECT_TRUE(kvp::field_unterminated(std::span<const char>(key_field)));
    EXPECT_TRUE(kvp::field_unterminated(std::span<const char>(value_field)));
}

TEST(Codec, DecodeFieldAndUnterminated) {
    const std::string f1 = encode_field("hello", 16, 'x');
    EXPECT_EQ(kvp::decode_field(std::span<const char>(f1)), "hello");
    EXPECT_FALSE(kvp::field_unterminated(std::span<const char>(f1)));

    const std::string f2(16, 'y');
    EXPECT_EQ(kvp::decode_field(std::span<const char>(f2)), f2);

    const std::string f3 = std::string("\0abc", 4);
    EXPECT_EQ(kvp::decode_field(std::span<const char>(f3)), "");
    EXPECT_FALSE(kvp::field_unterminated(std::span<const char>(f3)));

    // A NUL in the very last byte terminates the field.
    std::string f4(16, 'z');
    f4[15] = '\0';
    EXPECT_EQ(kvp::decode_field(std::span<const char>(f4)), std::string(15, 'z'));
    EXPECT_FALSE(kvp::field_unterminated(std::span<const char>(f4)));
}

TEST(Codec, HighBytesSurviveDecoding) {
    std::string key;
    for (int b = 1; b < 256; ++b) {
        key.push_back(static_cast<char>(b));
    }
    const auto bytes = kvp::encode_record(key, key);
    const auto rec = decode(std::string(bytes.data(), bytes.size()));
    EXPECT_EQ(rec.key, key);
    EXPECT_EQ(rec.value, key);
}

}  // namespace

namespace {

// A pool file's bytes in an anonymous file: what read_records reads through a descriptor.
kvp::UniqueFd memory_file(const std::string& bytes) {
    kvp::UniqueFd fd(::memfd_create("pool", MFD_CLOEXEC));
    if (!fd ||
        ::write(fd.get(), bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
        throw std::runtime_error("memfd");
    }
    return fd;
}

TEST(RecordReader, ReadsEveryRecordAcrossChunksWithItsOffsetAndKeepsThePartialTail) {
    std::string bytes;
    constexpr std::size_t kRecords = 150;  // more than two of the reader's chunks
    for (std::size_t i = 0; i < kRecords; ++i) {
        bytes += encode_record("k" + std::to_string(i), "v" + std::to_string(i));
    }
    const std::string partial = encode_record("tail", "cut").substr(0, 700);
    bytes += partial;
    const kvp::UniqueFd fd = memory_file(bytes);
    std::size_t seen = 0;
    const kvp::RecordTail tail = kvp::read_records(
        fd.get(), "memfd", [&](std::span<const char, kvp::kRecordSize> record, std::uint64_t at) {
            EXPECT_EQ(at, seen * kvp::kRecordSize);
            EXPECT_EQ(kvp::decode_record(record),
                      (kvp::Record{"k" + std::to_string(seen), "v" + std::to_string(seen)}));
            ++seen;
        });
    EXPECT_EQ(seen, kRecords);
    EXPECT_EQ(tail.offset, kRecords * kvp::kRecordSize);
    EXPECT_EQ(tail.bytes, partial);
    EXPECT_EQ(tail.end(), bytes.size());
}

TEST(RecordReader, EmptyFileAndExactMultipleHaveNoTail) {
    const kvp::UniqueFd empty = memory_file("");
    std::size_t seen = 0;
    const auto count = [&](std::span<const char, kvp::kRecordSize>, std::uint64_t) { ++seen; };
    EXPECT_EQ(kvp::read_records(empty.get(), "empty", count).end(), 0u);
    EXPECT_EQ(seen, 0u);
    const std::string two_chunks = kvptest::repeat(encode_record("a", "b"), 128);
    const kvp::UniqueFd whole = memory_file(two_chunks);
    const kvp::RecordTail tail = kvp::read_records(whole.get(), "whole", count);
    EXPECT_EQ(seen, 128u);
    EXPECT_TRUE(tail.bytes.empty());
    EXPECT_EQ(tail.end(), two_chunks.size());
}

TEST(RecordReader, AReadErrorNamesTheFile) {
    const kvp::UniqueFd dir(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dir);
    try {
        (void)kvp::read_records(dir.get(), "the pool",
                                [](std::span<const char, kvp::kRecordSize>, std::uint64_t) {});
        FAIL() << "a directory was read";
    } catch (const kvp::Error& e) {
        EXPECT_EQ(e.errno_value(), EISDIR);
        EXPECT_NE(std::string(e.what()).find("read the pool"), std::string::npos) << e.what();
    }
}

}  // namespace
