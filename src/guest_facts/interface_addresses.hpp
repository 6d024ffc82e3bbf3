#pragma once
// The NetworkAddressIPv4/IPv6 intrinsic items: the addresses of every interface that is
// not a loopback, in getifaddrs() order, as hv_kvp_daemon's kvp_get_ip_info() collects
// them for the host (no %scope on IPv6 link-local addresses: inet_ntop of the address).

#include <string>
#include <vector>

namespace kvp {

// The addresses of `family` (AF_INET or AF_INET6) of every non-loopback interface, in
// getifaddrs() order, as text. Throws kvp::Error when getifaddrs fails.
[[nodiscard]] std::vector<std::string> interface_addresses(int family);

// Joins addresses with ';' within hv_kvp_daemon's 2048-byte value buffer, by its rule:
// an address is added only while the room left is at least INET_ADDRSTRLEN + 2 (IPv4)
// or INET6_ADDRSTRLEN + 2 (IPv6) bytes; the rest are left out. So the result is at most
// 2045 bytes and never ends inside an address.
[[nodiscard]] std::string join_addresses(const std::vector<std::string>& addresses, int family);

}  // namespace kvp
