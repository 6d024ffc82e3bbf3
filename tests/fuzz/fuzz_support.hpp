#pragma once
// Shared by the fuzz targets: a check that aborts with a message (libFuzzer then saves the
// input), and references written independently of the engine — a pool decoder, a UTF-8
// validator after the Unicode standard's table of well-formed byte sequences, the UTF-16
// length and the limits of docs/behaviour.md §2 — to hold the engine's answers against.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kvpfuzz {

[[noreturn]] void fail(const char* file, int line, const char* condition, const std::string& note);

#define FUZZ_CHECK(condition, note)                                  \
    do {                                                             \
        if (!(condition)) {                                          \
            ::kvpfuzz::fail(__FILE__, __LINE__, #condition, (note)); \
        }                                                            \
    } while (false)

inline constexpr std::size_t kKeyField = 512;
inline constexpr std::size_t kValueField = 2048;
inline constexpr std::size_t kRecord = kKeyField + kValueField;

struct Rec {
    std::string key;
    std::string value;
    bool operator==(const Rec&) const = default;
    auto operator<=>(const Rec&) const = default;
};

// The string in a field: up to its first NUL, or the whole field.
std::string field_string(std::string_view field);
// Every whole record of `bytes`, in file order (a partial tail is ignored).
std::vector<Rec> decode_pool(std::string_view bytes);
// Key -> value of the first record of each non-empty key.
std::map<std::string, std::string> first_values(const std::vector<Rec>& records);
// A zero-filled record (the strings must fit with their NUL).
std::string encode(std::string_view key, std::string_view value);
// True when every byte after the first NUL of each field of each whole record is zero.
bool zero_filled(std::string_view record_bytes);

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
