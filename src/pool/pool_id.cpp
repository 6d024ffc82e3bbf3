#include "pool_id.hpp"

namespace kvp {

std::string_view pool_name(PoolId id) {
    switch (id) {
        case PoolId::external:
            return "external";
        case PoolId::guest:
            return "guest";
        case PoolId::automatic:
            return "auto";
        case PoolId::parameter:
            return "parameter";
        case PoolId::internal:
            return "internal";
    }
    return "?";
}

std::string pool_file_name(PoolId id) {
    return ".kvp_pool_" + std::to_string(pool_number(id));
}

std::optional<PoolId> parse_pool(std::string_view text) {
    for (const PoolId id : kAllPools) {
        if (text == pool_name(id) ||
            (text.size() == 1 && text[0] == static_cast<char>('0' + pool_number(id)))) {
            return id;
        }
    }
    return std::nullopt;
}

}  // namespace kvp
