#include "kvp_message.hpp"

#include <algorithm>
#include <cstring>

namespace hostsim {

void KvpMessage::set_header(std::uint8_t operation, std::uint8_t pool) {
    bytes_[offset::kOperation] = operation;
    bytes_[offset::kPool] = pool;
}

std::uint32_t KvpMessage::u32(std::size_t at) const {
    std::uint32_t v = 0;
    std::memcpy(&v, bytes_.data() + at, sizeof v);  // both sides are little-endian x86/arm
    return v;
}

void KvpMessage::set_u32(std::size_t at, std::uint32_t value) {
    std::memcpy(bytes_.data() + at, &value, sizeof value);
}

std::string KvpMessage::c_string(std::size_t at) const {
    const auto* begin = reinterpret_cast<const char*>(bytes_.data() + at);
    return {begin, ::strnlen(begin, bytes_.size() - at)};
}

void KvpMessage::set_bytes(std::size_t at, std::string_view data) {
    std::memcpy(bytes_.data() + at, data.data(), data.size());
}

Utf16 KvpMessage::utf16(std::size_t at, std::size_t field_bytes) const {
    Utf16 out;
    for (std::size_t i = 0; i + 1 < field_bytes; i += 2) {
        const auto unit = static_cast<std::uint16_t>(bytes_[at + i] | (bytes_[at + i + 1] << 8));
        if (unit == 0) {
            break;
        }
        out.push_back(unit);
    }
    return out;
}

void KvpMessage::set_utf16(std::size_t at, const Utf16& units) {
    for (std::size_t i = 0; i < units.size(); ++i) {
        bytes_[at + 2 * i] = static_cast<std::uint8_t>(units[i] & 0xFFU);
        bytes_[at + 2 * i + 1] = static_cast<std::uint8_t>(units[i] >> 8);
    }
}

namespace {

std::uint32_t utf16_size(const Utf16& s) {
    return static_cast<std::uint32_t>(2 * (s.size() + 1));
}

}  // namespace

KvpMessage host_set(std::uint8_t pool, const Utf16& key, const Utf16& value) {
    KvpMessage m;
    m.set_header(KVP_OP_SET, pool);
    m.set_u32(offset::kSetValueType, REG_SZ);
    m.set_u32(offset::kSetKeySize, utf16_size(key));
    m.set_u32(offset::kSetValueSize, utf16_size(value));
    m.set_utf16(offset::kSetKey, key);
    m.set_utf16(offset::kSetValue, value);
    return m;
}

KvpMessage host_get(std::uint8_t pool, const Utf16& key) {
    KvpMessage m;
    m.set_header(KVP_OP_GET, pool);
    m.set_u32(offset::kSetValueType, REG_SZ);
    m.set_u32(offset::kSetKeySize, utf16_size(key));
    m.set_utf16(offset::kSetKey, key);
    return m;
}

KvpMessage host_delete(std::uint8_t pool, const Utf16& key) {
    KvpMessage m;
    m.set_header(KVP_OP_DELETE, pool);
    m.set_u32(offset::kDeleteKeySize, utf16_size(key));
    m.set_utf16(offset::kDeleteKey, key);
    return m;
}

KvpMessage host_enumerate(std::uint8_t pool, std::uint32_t index) {
    KvpMessage m;
    m.set_header(KVP_OP_ENUMERATE, pool);
    m.set_u32(offset::kEnumIndex, index);
    return m;
}

std::string status_name(std::uint32_t status) {
    switch (status) {
        case HV_S_OK:
            return "HV_S_OK";
        case HV_S_CONT:
            return "HV_S_CONT";
        case HV_E_FAIL:
            return "HV_E_FAIL";
        default: {
            char text[16];
            std::snprintf(text, sizeof text, "0x%08X", status);
            return text;
        }
    }
}

}  // namespace hostsim
