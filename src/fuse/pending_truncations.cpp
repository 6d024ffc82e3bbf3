#include "pending_truncations.hpp"

#include <algorithm>

namespace kvpfs {

void PendingTruncations::add(Ino ino, Clock::time_point due) {
    std::lock_guard lock(mutex_);
    due_[ino] = due;
}

PendingTruncations::Clock::time_point PendingTruncations::next_due() const {
    std::lock_guard lock(mutex_);
    auto soonest = Clock::time_point::max();
    for (const auto& entry : due_) {
        soonest = std::min(soonest, entry.second);
    }
    return soonest;
}

bool PendingTruncations::contains(Ino ino) const {
    std::lock_guard lock(mutex_);
    return due_.count(ino) != 0;
}

bool PendingTruncations::take(Ino ino) {
    std::lock_guard lock(mutex_);
    return due_.erase(ino) != 0;
}

std::vector<Ino> PendingTruncations::due(Clock::time_point now) const {
    std::lock_guard lock(mutex_);
    std::vector<Ino> out;
    for (const auto& [ino, at] : due_) {
        if (at <= now) {
            out.push_back(ino);
        }
    }
    return out;
}

std::vector<Ino> PendingTruncations::all() const {
    std::lock_guard lock(mutex_);
    std::vector<Ino> out;
    out.reserve(due_.size());
    for (const auto& entry : due_) {
        out.push_back(entry.first);
    }
    return out;
}

}  // namespace kvpfs
