// Picks the mount mode once, at start, from -o cache (options.cpp spells it): no op asks
// which mode it runs in afterwards.

#include "filesystem.hpp"
#include "mode_kinds.hpp"

namespace kvpfs {

std::unique_ptr<MountMode> make_mode(Filesystem& fs) {
    const Options& o = fs.options();
    if (o.cache_contents) {
        return std::make_unique<CacheAllMode>(fs);
    }
    if (o.cache) {
        return std::make_unique<CachedMode>(fs);
    }
    return std::make_unique<UncachedMode>(fs);
}

}  // namespace kvpfs
