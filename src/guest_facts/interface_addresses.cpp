#include "interface_addresses.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <memory>

#include "error.hpp"
#include "record_format.hpp"

namespace kvp {

std::vector<std::string> interface_addresses(int family) {
    struct ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) {
        throw_errno("getifaddrs");
    }
    const std::unique_ptr<struct ifaddrs, void (*)(struct ifaddrs*)> owner(list, ::freeifaddrs);
    std::vector<std::string> out;
    for (const struct ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == nullptr || ifa->ifa_addr->sa_family != family ||
            (ifa->ifa_flags & IFF_LOOPBACK) != 0) {
            continue;
        }
        const void* addr = nullptr;
        if (family == AF_INET) {
            addr = &reinterpret_cast<const struct sockaddr_in*>(ifa->ifa_addr)->sin_addr;
        } else {
            addr = &reinterpret_cast<const struct sockaddr_in6*>(ifa->ifa_addr)->sin6_addr;
        }
        char text[INET6_ADDRSTRLEN] = {};
        if (::inet_ntop(family, addr, text, sizeof text) != nullptr) {
            out.emplace_back(text);
        }
    }
    return out;
}

std::string join_addresses(const std::vector<std::string>& addresses, int family) {
    // hv_kvp_daemon's kvp_process_ip_address(): `offset` counts each address plus one
    // separator; it stops when (length - offset) < addr_length + 2.
    const std::size_t room_needed = (family == AF_INET ? INET_ADDRSTRLEN : INET6_ADDRSTRLEN) + 2;
    std::string joined;
    std::size_t offset = 0;
    for (const std::string& a : addresses) {
        if (kValueFieldSize - offset < room_needed || offset + a.size() + 1 > kValueFieldSize) {
            break;  // (the second test only matters for text longer than an address)
        }
        if (offset != 0) {
            joined.push_back(';');
        }
        joined += a;
        offset += a.size() + 1;
    }
    return joined;
}

}  // namespace kvp
