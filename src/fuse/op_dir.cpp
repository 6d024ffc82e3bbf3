// Directory listing: opendir, readdir, releasedir. A pool directory's listing comes from
// one snapshot held by the open directory, so a listing split over many readdir calls
// shows every key exactly once even while the pool changes; rewinding (offset 0) takes a
// fresh snapshot.

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "auto_view.hpp"
#include "filesystem.hpp"
#include "key_name.hpp"

namespace kvpfs {
namespace {

DirHandle* dir_of(const struct fuse_file_info* fi) {
    return reinterpret_cast<DirHandle*>(fi->fh);  // NOLINT(performance-no-int-to-ptr)
}

// Adds one entry; false when the reply buffer is full.
bool add(fuse_req_t req, std::vector<char>& buf, std::size_t limit, const char* name, Ino ino,
         mode_t type, off_t next) {
    struct stat st {};
    st.st_ino = ino;
    st.st_mode = type;
    const std::size_t used = buf.size();
    const std::size_t need = fuse_add_direntry(req, nullptr, 0, name, nullptr, 0);
    if (used + need > limit) {
        return false;
    }
    buf.resize(used + need);
    fuse_add_direntry(req, buf.data() + used, need, name, &st, next);
    return true;
}

}  // namespace

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
    guarded(req, "opendir", [&] {
        auto dh = std::make_unique<DirHandle>();
        if (ino != kRootIno) {
            dh->pool = pool_of_dir_ino(ino);
            if (!dh->pool) {
                reply_error(req, "opendir", ENOTDIR, "inode " + std::to_string(ino));
                return;
            }
        }
        fi->fh = reinterpret_cast<uint64_t>(dh.get());
        fs_of(req).track_dir(dh.get());
        if (fuse_reply_open(req, fi) == 0) {
            (void)dh.release();  // owned by the kernel's handle until releasedir
        } else {
            fs_of(req).untrack_dir(dh.get());
        }
    });
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info* fi) {
    guarded(req, "readdir", [&] {
        Filesystem& fs = fs_of(req);
        DirHandle& dh = *dir_of(fi);
        std::vector<char> buf;
        buf.reserve(size);
        {
            // The reply is sent after the lock is dropped: once it is out, a releasedir on
            // another thread may free the handle.
            std::unique_lock lock(dh.mutex);
            // Offsets: 0 ".", 1 "..", then 2 + i for the i-th entry.
            const bool dots_fit = (off >= 1 || add(req, buf, size, ".", ino, S_IFDIR, 1)) &&
                                  (off >= 2 || add(req, buf, size, "..", kRootIno, S_IFDIR, 2));
            const std::size_t first = off < 2 ? 0 : static_cast<std::size_t>(off - 2);
            if (!dots_fit) {
                // the buffer is full already
            } else if (!dh.pool) {
                for (std::size_t i = first; i < kvp::kShownPools.size(); ++i) {
                    const kvp::PoolId id = kvp::kShownPools[i];
                    const std::string name(kvp::pool_name(id));
                    if (!add(req, buf, size, name.c_str(), pool_dir_ino(id), S_IFDIR,
                             static_cast<off_t>(i + 3))) {
                        break;
                    }
                }
            } else {
                if (off == 0 || !dh.snapshot) {
                    dh.snapshot = fs.pool(*dh.pool).snapshot();
                }
                const auto& listing = dh.snapshot->listing();
                const auto& records = dh.snapshot->records();
                bool full = false;
                for (std::size_t i = first; i < listing.size() && !full; ++i) {
                    const std::string& key = records[listing[i]].record.key;
                    const std::string name = kvp::key_to_name(key);
                    full = !add(req, buf, size, name.c_str(), fs.inodes().peek(*dh.pool, key),
                                S_IFREG, static_cast<off_t>(i + 3));
                }
                // auto/: then the intrinsic items the file lacks (decided by the same
                // snapshot, so a listing split over several calls stays whole).
                const auto extra = full ? std::vector<std::string_view>()
                                        : intrinsic_names(fs, *dh.pool, *dh.snapshot);
                const std::size_t n = listing.size();
                for (std::size_t j = first > n ? first - n : 0; j < extra.size() && !full; ++j) {
                    const std::string name = kvp::key_to_name(extra[j]);
                    full = !add(req, buf, size, name.c_str(), fs.inodes().peek(*dh.pool, extra[j]),
                                S_IFREG, static_cast<off_t>(n + j + 3));
                }
            }
        }
        fuse_reply_buf(req, buf.data(), buf.size());
    });
}

void op_releasedir(fuse_req_t req, fuse_ino_t /*ino*/, struct fuse_file_info* fi) {
    fs_of(req).untrack_dir(dir_of(fi));
    delete dir_of(fi);
    fuse_reply_err(req, 0);
}

}  // namespace kvpfs
