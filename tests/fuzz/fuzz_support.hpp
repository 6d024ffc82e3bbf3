#pragma once
// Shared by the fuzz targets: a check that aborts with a message (libFuzzer then saves the
// input), and references written independently of the engine — the tests' pool codec, a UTF-8
// validator after the Unicode standard's table of well-formed byte sequences, the UTF-16
// length and the limits of docs/behaviour.md §2 — to hold the engine's answers against.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "pool_codec.hpp"

namespace kvpfuzz {

[[noreturn]] void fail(const char* file, int line, const char* condition, const std::string& note);

#define FUZZ_CHECK(condition, note)                                  \
    do {                                                             \
        if (!(condition)) {                                          \
            ::kvpfuzz::fail(__FILE__, __LINE__, #condition, (note)); \
        }                                                            \
    } while (false)

// The tests' own pool codec (tests/common/pool_codec.hpp), not the engine's.
using kvptest::decode_records;
using kvptest::encode_record;
using kvptest::encode_record_cut;
using kvptest::field_string;
using kvptest::kKeyField;
using kvptest::kRecord;
using kvptest::kValueField;
using kvptest::Rec;
using kvptest::zero_filled;

// Key -> value of the first record of each non-empty key.
std::map<std::string, std::string> first_values(const std::vector<Rec>& records);

bool ref_valid_utf8(std::string_view text);
// UTF-16 code units of valid UTF-8 text.
std::size_t ref_utf16_units(std::string_view text);

enum class RefLimits { host, pool };
// What docs/behaviour.md §2/§5 say about a key or a value, independent of the engine. When several
// limits are crossed, any of them is a right answer: each flag says whether one is crossed.
struct Judgement {
    bool ok = true;
    bool empty = false;
    bool nul = false;
    bool too_long = false;
    bool bad_utf8 = false;
};
Judgement judge_key(std::string_view key, RefLimits limits);
Judgement judge_value(std::string_view value, RefLimits limits);

std::string printable(std::string_view text, std::size_t max = 80);

// A fresh directory on tmpfs (/dev/shm) for this process, removed at exit.
const std::string& scratch_dir();
std::string read_whole(const std::string& path, bool* exists = nullptr);
void write_whole(const std::string& path, std::string_view bytes);

}  // namespace kvpfuzz
