#pragma once
// What every kvpctl command shares: where the pools are, how long to wait for a lock,
// where output goes, and the exit codes (documented in docs/kvpctl.md and kept).

#include <boost/filesystem/path.hpp>
#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "escape.hpp"
#include "pool_directory.hpp"
#include "pool_id.hpp"

namespace kvpctl {

// 0: done. 1: a negative answer (key absent, problems found). 2: bad use, or the command
// could not be carried out (the reason is on stderr).
enum ExitCode : int { kExitOk = 0, kExitNegative = 1, kExitBadUse = 2 };

inline constexpr const char* kDefaultPoolDir = "/var/lib/hyperv";

struct Context {
    boost::filesystem::path pool_dir{kDefaultPoolDir};
    std::chrono::milliseconds lock_timeout{10'000};
    std::ostream* out = nullptr;
    std::ostream* err = nullptr;
};

// The pools a command works on: the one named, or all five in number order.
[[nodiscard]] std::vector<kvp::PoolId> selected_pools(const std::optional<kvp::PoolId>& pool);

// A PoolDirectory over ctx.pool_dir; `create` lets changes create missing pool files.
[[nodiscard]] kvp::PoolDirectory open_pool_directory(const Context& ctx, bool create);

// Throws kvp::Error(ENOENT/ENOTDIR) unless ctx.pool_dir is a directory.
void require_pool_directory(const Context& ctx);

// A string made printable on one line: valid UTF-8 stays, '\\' and control bytes become
// C escapes (\n, \t, \r, \\, \xNN), bytes that are not UTF-8 become \xNN. With `quoted`,
// the result is wrapped in double quotes and '"' is escaped too, so it is unambiguous.
// (kvp::escape in kvpctl's style: C1 controls, which a terminal shows as nothing, stay.)
[[nodiscard]] inline std::string escape(std::string_view text, bool quoted) {
    return kvp::escape(text, {.quoted = quoted, .unicode_controls = false});
}

// "1 record" / "3 records".
[[nodiscard]] std::string plural(std::size_t n, std::string_view singular,
                                 std::string_view plural_form);

}  // namespace kvpctl
