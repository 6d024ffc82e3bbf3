// kvpctl get POOL KEY [--intrinsic]: the value and a newline; exit 1 when the key is absent.
#include "commands.hpp"
#include "host_view.hpp"
#include "pool_diagnosis.hpp"

namespace kvpctl {

int cmd_get(const Context& ctx, kvp::PoolId pool, const std::string& key, bool intrinsic) {
    std::optional<std::string> value;
    if (intrinsic) {
        require_auto_pool(pool);
        value = host_view_value(ctx, key);
    } else {
        require_pool_files(ctx);
        warn_not_a_pool_file(ctx, pool);
        auto directory = open_pool_directory(ctx, false);
        value = directory.pool(pool).get(key);
    }
    if (!value) {
        *ctx.err << "kvpctl: " << kvp::pool_name(pool) << ": no key " << escape(key, true)
                 << file_name_hint(key) << '\n';
        return kExitNegative;
    }
    *ctx.out << *value << '\n';
    return kExitOk;
}

}  // namespace kvpctl
