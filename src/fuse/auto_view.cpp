#include "auto_view.hpp"

namespace kvpfs {
namespace {

// The intrinsic item `key` of auto/, computed now, for a key the pool file does not hold;
// nullopt for any other pool or name, and with -o auto=file.
std::optional<kvp::SnapshotRecord> intrinsic_record(Filesystem& fs, kvp::PoolId pool,
                                                    std::string_view key) {
    kvp::AutoPoolView* view = fs.auto_view();
    if (pool != kvp::PoolId::automatic || view == nullptr) {
        return std::nullopt;
    }
    return view->intrinsic(key);
}

}  // namespace

ShownRecord::ShownRecord(Filesystem& fs, kvp::PoolId pool, const kvp::PoolSnapshot& snap,
                         std::string_view key)
    : rec_(snap.find(key)) {
    if (rec_ == nullptr && (intrinsic_ = intrinsic_record(fs, pool, key))) {
        rec_ = &*intrinsic_;
    }
}

std::vector<std::string_view> intrinsic_names(Filesystem& fs, kvp::PoolId pool,
                                              const kvp::PoolSnapshot& snap) {
    kvp::AutoPoolView* view = fs.auto_view();
    if (pool != kvp::PoolId::automatic || view == nullptr) {
        return {};
    }
    return view->missing_names(snap);
}

void start_intrinsic_lookups(Filesystem& fs) {
    if (kvp::AutoPoolView* view = fs.auto_view()) {
        view->items().start();
    }
}

}  // namespace kvpfs
