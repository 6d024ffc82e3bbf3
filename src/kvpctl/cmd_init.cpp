// kvpctl init DIR [--sample]: creates the directory and the five pool files (mode 0644,
// as hv_kvp_daemon creates them), leaving existing files as they are. --sample fills
// `parameter` with an Azure host's data (sample_data.hpp).
#include <fcntl.h>
#include <sys/stat.h>

#include <boost/filesystem/operations.hpp>
#include <cerrno>

#include "commands.hpp"
#include "error.hpp"
#include "sample_data.hpp"
#include "unique_fd.hpp"

namespace kvpctl {

namespace {

// Creates the pool file if missing; true if it did.
bool create_pool_file(const boost::filesystem::path& path) {
    kvp::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd) {
        if (errno == EEXIST) {
            return false;
        }
        kvp::throw_errno("create " + path.string());
    }
    // The mode is 0644 whatever the umask.
    if (::fchmod(fd.get(), 0644) != 0) {
        kvp::throw_errno("chmod " + path.string());
    }
    return true;
}

}  // namespace

int cmd_init(const Context& ctx, const boost::filesystem::path& dir, bool sample) {
    boost::system::error_code ec;
    boost::filesystem::create_directories(dir, ec);
    if (ec) {
        kvp::throw_error(ec.value(), "create directory " + dir.string());
    }
    if (!boost::filesystem::is_directory(dir)) {
        kvp::throw_error(ENOTDIR, dir.string());
    }
    std::size_t created = 0;
    for (const kvp::PoolId id : kvp::kAllPools) {
        if (create_pool_file(dir / kvp::pool_file_name(id))) {
            ++created;
        }
    }
    *ctx.out << dir.string() << ": created " << plural(created, "pool file", "pool files") << " ("
             << kvp::kAllPools.size() - created << " already there)\n";
    if (!sample) {
        return kExitOk;
    }
    Context in_dir = ctx;
    in_dir.pool_dir = dir;
    auto directory = open_pool_directory(in_dir, false);
    // auto (pool 2) stays empty, as on a real VM: hv_kvp_daemon never stores the intrinsic
    // items, it computes them when the host asks (kvpfs's auto/ and `--intrinsic` show them).
    const std::pair<kvp::PoolId, KeyValues> pools[] = {
        {kvp::PoolId::parameter, sample_parameter_pool()},
    };
    for (const auto& [id, items] : pools) {
        auto& file = directory.pool(id);
        for (const auto& [key, value] : items) {
            file.set(key, value, kvp::Limits::host);
        }
        *ctx.out << kvp::pool_name(id) << ": wrote "
                 << plural(items.size(), "sample key", "sample keys") << '\n';
    }
    return kExitOk;
}

}  // namespace kvpctl
