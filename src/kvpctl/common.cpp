#include "common.hpp"

#include <sys/stat.h>

#include <cerrno>

#include "error.hpp"

namespace kvpctl {

std::vector<kvp::PoolId> selected_pools(const std::optional<kvp::PoolId>& pool) {
    if (pool) {
        return {*pool};
    }
    return {kvp::kAllPools.begin(), kvp::kAllPools.end()};
}

kvp::PoolDirectory open_pool_directory(const Context& ctx, bool create) {
    kvp::DirectoryOptions options;
    options.lock_timeout = ctx.lock_timeout;
    options.create_on_write.fill(create);
    return kvp::PoolDirectory(ctx.pool_dir, options);
}

void require_pool_directory(const Context& ctx) {
    struct stat st {};
    if (::stat(ctx.pool_dir.c_str(), &st) != 0) {
        kvp::throw_errno("pool directory " + ctx.pool_dir.string());
    }
    if (!S_ISDIR(st.st_mode)) {
        kvp::throw_error(ENOTDIR, "pool directory " + ctx.pool_dir.string());
    }
}

std::string plural(std::size_t n, std::string_view singular, std::string_view plural_form) {
    return std::to_string(n) + " " + std::string(n == 1 ? singular : plural_form);
}

}  // namespace kvpctl
