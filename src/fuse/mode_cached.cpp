// -o cache (= -o cache=names): the kernel keeps entries, attributes and listings, and the
// invalidation thread (cache_invalidator.hpp) tells it what to drop. Key files still have
// handles (mode_uncached.cpp).

#include <vector>

#include "cache_invalidator.hpp"
#include "filesystem.hpp"
#include "mode_kinds.hpp"

namespace kvpfs {

CachedMode::CachedMode(Filesystem& fs) : UncachedMode(fs) {}

CachedMode::~CachedMode() = default;

// Not auto/ with its intrinsic items, whose values change without any file changing.
bool CachedMode::caches(kvp::PoolId pool) const {
    return pool != kvp::PoolId::automatic || !fs_.options().auto_intrinsic;
}

void CachedMode::want(struct fuse_conn_info& conn) const {
    UncachedMode::want(conn);
    // With it the kernel checks a directory's mtime before it serves a cached listing from
    // the start (also after a rewinddir), so a listing cached from a reply older than an
    // invalidation is refilled (Filesystem::fill_dir_attr).
    if ((conn.capable & FUSE_CAP_AUTO_INVAL_DATA) != 0) {
        conn.want |= FUSE_CAP_AUTO_INVAL_DATA;
    }
}

void CachedMode::start(struct fuse_session* session) {
    std::vector<kvp::PoolId> cached;
    for (kvp::PoolId id : kvp::kShownPools) {
        if (caches(id)) {
            cached.push_back(id);
        }
    }
    cache_ = std::make_unique<CacheInvalidator>(fs_, std::move(cached));
    cache_->start(session);
}

void CachedMode::stop() {
    if (cache_) {
        cache_->stop();
    }
}

void CachedMode::key_changed(kvp::PoolId pool, std::string_view key, bool listing) {
    if (cache_) {
        cache_->key_changed(pool, key, listing);
    }
}

void CachedMode::listing_changed(kvp::PoolId pool) {
    if (cache_) {
        cache_->listing_changed(pool);
    }
}

void CachedMode::inode_later(Ino ino, std::chrono::milliseconds after) {
    if (cache_) {
        cache_->inode_later(ino, after);
    }
}

}  // namespace kvpfs
