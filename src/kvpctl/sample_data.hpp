#pragma once
// The data `kvpctl init --sample` writes: the keys the Hyper-V host sends about itself to
// `parameter` (plausible values of an Azure host). The auto pool's intrinsic items are not
// sample data: hv_kvp_daemon computes them on demand (src/guest_facts/intrinsic_items.hpp).

#include <string>
#include <utility>
#include <vector>

namespace kvpctl {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

[[nodiscard]] KeyValues sample_parameter_pool();

}  // namespace kvpctl
