#include "intrinsic_items.hpp"

#include <netinet/in.h>
#include <sys/utsname.h>

#include "error.hpp"
#include "interface_addresses.hpp"
#include "os_release.hpp"
#include "record_format.hpp"

namespace kvp {
namespace {

struct utsname uname_now() {
    struct utsname uts {};
    if (::uname(&uts) != 0) {
        throw_errno("uname");
    }
    return uts;
}

// Cuts to the format's value limit at a UTF-8 character boundary.
std::string fit_value(std::string value) {
    constexpr std::size_t kMax = kValueFieldSize - 1;
    if (value.size() > kMax) {
        std::size_t cut = kMax;
        while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80) {
            --cut;
        }
        value.resize(cut);
    }
    return value;
}

}  // namespace

std::optional<std::size_t> intrinsic_index(std::string_view name) {
    for (std::size_t i = 0; i < kIntrinsicNames.size(); ++i) {
        if (kIntrinsicNames[i] == name) {
            return i;
        }
    }
    return std::nullopt;
}

std::string kernel_version(std::string_view release) {
    return std::string(release.substr(0, release.find('-')));
}

OsIdentity os_identity(const std::string& os_release_path, std::string_view sysname) {
    OsIdentity id{std::string(sysname), "", ""};
    if (auto vars = read_os_release(os_release_path)) {
        if (auto it = vars->find("NAME"); it != vars->end()) {
            id.name = it->second;
        }
        if (auto it = vars->find("VERSION_ID"); it != vars->end()) {
            id.major = it->second;
        }
    }
    return id;
}

IntrinsicItems::IntrinsicItems(IntrinsicSources sources)
    : os_release_path_(std::move(sources.os_release_path)), names_(std::move(sources.names)) {
    if (!names_) {
        names_ = std::make_shared<CanonicalNameCache>();
    }
}

std::string IntrinsicItems::value(std::size_t index) const {
    switch (index) {
        case 0:  // FullyQualifiedDomainName
            return fit_value(names_->current(current_host_name()));
        case 1:  // IntegrationServicesVersion
            return std::string(kIntegrationServicesVersion);
        case 2:  // NetworkAddressIPv4
            return join_addresses(interface_addresses(AF_INET), AF_INET);
        case 3:  // NetworkAddressIPv6
            return join_addresses(interface_addresses(AF_INET6), AF_INET6);
        case 4:  // OSBuildNumber
            return uname_now().release;
        case 5:  // OSName
            return fit_value(os_identity(os_release_path_, uname_now().sysname).name);
        case 6:  // OSMajorVersion
            return fit_value(os_identity(os_release_path_, uname_now().sysname).major);
        case 7:  // OSMinorVersion
            return os_identity(os_release_path_, uname_now().sysname).minor;
        case 8:  // OSVersion
            return kernel_version(uname_now().release);
        case 9:  // ProcessorArchitecture
            return uname_now().machine;
        default:
            throw_error(ENOENT, "no intrinsic item " + std::to_string(index));
    }
}

}  // namespace kvp
