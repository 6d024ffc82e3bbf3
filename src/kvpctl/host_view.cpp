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
    const auto snapshot = directory.pool(kvp::PoolId::automatic).snapshot();
    std::vector<std::string> keys;
    for (const std::size_t i : snapshot->listing()) {
        keys.push_back(snapshot->records()[i].record.key);
    }
    for (const std::string_view name : make_view().missing_names(*snapshot)) {
        keys.emplace_back(name);
    }
    return keys;
}

std::optional<std::string> host_view_value(const Context& ctx, const std::string& key) {
    auto directory = open_pool_directory(ctx, false);
    if (auto value = directory.pool(kvp::PoolId::automatic).get(key)) {
        return value;
    }
    auto view = make_view();
    if (key == kvp::kIntrinsicNames[0]) {
        // A one-shot command may wait a little for the lookup the daemon does in the
        // background; past the limit it shows the plain host name, as kvpfs would.
        (void)view.items().names().wait_for(kvp::current_host_name(),
                                            std::chrono::milliseconds(2000));
    }
    auto rec = view.intrinsic(key);
    if (!rec) {
        return std::nullopt;
    }
    return std::move(rec->record.value);
}

}  // namespace kvpctl
