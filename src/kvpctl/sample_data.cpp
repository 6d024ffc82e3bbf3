#include "sample_data.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string_view>

namespace kvpctl {

KeyValues sample_parameter_pool() {
    // An Azure host: Windows Server (major 10, minor 0), x64 (PROCESSOR_ARCHITECTURE_AMD64
    // is 9), Datacenter edition (8), not nested. Names follow Azure's cluster naming.
    return {
        {"HostName", "BL2AAP103040417"},
        {"HostingSystemEditionId", "8"},
        {"HostingSystemNestedLevel", "0"},
        {"HostingSystemOsMajor", "10"},
        {"HostingSystemOsMinor", "0"},
        {"HostingSystemProcessorArchitecture", "9"},
        {"HostingSystemProcessorIdleStateMax", "0"},
        {"HostingSystemProcessorThrottleMax", "100"},
        {"HostingSystemProcessorThrottleMin", "100"},
        {"HostingSystemSpMajor", "0"},
        {"HostingSystemSpMinor", "0"},
        {"PhysicalHostName", "BL2AAP103040417"},
        {"PhysicalHostNameFullyQualified", "BL2AAP103040417.bl2.gbl"},
        {"VirtualMachineDynamicMemoryBalancingEnabled", "0"},
        {"VirtualMachineId", "5A3C7B9E-21D4-4F6A-9C0E-8B1F2D3E4A5B"},
        {"VirtualMachineName", "kvpfs-demo-vm"},
    };
}

namespace {

std::string trim_quotes(std::string value) {
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
        value = value.substr(1, value.size() - 2);
    }
    return value;
}

// NAME= and VERSION_ID= of /etc/os-release (or /usr/lib/os-release).
void read_os_release(std::string& name, std::string& version) {
    for (const char* path : {"/etc/os-release", "/usr/lib/os-release"}) {
        std::ifstream in(path);
        if (!in) {
            continue;
        }
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind("NAME=", 0) == 0) {
                name = trim_quotes(line.substr(5));
            } else if (line.rfind("VERSION_ID=", 0) == 0) {
                version = trim_quotes(line.substr(11));
            }
        }
        return;
    }
}

// The addresses of every interface that is up and not loopback, joined with ';' as
// hv_kvp_daemon joins them.
std::string addresses(int family) {
    constexpr std::size_t kMaxJoined = 1000;
    struct ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) {
        return {};
    }
    std::string joined;
    for (const struct ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr == nullptr || ifa->ifa_addr->sa_family != family ||
            (ifa->ifa_flags & IFF_LOOPBACK) != 0 || (ifa->ifa_flags & IFF_UP) == 0) {
            continue;
        }
        char text[INET6_ADDRSTRLEN] = {};
        const void* addr =
            family == AF_INET
                ? static_cast<const void*>(
                      &reinterpret_cast<const struct sockaddr_in*>(ifa->ifa_addr)->sin_addr)
                : static_cast<const void*>(
                      &reinterpret_cast<const struct sockaddr_in6*>(ifa->ifa_addr)->sin6_addr);
        if (::inet_ntop(family, addr, text, sizeof text) == nullptr) {
            continue;
        }
        // Stay within what the host receives intact (1022 UTF-16 units).
        if (joined.size() + 1 + std::strlen(text) > kMaxJoined) {
            break;
        }
        if (!joined.empty()) {
            joined += ';';
        }
        joined += text;
    }
    ::freeifaddrs(list);
    return joined;
}

std::string fully_qualified_name(const struct utsname& uts) {
    std::string name = uts.nodename;
    if (name.find('.') != std::string::npos) {
        return name;
    }
    // No DNS lookup (it may hang without a network): the NIS/YP domain when one is set.
    const std::string_view domain = uts.domainname;
    if (!domain.empty() && domain != "(none)") {
        name += '.';
        name += domain;
    }
    return name;
}

}  // namespace

KeyValues sample_auto_pool() {
    struct utsname uts {};
    ::uname(&uts);
    const std::string release = uts.release;

    // Like hv_kvp_daemon: major and minor are the first two numbers of the kernel release;
    // the OS name starts as the kernel's and is replaced by os-release's NAME.
    std::string major = release.substr(0, release.find('.'));
    std::string minor;
    if (const auto dot = release.find('.'); dot != std::string::npos) {
        const auto end = release.find_first_not_of("0123456789", dot + 1);
        minor = release.substr(dot + 1, end == std::string::npos ? end : end - dot - 1);
    }
    std::string os_name = uts.sysname;
    std::string os_version;
    read_os_release(os_name, os_version);

    return {
        {"FullyQualifiedDomainName", fully_qualified_name(uts)},
        {"IntegrationServicesVersion", "3.1"},
        {"NetworkAddressIPv4", addresses(AF_INET)},
        {"NetworkAddressIPv6", addresses(AF_INET6)},
        {"OSBuildNumber", release},
        {"OSName", os_name},
        {"OSMajorVersion", major},
        {"OSMinorVersion", minor},
        {"OSVersion", os_version},
        {"ProcessorArchitecture", uts.machine},
    };
}

}  // namespace kvpctl
