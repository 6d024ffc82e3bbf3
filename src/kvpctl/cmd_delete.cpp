// kvpctl delete POOL KEY: remove every record of the key; exit 1 when it is absent.
#include "commands.hpp"
#include "pool_diagnosis.hpp"

namespace kvpctl {

int cmd_delete(const Context& ctx, kvp::PoolId pool, const std::string& key) {
    require_pool_files(ctx);
    warn_not_a_pool_file(ctx, pool);
    auto directory = open_pool_directory(ctx, false);
    auto& file = directory.pool(pool);
    // A missing pool file holds no key (and delete never creates one).
    if (!file.snapshot()->exists() || !file.remove(key)) {
        *ctx.err << "kvpctl: " << kvp::pool_name(pool) << ": no key " << escape(key, true)
                 << file_name_hint(key) << '\n';
        return kExitNegative;
    }
    return kExitOk;
}

}  // namespace kvpctl
