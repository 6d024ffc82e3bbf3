#pragma once
// What the kernel's KVP driver does to a message on its way through: the host's request
// becomes the daemon's (UTF-16 to UTF-8, cut at 511/2047 bytes), and the daemon's answer
// is written into the host's buffer (UTF-8 to UTF-16, cut at 254/1022 units).

#include <cstdint>

#include "kvp_message.hpp"

namespace hostsim {

// The daemon's message for a host request (a zero-filled buffer, as the driver allocates).
[[nodiscard]] KvpMessage driver_to_daemon(const KvpMessage& host);

// The registration answer: the daemon's registration opcode and the driver's version.
[[nodiscard]] KvpMessage driver_registration(std::uint8_t operation);

// Completes the host's buffer from the daemon's answer (`daemon` may be null when the
// driver answers on its own: a timeout, a reset). Returns the status the host receives.
std::uint32_t driver_respond(KvpMessage* host, const KvpMessage* daemon, std::uint32_t error);

}  // namespace hostsim
