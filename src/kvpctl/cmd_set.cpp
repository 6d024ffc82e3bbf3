// kvpctl set POOL KEY VALUE: create or replace a key (any pool: kvpctl stands for the host
// and hv_kvp_daemon side). A missing pool file is created with mode 0644.
#include <cerrno>

#include "commands.hpp"
#include "error.hpp"

namespace kvpctl {

int cmd_set(const Context& ctx, kvp::PoolId pool, const std::string& key, const std::string& value,
            kvp::Limits limits) {
    // Say which limit a key or value crosses before touching the pool.
    if (const auto v = kvp::check_key(key, limits); v != kvp::Violation::none) {
        kvp::throw_error(kvp::key_errno(v), std::string("key: ") + kvp::describe(v));
    }
    if (const auto v = kvp::check_value(value, limits); v != kvp::Violation::none) {
        kvp::throw_error(kvp::value_errno(v), std::string("value: ") + kvp::describe(v));
    }
    auto directory = open_pool_directory(ctx, true);
    directory.pool(pool).set(key, value, limits);
    return kExitOk;
}

}  // namespace kvpctl
