#include "pool_snapshot.hpp"

#include <algorithm>
#include <functional>

namespace kvp {

PoolSnapshot::PoolSnapshot(std::vector<SnapshotRecord> records, bool exists,
                           std::uint64_t file_size, struct timespec mtime, std::uint64_t generation)
    : records_(std::move(records)),
      exists_(exists),
      file_size_(file_size),
      mtime_(mtime),
      generation_(generation) {
    positions_.reserve(records_.size());
    for (std::size_t i = 0; i < records_.size(); ++i) {
        index_add(i);
    }
}

PoolSnapshot::PoolSnapshot(const PoolSnapshot& other)
    : records_(other.records_),
      positions_(other.positions_),
      exists_(other.exists_),
      file_size_(other.file_size_),
      mtime_(other.mtime_),
      generation_(other.generation_) {}

const PoolSnapshot::Positions* PoolSnapshot::positions(std::string_view key) const {
    const auto it = positions_.find(key);
    return it == positions_.end() ? nullptr : &it->second;
}

const SnapshotRecord* PoolSnapshot::find(std::string_view key) const {
    const Positions* at = positions(key);
    return at == nullptr ? nullptr : &records_[at->front()];
}

const std::vector<std::size_t>& PoolSnapshot::listing() const {
    const std::lock_guard guard(listing_mutex_);
    if (!listing_) {
        std::vector<std::size_t> firsts;
        firsts.reserve(positions_.size());
        for (const auto& [key, at] : positions_) {
            firsts.push_back(at.front());
        }
        std::sort(firsts.begin(), firsts.end());
        listing_ = std::move(firsts);
    }
    return *listing_;
}

void PoolSnapshot::index_add(std::size_t index) {
    const std::string& key = records_[index].record.key;
    if (key.empty()) {
        return;  // empty keys stay in place but are not keys
    }
    Positions& at = positions_[key];
    at.insert(std::upper_bound(at.begin(), at.end(), index), index);
}

void PoolSnapshot::index_remove(std::size_t index) {
    const std::string& key = records_[index].record.key;
    if (key.empty()) {
        return;
    }
    const auto it = positions_.find(key);
    if (it == positions_.end()) {
        return;
    }
    Positions& at = it->second;
    at.erase(std::remove(at.begin(), at.end(), index), at.end());
    if (at.empty()) {
        positions_.erase(it);
    }
}

void PoolSnapshot::overwrite(std::size_t index, SnapshotRecord record) {
    index_remove(index);
    records_[index] = std::move(record);
    index_add(index);
    listing_.reset();
}

void PoolSnapshot::append(SnapshotRecord record) {
    records_.push_back(std::move(record));
    index_add(records_.size() - 1);
    listing_.reset();
}

void PoolSnapshot::remove_by_filling(std::vector<std::size_t> indices) {
    std::sort(indices.begin(), indices.end(), std::greater<>());
    indices.erase(std::unique(indices.begin(), indices.end()), indices.end());
    for (const std::size_t hole : indices) {
        const std::size_t last = records_.size() - 1;
        index_remove(hole);
        if (hole != last) {
            index_remove(last);
            records_[hole] = std::move(records_[last]);
            records_.pop_back();
            index_add(hole);
        } else {
            records_.pop_back();
        }
    }
    listing_.reset();
}

void PoolSnapshot::set_file_state(bool exists, std::uint64_t size, struct timespec mtime,
                                  std::uint64_t generation) {
    exists_ = exists;
    file_size_ = size;
    mtime_ = mtime;
    generation_ = generation;
}

}  // namespace kvp
