#include "undo_journal.hpp"

#include <algorithm>

#include "error.hpp"
#include "file_io.hpp"
#include "log.hpp"

namespace kvp {

UndoJournal::UndoJournal(int fd, std::uint64_t size, const std::string& what)
    : fd_(fd), original_size_(size), current_size_(size), what_(what) {}

void UndoJournal::save(std::uint64_t from, std::uint64_t to) {
    // Bytes past the old end are the change's own: the final cut removes them.
    to = std::min({to, current_size_, original_size_});
    if (from >= to) {
        return;
    }
    Saved saved{from, std::string(to - from, '\0')};
    pread_all(fd_, saved.bytes.data(), saved.bytes.size(), static_cast<off_t>(from), what_);
    saved_.push_back(std::move(saved));
}

void UndoJournal::before_write(std::uint64_t offset, std::size_t length) {
    save(offset, offset + length);
    current_size_ = std::max(current_size_, offset + length);
}

void UndoJournal::before_truncate(std::uint64_t size) {
    save(size, current_size_);
    current_size_ = size;
}

bool UndoJournal::rollback() noexcept {
    try {
        for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
            pwrite_all(fd_, it->bytes.data(), it->bytes.size(), static_cast<off_t>(it->offset),
                       what_);
        }
        ftruncate_or_throw(fd_, original_size_, what_);
        saved_.clear();
        current_size_ = original_size_;
        return true;
    } catch (const Error& e) {
        log(LogLevel::error, what_ + ": could not undo a failed change: " + e.what());
    } catch (...) {
        log(LogLevel::error, what_ + ": could not undo a failed change");
    }
    return false;
}

}  // namespace kvp
