#include "record_editor.hpp"

#include <algorithm>
#include <functional>

#include "error.hpp"
#include "file_io.hpp"
#include "log.hpp"

namespace kvp {

RecordEditor::RecordEditor(int fd, std::uint64_t file_size, PoolSnapshot& snapshot,
                           const std::string& name, std::uint64_t generation)
    : fd_(fd),
      file_size_(file_size),
      snapshot_(snapshot),
      name_(name),
      generation_(generation),
      journal_(fd, file_size, name) {}

// Replaces the record at `index` so that a kill at any moment leaves the key reading its
// old or its new value, never a mix (a kill stops a write at a page boundary, and records
// are not page-aligned). The same key with a new value is rewritten in place in an order
// that keeps it readable (write_value_in_place); otherwise a copy of the new record is
// staged at the end first, then the old record is hidden and rewritten (write_revealed).
// Callers remove the key's later duplicates before, so nothing else can surface meanwhile.
void RecordEditor::overwrite(std::size_t index, std::string_view key, std::string_view value) {
    before_write();
    const RecordBytes bytes = encode_record(key, value);
    const Record& old = snapshot_.records()[index].record;
    const std::uint64_t born = old.key == key ? snapshot_.records()[index].born : generation_;
    if (old.key != key || !write_value_in_place(index, bytes, old.value.size(), value.size())) {
        const std::size_t end = snapshot_.records().size();
        write_appended(end, bytes);
        write_revealed(index, bytes);
        truncate_to(end * kRecordSize);
    }
    snapshot_.overwrite(index,
                        SnapshotRecord{Record{std::string(key), std::string(value)}, {}, born});
    touched_.emplace_back(key);
}

void RecordEditor::append(std::string_view key, std::string_view value) {
    before_write();
    write_appended(snapshot_.records().size(), encode_record(key, value));
    snapshot_.append(SnapshotRecord{Record{std::string(key), std::string(value)}, {}, generation_});
    touched_.emplace_back(key);
}

// Each hole, highest first, takes the file's last record; then the file is cut once.
// A kill in between leaves whole records (at worst a moved record twice, reading the same).
// When the last record is a later duplicate of a key whose first record lies above the
// hole, moving it would make it that key's first record and change what the key reads;
// instead the key's first record moves into the hole and the last record takes its place,
// so every key keeps its records and the value it reads.
void RecordEditor::remove(std::vector<std::size_t> indices) {
    if (indices.empty()) {
        return;
    }
    before_write();
    std::sort(indices.begin(), indices.end(), std::greater<>());
    for (const std::size_t hole : indices) {
        const std::size_t last = snapshot_.records().size() - 1;
        if (hole != last) {
            const std::size_t first = first_overtaken(last, hole);
            if (first != last) {
                move_record(first, hole);
                move_record(last, first);
            } else {
                move_record(last, hole);
            }
        }
        snapshot_.remove_by_filling({last});
    }
    truncate_to(snapshot_.records().size() * kRecordSize);
}

void RecordEditor::cut_partial_tail() {
    if (tail_checked_) {
        return;
    }
    tail_checked_ = true;
    if (fd_ < 0) {
        throw Error(ENOENT, name_ + " does not exist (kvpfs creates only the guest pool)");
    }
    const std::uint64_t whole = snapshot_.records().size() * kRecordSize;
    // The snapshot was checked against the locked file; should they still disagree, nothing
    // is cut: a "cut" computed from a stale size could grow the file or drop whole records.
    if (file_size_ < whole || file_size_ - whole >= kRecordSize) {
        throw Error(EIO, name_ + " is " + std::to_string(file_size_) +
                             " bytes, not what was just read; change not made");
    }
    if (file_size_ != whole) {
        log(LogLevel::warning, name_ + ": cutting off a partial record of " +
                                   std::to_string(file_size_ - whole) + " bytes at offset " +
                                   std::to_string(whole));
        truncate_to(whole);
    }
}

// The first record of the last record's key when that lies above `hole` (a later
// duplicate moved into the hole would overtake it), else `last`.
std::size_t RecordEditor::first_overtaken(std::size_t last, std::size_t hole) const {
    const std::string& key = snapshot_.records()[last].record.key;
    if (key.empty()) {
        return last;
    }
    const std::size_t first = snapshot_.positions(key)->front();
    return first < last && hole < first ? first : last;
}

// Copies record `from` over record `to`, in the file (its bytes as they are: garbage after
// a NUL, unterminated fields and all) and in the snapshot.
void RecordEditor::move_record(std::size_t from, std::size_t to) {
    RecordBytes bytes{};
    pread_all(fd_, bytes.data(), bytes.size(), static_cast<off_t>(from * kRecordSize), name_);
    write_revealed(to, bytes);
    snapshot_.overwrite(to, snapshot_.records()[from]);
}

// The key stays, so only the value field is written, in at most two writes that each lie
// within one page (a write within a page is all or nothing under SIGKILL). With the field
// split at the page boundary into A and B: B first when the old value ends in A (the read
// still stops at the old NUL), A first when the new value ends in A (the read already stops
// at the new NUL). False when both values cross the boundary: no order is safe.
bool RecordEditor::write_value_in_place(std::size_t index, const RecordBytes& bytes,
                                        std::size_t old_length, std::size_t new_length) {
    constexpr std::size_t kPage = 4096;
    const std::size_t field = index * kRecordSize + kKeyFieldSize;
    const std::size_t split = (field / kPage + 1) * kPage - field;
    const char* value = bytes.data() + kKeyFieldSize;
    const auto write_part = [&](std::size_t from, std::size_t to) {
        write_saved(value + from, to - from, field + from);
    };
    if (split < kValueFieldSize && old_length >= split && new_length >= split) {
        return false;
    }
    // One read saves the whole record for the undo journal and shows the key field as it is.
    const std::uint64_t at = index * kRecordSize;
    journal_.before_write(at, kRecordSize);
    const std::string_view old_bytes = journal_.last_saved();
    // The key's bytes up to its NUL are the same, so however this write is cut the key
    // reads the same; it zero-fills what another writer left after the NUL (skipped when
    // the field is already exactly the key and NULs, as kvpfs and the host daemon leave it).
    if (old_bytes.size() != kRecordSize ||
        old_bytes.substr(0, kKeyFieldSize) != std::string_view(bytes.data(), kKeyFieldSize)) {
        write_saved(bytes.data(), kKeyFieldSize, at);
    }
    if (split >= kValueFieldSize) {
        write_part(0, kValueFieldSize);
    } else if (old_length < split) {
        write_part(split, kValueFieldSize);
        write_part(0, split);
    } else {
        write_part(0, split);
        write_part(split, kValueFieldSize);
    }
    return true;
}

// A kill stops a write at a page boundary, and records are not page-aligned, so one pwrite
// of a record can land in part. Records are therefore written hidden: an empty key is not a
// key, so the record's first key byte is zeroed (one byte: all or nothing), the rest
// written, and the first byte written last. Every moment shows the old record, no record,
// or the new one.
void RecordEditor::write_revealed(std::size_t index, const RecordBytes& bytes) {
    const std::uint64_t at = index * kRecordSize;
    const char hidden = '\0';
    write_at(&hidden, 1, at);
    write_at(bytes.data() + 1, bytes.size() - 1, at + 1);
    write_at(bytes.data(), 1, at);
}

// Appends at `index` (the current end) with one write: a kill inside it can leave only a
// partial record at the end, which every reader ignores and the next change cuts off. A
// failure inside it (ENOSPC, EFBIG) is undone by rollback().
void RecordEditor::write_appended(std::size_t index, const RecordBytes& bytes) {
    write_at(bytes.data(), bytes.size(), index * kRecordSize);
}

void RecordEditor::write_at(const char* data, std::size_t size, std::uint64_t offset) {
    journal_.before_write(offset, size);
    pwrite_all(fd_, data, size, static_cast<off_t>(offset), name_);
}

void RecordEditor::write_saved(const char* data, std::size_t size, std::uint64_t offset) {
    pwrite_all(fd_, data, size, static_cast<off_t>(offset), name_);
}

void RecordEditor::before_write() {
    cut_partial_tail();
    changed_ = true;
}

void RecordEditor::truncate_to(std::uint64_t size) {
    journal_.before_truncate(size);
    ftruncate_or_throw(fd_, size, name_);
    changed_ = true;
}

}  // namespace kvp
