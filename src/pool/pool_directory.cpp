#include "pool_directory.hpp"

#include <boost/filesystem/operations.hpp>

#include <sys/stat.h>
#include <sys/statvfs.h>

#include "error.hpp"
#include "record_format.hpp"

namespace kvp {

std::vector<PoolId> pool_files_in(const boost::filesystem::path& directory) {
    std::vector<PoolId> taken;
    for (const PoolId id : kAllPools) {
        struct stat st {};
        if (::lstat((directory / pool_file_name(id)).c_str(), &st) == 0) {
            taken.push_back(id);
        }
    }
    return taken;
}

PoolDirectory::PoolDirectory(const boost::filesystem::path& directory, DirectoryOptions options)
    : directory_(directory) {
    boost::system::error_code ec;
    const auto status = boost::filesystem::status(directory_, ec);
    if (!boost::filesystem::exists(status)) {
        throw Error(ENOENT, "pool directory " + directory_.string() + " does not exist");
    }
    if (!boost::filesystem::is_directory(status)) {
        throw Error(ENOTDIR, "pool directory " + directory_.string() + " is not a directory");
    }
    // Named as each PoolFile names it (a trailing '/' dropped).
    watch_ = std::make_shared<DirectoryWatch>(
        (directory_ / pool_file_name(PoolId::external)).parent_path().string());
    for (const PoolId id : kAllPools) {
        const auto n = static_cast<std::size_t>(pool_number(id));
        pools_.at(n) = std::make_unique<PoolFile>(
            directory_ / pool_file_name(id),
            PoolOptions{options.lock_timeout, options.create_on_write.at(n)}, watch_);
    }
}

PoolDirectory::Room PoolDirectory::room() const {
    struct statvfs sv {};
    if (::statvfs(directory_.c_str(), &sv) != 0) {
        return {};
    }
    Room r;
    r.free_bytes = static_cast<std::uint64_t>(sv.f_bavail) * sv.f_frsize;
    r.free_records = r.free_bytes / kRecordSize;
    return r;
}

}  // namespace kvp
