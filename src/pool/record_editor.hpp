#pragma once
// Applies record edits to a pool file held under its exclusive lock and, in step, to the
// cached snapshot of it. Writes are ordered so that a SIGKILL at any moment leaves every key
// reading its old or its new value (docs/engine.md, "Surviving SIGKILL"), and every byte a
// write is about to replace is saved in an UndoJournal first, so that a change failing
// part-way can be undone (rollback()) before the lock is released.
//
// A partial tail is cut off before the first write of a change, and only then: reading never
// changes the file. The size used is the locked file's own (fstat), never a snapshot's.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pool_snapshot.hpp"
#include "record_format.hpp"
#include "undo_journal.hpp"

namespace kvp {

class RecordEditor {
  public:
    // `fd` is the locked file (-1 when it does not exist) and `file_size` its size by fstat
    // under the lock; `snapshot` has been checked to describe it. Keys new to the pool are
    // born in generation `generation` (the one the change makes).
    RecordEditor(int fd, std::uint64_t file_size, PoolSnapshot& snapshot, const std::string& name,
                 std::uint64_t generation);

    [[nodiscard]] PoolSnapshot& snapshot() { return snapshot_; }
    [[nodiscard]] bool changed() const { return changed_; }
    [[nodiscard]] const std::vector<std::string>& touched_keys() const { return touched_; }

    // Replaces the record at `index` (callers remove the key's later duplicates first).
    void overwrite(std::size_t index, std::string_view key, std::string_view value);
    void append(std::string_view key, std::string_view value);
    // Removes the records at `indices`: each hole, highest first, takes the last record.
    void remove(std::vector<std::size_t> indices);
    void cut_partial_tail();
    // Puts the file back as it was before the first edit (see UndoJournal::rollback).
    bool rollback() noexcept { return journal_.rollback(); }

  private:
    [[nodiscard]] std::size_t first_overtaken(std::size_t last, std::size_t hole) const;
    void move_record(std::size_t from, std::size_t to);
    bool write_value_in_place(std::size_t index, const RecordBytes& bytes, std::size_t old_length,
                              std::size_t new_length);
    void write_revealed(std::size_t index, const RecordBytes& bytes);
    void write_appended(std::size_t index, const RecordBytes& bytes);
    void write_at(const char* data, std::size_t size, std::uint64_t offset);
    // A write whose old bytes the journal already saved (a wider before_write came first).
    void write_saved(const char* data, std::size_t size, std::uint64_t offset);
    void before_write();
    void truncate_to(std::uint64_t size);

    int fd_;
    std::uint64_t file_size_;
    PoolSnapshot& snapshot_;
    const std::string& name_;
    std::uint64_t generation_;
    UndoJournal journal_;
    bool tail_checked_ = false;
    bool changed_ = false;
    std::vector<std::string> touched_;
};

}  // namespace kvp
