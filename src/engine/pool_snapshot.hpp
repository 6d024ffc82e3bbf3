#pragma once
// An immutable picture of one pool file as it was when last read under its lock:
// every whole record in file order (empty keys included) and an index from key to its
// first record. Shared with readers by shared_ptr, so a reader never sees it change.

#include <sys/types.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "record_format.hpp"

namespace kvp {

struct SnapshotRecord {
    Record record;
    // The pool file's mtime when this key's value was last seen to change (CONTRACT §4).
    struct timespec changed_at {};
};

class PoolSnapshot {
public:
    PoolSnapshot() = default;
    PoolSnapshot(std::vector<SnapshotRecord> records, bool exists, std::uint64_t file_size,
                 struct timespec mtime, std::uint64_t generation);

    // The first record of `key`, or nullptr.
    [[nodiscard]] const SnapshotRecord* find(std::string_view key) const;
    // Distinct non-empty keys, in the order of their first record.
    [[nodiscard]] const std::vector<std::size_t>& listing() const { return listing_; }
    [[nodiscard]] const std::vector<SnapshotRecord>& records() const { return records_; }
    [[nodiscard]] bool exists() const { return exists_; }
    [[nodiscard]] std::uint64_t file_size() const { return file_size_; }
    [[nodiscard]] bool partial_tail() const { return file_size_ % kRecordSize != 0; }
    [[nodiscard]] struct timespec mtime() const { return mtime_; }
    // Grows by one each time the pool's content is seen to change; never repeats.
    [[nodiscard]] std::uint64_t generation() const { return generation_; }

private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };
    std::vector<SnapshotRecord> records_;
    std::unordered_map<std::string, std::size_t, Hash, std::equal_to<>> first_;
    std::vector<std::size_t> listing_;
    bool exists_ = false;
    std::uint64_t file_size_ = 0;
    struct timespec mtime_ {};
    std::uint64_t generation_ = 0;
};

}  // namespace kvp
