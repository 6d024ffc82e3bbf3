#pragma once
// An immutable picture of one pool file as it was when last read or written under its lock:
// every whole record in file order (empty keys included) and an index from each key to the
// offsets of its records. Shared with readers by shared_ptr, so a reader never sees it change;
// PoolFile edits it in place only while no reader holds it (copy-on-write otherwise), which
// keeps a change O(1) in the pool's size.

#include <sys/types.h>
#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ranked_mutex.hpp"
#include "record_format.hpp"

namespace kvp {

struct SnapshotRecord {
    Record record;
    // The pool file's mtime when this key's value was last seen to change (docs/behaviour.md §4).
    struct timespec changed_at {};
    // The snapshot generation in which this record's key was first seen (a key removed and
    // made again is born again). A listing shows the keys born by its start (op_dir.cpp).
    std::uint64_t born = 0;
};

class PoolSnapshot {
  public:
    PoolSnapshot() = default;
    PoolSnapshot(std::vector<SnapshotRecord> records, bool exists, std::uint64_t file_size,
                 struct timespec mtime, std::uint64_t generation);
    PoolSnapshot(const PoolSnapshot& other);
    PoolSnapshot& operator=(const PoolSnapshot&) = delete;
    PoolSnapshot(PoolSnapshot&&) = delete;
    PoolSnapshot& operator=(PoolSnapshot&&) = delete;
    ~PoolSnapshot() = default;

    // The first record (lowest offset) of `key`, or nullptr. Empty keys are never found.
    [[nodiscard]] const SnapshotRecord* find(std::string_view key) const;
    // Indices (into records()) of the first record of each distinct non-empty key, in file
    // order. Computed on first use.
    [[nodiscard]] const std::vector<std::size_t>& listing() const;
    // Calls visit(key, its first record) for each distinct non-empty key, in no set order.
    template <typename Visit>
    void for_each_key(Visit&& visit) const {
        for (const auto& [key, at] : positions_) {
            visit(std::string_view(key), records_[at.front()]);
        }
    }
    // Number of distinct non-empty keys.
    [[nodiscard]] std::size_t key_count() const { return positions_.size(); }
    [[nodiscard]] const std::vector<SnapshotRecord>& records() const { return records_; }
    [[nodiscard]] bool exists() const { return exists_; }
    // Size of the file when read, partial tail included.
    [[nodiscard]] std::uint64_t file_size() const { return file_size_; }
    [[nodiscard]] bool partial_tail() const { return file_size_ % kRecordSize != 0; }
    [[nodiscard]] struct timespec mtime() const { return mtime_; }
    // Grows each time the pool's content is seen to change; never repeats within a PoolFile.
    [[nodiscard]] std::uint64_t generation() const { return generation_; }

  private:
    friend class PoolFile;
    friend class RecordEditor;
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    using Positions = std::vector<std::size_t>;  // ascending record indices of one key

    [[nodiscard]] const Positions* positions(std::string_view key) const;
    // Edits, used by PoolFile only while it holds the sole reference.
    void overwrite(std::size_t index, SnapshotRecord record);
    void append(SnapshotRecord record);
    // Removes the records at `indices` the way the file does: each hole (highest first) is
    // filled by the last record, then the tail is dropped.
    void remove_by_filling(std::vector<std::size_t> indices);
    void set_file_state(bool exists, std::uint64_t size, struct timespec mtime,
                        std::uint64_t generation);
    void index_add(std::size_t index);
    void index_remove(std::size_t index);

    std::vector<SnapshotRecord> records_;
    std::unordered_map<std::string, Positions, Hash, std::equal_to<>> positions_;
    bool exists_ = false;
    std::uint64_t file_size_ = 0;
    struct timespec mtime_ {};
    std::uint64_t generation_ = 0;
    mutable std::atomic<int> readers_{0};  // handles lent out by PoolFile
    // Guards the sorted listing made on first use; taken under PoolFile's mutex or none.
    mutable RankedMutex listing_mutex_{LockRank::snapshot_listing};
    mutable std::optional<std::vector<std::size_t>> listing_;
};

}  // namespace kvp
