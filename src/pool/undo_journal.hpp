#pragma once
// What a change overwrote, kept in memory so that a change failing part-way (ENOSPC, EFBIG,
// EIO) can put the pool file back exactly as it was before its lock is released: every byte
// it overwrote, and the old size (a grown file is cut back). Only bytes that existed before
// the change are saved, and only the ones a write or a cut is about to touch: a record or
// two per change, read from the page cache.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvp {

class UndoJournal {
  public:
    UndoJournal(int fd, std::uint64_t size, const std::string& what);

    // Call before writing [offset, offset + length).
    void before_write(std::uint64_t offset, std::size_t length);
    // The bytes the last before_write() saved: what the file held there before the change
    // (shorter than asked when the range went past the old end).
    [[nodiscard]] std::string_view last_saved() const {
        return saved_.empty() ? std::string_view() : std::string_view(saved_.back().bytes);
    }
    // Call before cutting the file to `size`.
    void before_truncate(std::uint64_t size);
    // Writes the saved bytes back, newest first (so every step undoes its writes in reverse
    // of the order they were made, which keeps a kill meanwhile as safe as the change was),
    // then restores the old size. Never throws; false (and a logged error) when the file could
    // not be restored.
    bool rollback() noexcept;

  private:
    struct Saved {
        std::uint64_t offset;
        std::string bytes;
    };
    void save(std::uint64_t from, std::uint64_t to);

    int fd_;
    std::uint64_t original_size_;
    std::uint64_t current_size_;
    const std::string& what_;
    std::vector<Saved> saved_;
};

}  // namespace kvp
