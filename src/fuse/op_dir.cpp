// Directory listing: opendir, readdir, releasedir. An open directory holds no copy of the
// pool: each readdir answers from the pool's current snapshot, so memory does not grow with
// open handles, however the pool changes meanwhile.
//
// The offset of a key's entry is its first record's index in the file (plus 3, after "."
// and ".."), and a readdir goes on with the keys whose first record lies after the offset it
// is given, in file order. Keys that entered the pool after the listing started (by the
// snapshot generation they were born in) are left out, so a key removed and made again
// meanwhile is not listed twice. The engine's changes keep every record where it is except
// the one a delete moves into a hole, so a key that exists throughout a listing is listed
// exactly once, unless a delete moved it from after the listing's position to before it
// (then it is missed) or another process rewrote the file; keys removed meanwhile may or may
// not show, as POSIX allows. In auto/ the intrinsic items the file lacks follow the file's
// keys, with offsets from kIntrinsicOffset (past any record index) + their position.
#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "auto_view.hpp"
#include "filesystem.hpp"
#include "key_name.hpp"

namespace kvpfs {
namespace {

// Beyond any record index + 3 (a pool file holds at most 2^30 / 2560 records).
constexpr off_t kIntrinsicOffset = off_t{1} << 40;

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
        // -o cache: the kernel keeps the listing across opens until it is invalidated.
        if (fs_of(req).mode().caches(dh->pool.value_or(kvp::PoolId::external))) {
            fi->cache_readdir = 1;
            fi->keep_cache = 1;
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
            // Offsets: 1 ".", 2 "..", then a pool directory i + 3 in the root, a key its first
            // record index + 3 (see the top of this file).
            const bool dots_fit = (off >= 1 || add(req, buf, size, ".", ino, S_IFDIR, 1)) &&
                                  (off >= 2 || add(req, buf, size, "..", kRootIno, S_IFDIR, 2));
            if (!dots_fit) {
                // the buffer is full already
            } else if (!dh.pool) {
                const std::size_t first = off < 2 ? 0 : static_cast<std::size_t>(off - 2);
                for (std::size_t i = first; i < kvp::kShownPools.size(); ++i) {
                    const kvp::PoolId id = kvp::kShownPools[i];
                    const std::string name(kvp::pool_name(id));
                    if (!add(req, buf, size, name.c_str(), pool_dir_ino(id), S_IFDIR,
                             static_cast<off_t>(i + 3))) {
                        break;
                    }
                }
            } else {
                const auto snapshot = fs.pool(*dh.pool).snapshot();
                if (off == 0 || !dh.listing_generation) {
                    dh.listing_generation = snapshot->generation();
                }
                const std::uint64_t started = *dh.listing_generation;
                const auto& listing = snapshot->listing();
                const auto& records = snapshot->records();
                bool full = false;
                if (off < kIntrinsicOffset) {
                    // Keys whose first record lies after the one the offset names.
                    const std::size_t after = off < 3 ? 0 : static_cast<std::size_t>(off - 3) + 1;
                    for (auto it = std::lower_bound(listing.begin(), listing.end(), after);
                         it != listing.end() && !full; ++it) {
                        if (records[*it].born > started) {
                            continue;  // entered the pool after the listing started
                        }
                        const std::string& key = records[*it].record.key;
                        const std::string name = kvp::key_to_name(key);
                        full = !add(req, buf, size, name.c_str(), fs.inodes().peek(*dh.pool, key),
                                    S_IFREG, static_cast<off_t>(*it + 3));
                    }
                }
                // auto/: then the intrinsic items the file lacks, offsets from kIntrinsicOffset.
                const auto extra = full ? std::vector<std::string_view>()
                                        : intrinsic_names(fs, *dh.pool, *snapshot);
                const std::size_t first_extra =
                    off < kIntrinsicOffset ? 0
                                           : static_cast<std::size_t>(off - kIntrinsicOffset) + 1;
                for (std::size_t j = first_extra; j < extra.size() && !full; ++j) {
                    const std::string name = kvp::key_to_name(extra[j]);
                    full = !add(req, buf, size, name.c_str(), fs.inodes().peek(*dh.pool, extra[j]),
                                S_IFREG, kIntrinsicOffset + static_cast<off_t>(j));
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
