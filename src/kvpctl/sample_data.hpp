#pragma once
// The data `kvpctl init --sample` writes: what an Azure VM's pools hold. `parameter` gets
// the keys the Hyper-V host sends about itself (plausible values of an Azure host);
// `auto` gets the intrinsic items, computed from this machine the way hv_kvp_daemon
// computes them (uname, /etc/os-release, the interface addresses).

#include <string>
#include <utility>
#include <vector>

namespace kvpctl {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

[[nodiscard]] KeyValues sample_parameter_pool();
[[nodiscard]] KeyValues sample_auto_pool();

}  // namespace kvpctl
