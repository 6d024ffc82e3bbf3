#include "auto_pool_view.hpp"

namespace kvp {

AutoPoolView::AutoPoolView(IntrinsicSources sources, struct timespec since)
    : items_(std::move(sources)), since_(since) {}

std::vector<std::string_view> AutoPoolView::missing_names(const PoolSnapshot& snap) const {
    std::vector<std::string_view> out;
    out.reserve(kIntrinsicNames.size());
    for (const std::string_view name : kIntrinsicNames) {
        if (snap.find(name) == nullptr) {
            out.push_back(name);
        }
    }
    return out;
}

std::vector<std::string> AutoPoolView::keys(const PoolSnapshot& snap) const {
    std::vector<std::string> out;
    for (const std::size_t i : snap.listing()) {
        out.push_back(snap.records()[i].record.key);
    }
    for (const std::string_view name : missing_names(snap)) {
        out.emplace_back(name);
    }
    return out;
}

std::optional<SnapshotRecord> AutoPoolView::record(const PoolSnapshot& snap, std::string_view key) {
    if (const SnapshotRecord* rec = snap.find(key)) {
        return *rec;
    }
    return intrinsic(key);
}

void AutoPoolView::wait_for_host_name(std::chrono::milliseconds limit) const {
    (void)items_.names().wait_for(current_host_name(), limit);
}

std::optional<SnapshotRecord> AutoPoolView::intrinsic(std::string_view key) {
    const auto index = intrinsic_index(key);
    if (!index) {
        return std::nullopt;
    }
    std::string value = items_.value(*index);
    SnapshotRecord rec;
    rec.record.key = std::string(key);
    {
        std::lock_guard lock(mutex_);
        Seen& s = seen_[*index];
        if (!s.seen) {
            s = {true, value, since_};
        } else if (s.value != value) {
            s.value = value;
            clock_gettime(CLOCK_REALTIME, &s.changed_at);
        }
        rec.changed_at = s.changed_at;
    }
    rec.record.value = std::move(value);
    return rec;
}

}  // namespace kvp
