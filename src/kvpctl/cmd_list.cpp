// kvpctl list POOL [--intrinsic]: the distinct keys, one per line, in the order of their
// first record (with --intrinsic, then the intrinsic items the auto pool file lacks).
#include "commands.hpp"
#include "host_view.hpp"
#include "pool_diagnosis.hpp"

namespace kvpctl {

int cmd_list(const Context& ctx, kvp::PoolId pool, bool intrinsic) {
    if (intrinsic) {
        require_auto_pool(pool);
        for (const std::string& key : host_view_keys(ctx)) {
            *ctx.out << key << '\n';
        }
        return kExitOk;
    }
    require_pool_files(ctx);
    warn_not_a_pool_file(ctx, pool);
    auto directory = open_pool_directory(ctx, false);
    const auto snapshot = directory.pool(pool).snapshot();
    for (const std::size_t i : snapshot->listing()) {
        *ctx.out << snapshot->records()[i].record.key << '\n';
    }
    return kExitOk;
}

}  // namespace kvpctl
