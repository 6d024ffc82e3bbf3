#include "driver.hpp"

#include <cstdio>

namespace hostsim {
namespace {

// Units the driver writes back: a field's size in units, less the terminator and one more.
constexpr std::size_t kReplyKeyUnits = kKeyField / 2 - 2;      // 254
constexpr std::size_t kReplyValueUnits = kValueField / 2 - 2;  // 1022

}  // namespace

KvpMessage driver_to_daemon(const KvpMessage& host) {
    KvpMessage out;
    out.set_header(host.operation(), host.pool());
    switch (host.operation()) {
        case KVP_OP_SET: {
            std::string value;
            switch (host.u32(offset::kSetValueType)) {
                case REG_SZ:
                    value = driver_utf16_to_utf8(host.utf16(offset::kSetValue, kValueField),
                                                 host.u32(offset::kSetValueSize), kValueField - 1);
                    break;
                case REG_U32: {
                    // Printed with %d, as the driver does: large values come out negative.
                    char text[16];
                    std::snprintf(text, sizeof text, "%d",
                                  static_cast<std::int32_t>(host.u32(offset::kSetValue)));
                    value = text;
                    break;
                }
                default:
                    break;
            }
            out.set_bytes(offset::kSetValue, value);
            out.set_u32(offset::kSetValueSize, static_cast<std::uint32_t>(value.size() + 1));
            [[fallthrough]];  // the key is converted as for a GET
        }
        case KVP_OP_GET: {
            const std::string key =
                driver_utf16_to_utf8(host.utf16(offset::kSetKey, kKeyField),
                                     host.u32(offset::kSetKeySize), kKeyField - 1);
            out.set_bytes(offset::kSetKey, key);
            out.set_u32(offset::kSetKeySize, static_cast<std::uint32_t>(key.size() + 1));
            break;
        }
        case KVP_OP_DELETE: {
            const std::string key =
                driver_utf16_to_utf8(host.utf16(offset::kDeleteKey, kKeyField),
                                     host.u32(offset::kDeleteKeySize), kKeyField - 1);
            out.set_bytes(offset::kDeleteKey, key);
            out.set_u32(offset::kDeleteKeySize, static_cast<std::uint32_t>(key.size() + 1));
            break;
        }
        case KVP_OP_ENUMERATE:
            out.set_u32(offset::kEnumIndex, host.u32(offset::kEnumIndex));
            break;
        default:
            break;
    }
    return out;
}

KvpMessage driver_registration(std::uint8_t operation) {
    KvpMessage out;
    out.set_header(operation, 0);
    out.set_bytes(offset::kRegisterVersion, kDriverVersion);
    return out;
}

std::uint32_t driver_respond(KvpMessage* host, const KvpMessage* daemon, std::uint32_t error) {
    if (error != 0 || daemon == nullptr) {
        return error != 0 ? error : HV_E_FAIL;
    }
    switch (host->operation()) {
        case KVP_OP_SET:
        case KVP_OP_DELETE:
            return error;
        case KVP_OP_GET: {
            // The driver takes a GET's value from where an enumeration keeps it, 4 bytes
            // past where the daemon's GET would have put it; the daemon copies no value
            // anyway (the driver sent a value size of 0). Hosts enumerate instead.
            const auto value =
                driver_utf8_to_utf16(daemon->c_string(offset::kEnumValue), kReplyValueUnits);
            if (!value) {
                return HV_E_FAIL;
            }
            host->set_utf16(offset::kSetValue, *value);
            host->set_u32(offset::kSetValueSize,
                          static_cast<std::uint32_t>(2 * (value->size() + 1)));
            host->set_u32(offset::kSetValueType, REG_SZ);
            return error;
        }
        default:
            break;
    }
    const auto key = driver_utf8_to_utf16(daemon->c_string(offset::kEnumKey), kReplyKeyUnits);
    const auto value = driver_utf8_to_utf16(daemon->c_string(offset::kEnumValue), kReplyValueUnits);
    if (!key || !value) {
        return HV_E_FAIL;  // invalid UTF-8 fails the whole item
    }
    host->set_utf16(offset::kEnumKey, *key);
    host->set_u32(offset::kEnumKeySize, static_cast<std::uint32_t>(2 * (key->size() + 1)));
    host->set_utf16(offset::kEnumValue, *value);
    host->set_u32(offset::kEnumValueSize, static_cast<std::uint32_t>(2 * (value->size() + 1)));
    host->set_u32(offset::kEnumValueType, REG_SZ);
    return error;
}

}  // namespace hostsim
