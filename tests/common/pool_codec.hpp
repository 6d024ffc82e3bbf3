#pragma once
// The tests' own pool-file codec, the one every C++ test and bench uses to write pool bytes
// and to read them back. It is written from the format description (docs/behaviour.md §2)
// and kept apart from the engine's (src/pool/record_format) on purpose: it is the oracle the
// engine is checked against, so no test may check the engine with the engine's own codec.
//
// A pool file is an array of records of kRecord bytes: a key field of kKeyField bytes and a
// value field of kValueField bytes, each holding a string up to its first NUL (or the whole
// field when it has none). A partial record at the end is not a record.

#include <cstddef>
#include <cstring>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace kvptest {

inline constexpr std::size_t kKeyField = 512;
inline constexpr std::size_t kValueField = 2048;
inline constexpr std::size_t kRecord = kKeyField + kValueField;

struct Rec {
    std::string key;
    std::string value;
    bool operator==(const Rec&) const = default;
    auto operator<=>(const Rec&) const = default;
};

// How a failing check prints a record: {"key", "value"}, bytes outside printable ASCII as \xNN.
inline std::ostream& operator<<(std::ostream& os, const Rec& r) {
    const auto quoted = [&os](std::string_view s) {
        static constexpr char kHex[] = "0123456789abcdef";
        os << '"';
        for (const char ch : s) {
            const auto c = static_cast<unsigned char>(ch);
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
                os << ch;
            } else {
                os << "\\x" << kHex[c >> 4] << kHex[c & 0xf];
            }
        }
        os << '"';
    };
    os << '{';
    quoted(r.key);
    os << ", ";
    quoted(r.value);
    return os << '}';
}

// What a field holds after its string's NUL: zeros (what kvpfs and cloud-init write), one
// repeated byte, or the letters 'A'..'Z' by offset in the field (both as hv_kvp_daemon leaves
// the rest of a longer earlier string).
class Fill {
  public:
    Fill(char byte = '\0') : byte_(byte) {}  // a byte is a fill: encode_record(k, v, 'G')
    static Fill letters() {
        Fill f;
        f.letters_ = true;
        return f;
    }
    [[nodiscard]] char at(std::size_t offset) const {
        return letters_ ? static_cast<char>('A' + offset % 26) : byte_;
    }

  private:
    char byte_ = '\0';
    bool letters_ = false;
};

// A field of exactly `size` bytes: `text` (cut to `size`), then a NUL if it fits, then the
// fill. A text of `size` bytes or more leaves the field unterminated.
inline std::string encode_field(std::string_view text, std::size_t size, Fill fill = {}) {
    std::string field(size, '\0');
    const std::size_t n = text.size() < size ? text.size() : size;
    std::memcpy(field.data(), text.data(), n);
    for (std::size_t i = n + 1; i < size; ++i) {
        field[i] = fill.at(i);
    }
    return field;
}

// One record. Each string must leave room for its NUL: std::length_error otherwise.
inline std::string encode_record(std::string_view key, std::string_view value, Fill fill = {}) {
    if (key.size() >= kKeyField || value.size() >= kValueField) {
        throw std::length_error("a string too long for its field in the tests' pool codec");
    }
    return encode_field(key, kKeyField, fill) + encode_field(value, kValueField, fill);
}

// One record as any writer may leave it: each string cut to its field, unterminated when it
// fills the field.
inline std::string encode_record_cut(std::string_view key, std::string_view value, Fill fill = {}) {
    return encode_field(key, kKeyField, fill) + encode_field(value, kValueField, fill);
}

// The records one after another, as a pool file holds them.
inline std::string encode_records(const std::vector<Rec>& recs, Fill fill = {}) {
    std::string bytes;
    bytes.reserve(recs.size() * kRecord);
    for (const Rec& r : recs) {
        bytes += encode_record(r.key, r.value, fill);
    }
    return bytes;
}

// The string in a field: up to its first NUL, or the whole field.
inline std::string field_string(std::string_view field) {
    return std::string(field.substr(0, field.find('\0')));
}

// Every whole record of `bytes`, in file order (a partial tail is ignored).
inline std::vector<Rec> decode_records(std::string_view bytes) {
    std::vector<Rec> out;
    for (std::size_t at = 0; at + kRecord <= bytes.size(); at += kRecord) {
        out.push_back({field_string(bytes.substr(at, kKeyField)),
                       field_string(bytes.substr(at + kKeyField, kValueField))});
    }
    return out;
}

// True when both fields of every whole record hold a NUL and nothing but zeros after it.
inline bool zero_filled(std::string_view bytes) {
    const auto field_ok = [](std::string_view field) {
        const std::size_t nul = field.find('\0');
        return nul != std::string_view::npos &&
               field.find_first_not_of('\0', nul) == std::string_view::npos;
    };
    for (std::size_t at = 0; at + kRecord <= bytes.size(); at += kRecord) {
        if (!field_ok(bytes.substr(at, kKeyField)) ||
            !field_ok(bytes.substr(at + kKeyField, kValueField))) {
            return false;
        }
    }
    return true;
}

}  // namespace kvptest
