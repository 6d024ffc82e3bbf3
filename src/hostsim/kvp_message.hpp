#pragma once
// struct hv_kvp_msg of <linux/hyperv.h> as bytes: the one message layout the host, the
// driver and hv_kvp_daemon exchange. Fields are read and written by offset so that the
// packed, unioned layout of the header is used exactly as the daemon was built with it.

#include <linux/hyperv.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "driver_text.hpp"

namespace hostsim {

// The size the daemon's reads and writes must have (7,432 bytes with the 6.1 headers).
inline constexpr std::size_t kMessageSize = sizeof(struct hv_kvp_msg);

// The driver's version string, answered to the daemon's registration.
inline constexpr std::string_view kDriverVersion = "3.1";

namespace offset {
inline constexpr std::size_t kOperation = offsetof(struct hv_kvp_msg, kvp_hdr.operation);
inline constexpr std::size_t kPool = offsetof(struct hv_kvp_msg, kvp_hdr.pool);
inline constexpr std::size_t kError = offsetof(struct hv_kvp_msg, error);
inline constexpr std::size_t kSetValueType =
    offsetof(struct hv_kvp_msg, body.kvp_set.data.value_type);
inline constexpr std::size_t kSetKeySize = offsetof(struct hv_kvp_msg, body.kvp_set.data.key_size);
inline constexpr std::size_t kSetValueSize =
    offsetof(struct hv_kvp_msg, body.kvp_set.data.value_size);
inline constexpr std::size_t kSetKey = offsetof(struct hv_kvp_msg, body.kvp_set.data.key);
inline constexpr std::size_t kSetValue = offsetof(struct hv_kvp_msg, body.kvp_set.data.value);
inline constexpr std::size_t kDeleteKeySize = offsetof(struct hv_kvp_msg, body.kvp_delete.key_size);
inline constexpr std::size_t kDeleteKey = offsetof(struct hv_kvp_msg, body.kvp_delete.key);
inline constexpr std::size_t kEnumIndex = offsetof(struct hv_kvp_msg, body.kvp_enum_data.index);
inline constexpr std::size_t kEnumValueType =
    offsetof(struct hv_kvp_msg, body.kvp_enum_data.data.value_type);
inline constexpr std::size_t kEnumKeySize =
    offsetof(struct hv_kvp_msg, body.kvp_enum_data.data.key_size);
inline constexpr std::size_t kEnumValueSize =
    offsetof(struct hv_kvp_msg, body.kvp_enum_data.data.value_size);
inline constexpr std::size_t kEnumKey = offsetof(struct hv_kvp_msg, body.kvp_enum_data.data.key);
inline constexpr std::size_t kEnumValue =
    offsetof(struct hv_kvp_msg, body.kvp_enum_data.data.value);
inline constexpr std::size_t kRegisterVersion =
    offsetof(struct hv_kvp_msg, body.kvp_register.version);
}  // namespace offset

inline constexpr std::size_t kKeyField = HV_KVP_EXCHANGE_MAX_KEY_SIZE;
inline constexpr std::size_t kValueField = HV_KVP_EXCHANGE_MAX_VALUE_SIZE;

class KvpMessage {
  public:
    KvpMessage() : bytes_(kMessageSize, 0) {}
    explicit KvpMessage(std::vector<std::uint8_t> bytes) : bytes_(std::move(bytes)) {
        bytes_.resize(std::max(bytes_.size(), kMessageSize), 0);
    }

    [[nodiscard]] const std::vector<std::uint8_t>& bytes() const { return bytes_; }
    [[nodiscard]] std::uint8_t operation() const { return bytes_[offset::kOperation]; }
    [[nodiscard]] std::uint8_t pool() const { return bytes_[offset::kPool]; }
    void set_header(std::uint8_t operation, std::uint8_t pool);

    [[nodiscard]] std::uint32_t u32(std::size_t at) const;
    void set_u32(std::size_t at, std::uint32_t value);

    // A NUL-terminated byte string starting at `at`, read as the kernel's strlen() would
    // (it may run past the field, never past the message).
    [[nodiscard]] std::string c_string(std::size_t at) const;
    void set_bytes(std::size_t at, std::string_view data);

    // UTF-16LE units of a field of `field_bytes` bytes (up to the first 0 unit).
    [[nodiscard]] Utf16 utf16(std::size_t at, std::size_t field_bytes) const;
    void set_utf16(std::size_t at, const Utf16& units);

  private:
    std::vector<std::uint8_t> bytes_;
};

// The host's requests, as a Hyper-V host fills them in (UTF-16LE strings; sizes in bytes
// including the terminating 0 unit).
[[nodiscard]] KvpMessage host_set(std::uint8_t pool, const Utf16& key, const Utf16& value);
[[nodiscard]] KvpMessage host_get(std::uint8_t pool, const Utf16& key);
[[nodiscard]] KvpMessage host_delete(std::uint8_t pool, const Utf16& key);
[[nodiscard]] KvpMessage host_enumerate(std::uint8_t pool, std::uint32_t index);

// The longest strings a host message can carry (the fields hold the terminating 0 unit).
inline constexpr std::size_t kHostKeyUnits = kKeyField / 2 - 1;      // 255
inline constexpr std::size_t kHostValueUnits = kValueField / 2 - 1;  // 1023

[[nodiscard]] std::string status_name(std::uint32_t status);

}  // namespace hostsim
