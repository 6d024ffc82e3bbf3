#include "record_format.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace kvp {

std::string decode_field(std::span<const char> field) {
    const void* nul = std::memchr(field.data(), '\0', field.size());
    const std::size_t length =
        nul != nullptr ? static_cast<std::size_t>(static_cast<const char*>(nul) - field.data())
                       : field.size();
    return {field.data(), length};
}

Record decode_record(std::span<const char, kRecordSize> bytes) {
    return {decode_field(bytes.first(kKeyFieldSize)),
            decode_field(bytes.subspan(kKeyFieldSize, kValueFieldSize))};
}

RecordBytes encode_record(std::string_view key, std::string_view value) {
    // Strictly shorter than the field, so the record stays NUL-terminated.
    if (key.size() >= kKeyFieldSize || value.size() >= kValueFieldSize) {
        throw std::length_error("kvp record field too long");
    }
    RecordBytes bytes{};
    std::copy(key.begin(), key.end(), bytes.begin());
    std::copy(value.begin(), value.end(), bytes.begin() + kKeyFieldSize);
    return bytes;
}

namespace {

bool field_holds(std::span<const char> field, std::string_view text) {
    const void* nul = std::memchr(field.data(), '\0', field.size());
    const std::size_t length =
        nul != nullptr ? static_cast<std::size_t>(static_cast<const char*>(nul) - field.data())
                       : field.size();
    return length == text.size() && std::memcmp(field.data(), text.data(), length) == 0;
}

}  // namespace

bool record_holds(std::span<const char, kRecordSize> bytes, const Record& record) {
    return field_holds(bytes.first(kKeyFieldSize), record.key) &&
           field_holds(bytes.subspan(kKeyFieldSize, kValueFieldSize), record.value);
}

bool field_unterminated(std::span<const char> field) {
    return std::memchr(field.data(), '\0', field.size()) == nullptr;
}

}  // namespace kvp
