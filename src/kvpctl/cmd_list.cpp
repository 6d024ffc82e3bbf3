// kvpctl list POOL: the distinct keys, one per line, in the order of their first record.
#include "commands.hpp"

namespace kvpctl {

int cmd_list(const Context& ctx, kvp::PoolId pool) {
    auto directory = open_pool_directory(ctx, false);
    const auto snapshot = directory.pool(pool).snapshot();
    for (const std::size_t i : snapshot->listing()) {
        *ctx.out << snapshot->records()[i].record.key << '\n';
    }
    return kExitOk;
}

}  // namespace kvpctl
