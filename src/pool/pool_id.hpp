#pragma once
// The five pool files and the names users call them by.

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace kvp {

enum class PoolId { external = 0, guest = 1, automatic = 2, parameter = 3, internal = 4 };

inline constexpr std::array<PoolId, 5> kAllPools = {
    PoolId::external, PoolId::guest, PoolId::automatic, PoolId::parameter, PoolId::internal};
// The four pools shown under the mount, in directory order.
inline constexpr std::array<PoolId, 4> kShownPools = {PoolId::external, PoolId::guest,
                                                      PoolId::automatic, PoolId::parameter};

[[nodiscard]] constexpr int pool_number(PoolId id) {
    return static_cast<int>(id);
}
// "external", "guest", "auto", "parameter", "internal".
[[nodiscard]] std::string_view pool_name(PoolId id);
// ".kvp_pool_N".
[[nodiscard]] std::string pool_file_name(PoolId id);
// Accepts a shown name or a number 0-4.
[[nodiscard]] std::optional<PoolId> parse_pool(std::string_view text);

}  // namespace kvp
