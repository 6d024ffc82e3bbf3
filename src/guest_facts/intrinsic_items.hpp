#pragma once
// The ten intrinsic items of the auto pool (pool 2). On a Hyper-V VM nothing stores them:
// when the host enumerates pool 2, hv_kvp_daemon computes each one on the spot (its
// `enum key_index` in tools/hv/hv_kvp_daemon.c gives the names and their order). This is
// the same computation, done at each call so the values are live. No FUSE and no record
// layout in here: kvpfs and kvpctl both use it (through AutoPoolView).

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "canonical_name.hpp"

namespace kvp {

// In hv_kvp_daemon's enumeration order.
inline constexpr std::array<std::string_view, 10> kIntrinsicNames = {
    "FullyQualifiedDomainName",
    "IntegrationServicesVersion",
    "NetworkAddressIPv4",
    "NetworkAddressIPv6",
    "OSBuildNumber",
    "OSName",
    "OSMajorVersion",
    "OSMinorVersion",
    "OSVersion",
    "ProcessorArchitecture",
};

// The version string every mainline KVP driver registers with (HV_DRV_VERSION in
// drivers/hv/hv_kvp.c), which hv_kvp_daemon answers as IntegrationServicesVersion.
inline constexpr std::string_view kIntegrationServicesVersion = "3.1";

// Index of `name` in kIntrinsicNames, or nullopt.
[[nodiscard]] std::optional<std::size_t> intrinsic_index(std::string_view name);

// OSVersion: the kernel release cut at its first '-' ("6.1.0-13-amd64" -> "6.1.0").
[[nodiscard]] std::string kernel_version(std::string_view release);

// OSName, OSMajorVersion and OSMinorVersion, from os-release and the kernel's name.
struct OsIdentity {
    std::string name;   // NAME=, or `sysname` (uname -s) without one
    std::string major;  // VERSION_ID=, or ""
    std::string minor;  // always "" (hv_kvp_daemon sets it only from pre-os-release files)
};
[[nodiscard]] OsIdentity os_identity(const std::string& os_release_path, std::string_view sysname);

struct IntrinsicSources {
    std::string os_release_path = "/etc/os-release";
    // Host name -> canonical name; a cache with the real resolver when null.
    std::shared_ptr<CanonicalNameCache> names;
};

class IntrinsicItems {
  public:
    explicit IntrinsicItems(IntrinsicSources sources = {});

    // The value item `index` has now. Never waits for DNS. At most 2047 bytes (a value
    // field's limit; only a freak os-release could reach it). Throws kvp::Error when a
    // source fails (getifaddrs).
    [[nodiscard]] std::string value(std::size_t index) const;
    // Starts the background host-name lookups (after fork()), the first one at once.
    void start() const { names_->start(current_host_name()); }
    [[nodiscard]] CanonicalNameCache& names() const { return *names_; }

  private:
    std::string os_release_path_;
    std::shared_ptr<CanonicalNameCache> names_;
};

}  // namespace kvp
