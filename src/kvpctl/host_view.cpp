#include "host_view.hpp"

#include <time.h>

#include <cerrno>
#include <chrono>

#include "auto_pool_view.hpp"
#include "error.hpp"

namespace kvpctl {
namespace {

kvp::AutoPoolView make_view() {
    struct timespec now {};
    clock_gettime(CLOCK_REALTIME, &now);
    return kvp::AutoPoolView(kvp::IntrinsicSources{}, now);
}

}  // namespace

void require_auto_pool(kvp::PoolId pool) {
    if (pool != kvp::PoolId::automatic) {
        kvp::throw_error(EINVAL, "--intrinsic: only auto (pool 2) has intrinsic items, not " +
                                     std::string(kvp::pool_name(pool)));
    }
}

std::vector<std::string> host_view_keys(const Context& ctx) {
    auto directory = open_pool_directory(ctx, false);
    return make_view().keys(*directory.pool(kvp::PoolId::automatic).snapshot());
}

std::optional<std::string> host_view_value(const Context& ctx, const std::string& key) {
    auto directory = open_pool_directory(ctx, false);
    const auto snapshot = directory.pool(kvp::PoolId::automatic).snapshot();
    auto view = make_view();
    if (snapshot->find(key) == nullptr && key == kvp::kIntrinsicNames[0]) {
        // A one-shot command may wait a little for the lookup the daemon does in the
        // background; past the limit it shows the plain host name, as kvpfs would.
        view.wait_for_host_name(std::chrono::milliseconds(2000));
    }
    auto rec = view.record(*snapshot, key);
    if (!rec) {
        return std::nullopt;
    }
    return std::move(rec->record.value);
}

}  // namespace kvpctl
