#pragma once
// What a key or value may be. The format's limits keep every record NUL-terminated
// (511/2047 bytes, no NUL inside); the host's limits are what the kernel driver hands to
// the host intact (it converts to UTF-16 and cuts keys past 254 units and values past
// 1022, and fails the whole record on invalid UTF-8).

#include <cstddef>
#include <string_view>

#include "utf8.hpp"  // valid_utf8, utf16_units: the host limits count in UTF-16 units

namespace kvp {

enum class Limits { host, pool };

inline constexpr std::size_t kMaxKeyBytes = 511;
inline constexpr std::size_t kMaxValueBytes = 2047;
inline constexpr std::size_t kMaxHostKeyUtf16 = 254;
inline constexpr std::size_t kMaxHostValueUtf16 = 1022;

enum class Violation {
    none,
    empty_key,       // a record with an empty key is not a key at all
    contains_nul,    // the format cannot store a NUL byte
    too_long_bytes,  // over the format's byte limit
    too_long_utf16,  // over the host's UTF-16 unit limit
    invalid_utf8,    // the host would reject the whole record
};

// One validator for both fields; says which limit was crossed (the first found).
[[nodiscard]] Violation check_key(std::string_view key, Limits limits);
[[nodiscard]] Violation check_value(std::string_view value, Limits limits);
// Only the length limits of a value (no UTF-8 check): what a write() must refuse at once,
// while UTF-8 is judged when the whole value is committed.
[[nodiscard]] Violation check_value_length(std::string_view value, Limits limits);

// The errno a violation maps to for a key (ENAMETOOLONG / EINVAL) or a value (EFBIG / EINVAL).
[[nodiscard]] int key_errno(Violation v);
[[nodiscard]] int value_errno(Violation v);
[[nodiscard]] const char* describe(Violation v);

}  // namespace kvp
