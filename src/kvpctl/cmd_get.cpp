// kvpctl get POOL KEY: the value and a newline; exit 1 when the key is absent.
#include "commands.hpp"

namespace kvpctl {

int cmd_get(const Context& ctx, kvp::PoolId pool, const std::string& key) {
    auto directory = open_pool_directory(ctx, false);
    const auto value = directory.pool(pool).get(key);
    if (!value) {
        *ctx.err << "kvpctl: " << kvp::pool_name(pool) << ": no key " << escape(key, true) << '\n';
        return kExitNegative;
    }
    *ctx.out << *value << '\n';
    return kExitOk;
}

}  // namespace kvpctl
