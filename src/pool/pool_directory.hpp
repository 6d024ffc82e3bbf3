#pragma once
// The pool directory (/var/lib/hyperv by default) and its five PoolFile objects.

#include <array>
#include <boost/filesystem/path.hpp>
#include <cstdint>
#include <memory>
#include <vector>

#include "directory_watch.hpp"
#include "pool_file.hpp"
#include "pool_id.hpp"

namespace kvp {

// The pools whose file name is taken in `directory` (by a file of any type, a dangling link
// included): how kvpfs tells a pool directory from a mount point swapped with it, and kvpctl
// a pool directory from a wrong --pool-dir.
[[nodiscard]] std::vector<PoolId> pool_files_in(const boost::filesystem::path& directory);

struct DirectoryOptions {
    std::chrono::milliseconds lock_timeout{10'000};
    // Which pools a change may create when their file is missing.
    std::array<bool, 5> create_on_write{false, true, false, false, false};
};

class PoolDirectory {
  public:
    // Throws kvp::Error(ENOENT/ENOTDIR) when `directory` is not a directory.
    PoolDirectory(const boost::filesystem::path& directory, DirectoryOptions options);

    [[nodiscard]] PoolFile& pool(PoolId id) { return *pools_.at(pool_number(id)); }
    [[nodiscard]] const boost::filesystem::path& directory() const { return directory_; }
    // The directory's one watcher, which the five pools subscribe to (and kvpfs's cache
    // thread, through a WatchObserver).
    [[nodiscard]] const std::shared_ptr<DirectoryWatch>& watch() const { return watch_; }

    // Room left for the pools to grow: the free bytes of the file system holding the
    // directory (what an unprivileged writer may use) and the new records they hold. Zeros
    // when the file system cannot say.
    struct Room {
        std::uint64_t free_bytes = 0;
        std::uint64_t free_records = 0;
    };
    [[nodiscard]] Room room() const;

  private:
    boost::filesystem::path directory_;
    std::shared_ptr<DirectoryWatch> watch_;
    std::array<std::unique_ptr<PoolFile>, 5> pools_;
};

}  // namespace kvp
