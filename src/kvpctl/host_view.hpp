#pragma once
// `--intrinsic`: pool 2 as the host sees it, without a mount. Glue only: it opens the pool
// directory and asks guest_facts' AutoPoolView, the one view of auto/ kvpfs's auto/ asks too.

#include <optional>
#include <string>
#include <vector>

#include "common.hpp"

namespace kvpctl {

// Throws kvp::Error(EINVAL) unless `pool` is auto: only pool 2 has intrinsic items.
void require_auto_pool(kvp::PoolId pool);
// The keys the host sees in pool 2: the file's, then the intrinsic items it lacks.
[[nodiscard]] std::vector<std::string> host_view_keys(const Context& ctx);
// The value the host sees for `key`: the file's first record, else the intrinsic item
// (FullyQualifiedDomainName waits up to 2 seconds for the host-name lookup).
[[nodiscard]] std::optional<std::string> host_view_value(const Context& ctx,
                                                         const std::string& key);

}  // namespace kvpctl
