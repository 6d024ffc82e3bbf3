#pragma once
// The on-disk record of a KVP pool file (<linux/hyperv.h>): key[512] then value[2048],
// no header. A field's string is its bytes up to the first NUL (or the whole field):
// hv_kvp_daemon leaves garbage after the NUL, and that garbage never leaves this codec.

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace kvp {

inline constexpr std::size_t kKeyFieldSize = 512;     // HV_KVP_EXCHANGE_MAX_KEY_SIZE
inline constexpr std::size_t kValueFieldSize = 2048;  // HV_KVP_EXCHANGE_MAX_VALUE_SIZE
inline constexpr std::size_t kRecordSize = kKeyFieldSize + kValueFieldSize;

struct Record {
    std::string key;
    std::string value;
    bool operator==(const Record&) const = default;
};

using RecordBytes = std::array<char, kRecordSize>;

// The string a field holds: up to the first NUL, or all of it.
[[nodiscard]] std::string decode_field(std::span<const char> field);
// Decodes one whole record (exactly kRecordSize bytes).
[[nodiscard]] Record decode_record(std::span<const char, kRecordSize> bytes);
// Encodes a zero-filled record. The caller has checked the format limits (limits.hpp);
// a string that does not fit is a logic error and throws std::length_error.
[[nodiscard]] RecordBytes encode_record(std::string_view key, std::string_view value);
// Whether `bytes` decode to `record` (no copy: for comparing a file with what it should hold).
[[nodiscard]] bool record_holds(std::span<const char, kRecordSize> bytes, const Record& record);
// True when the field holds no NUL at all (an "unterminated" field).
[[nodiscard]] bool field_unterminated(std::span<const char> field);

}  // namespace kvp
