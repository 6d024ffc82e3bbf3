#include "pool_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <unordered_set>

#include "error.hpp"
#include "file_lock.hpp"
#include "log.hpp"

namespace kvp {
namespace {

void write_all(int fd, const char* data, std::size_t size, off_t offset, const std::string& what) {
    while (size > 0) {
        const ssize_t n = ::pwrite(fd, data, size, offset);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("write to " + what);
        }
        data += n;
        size -= static_cast<std::size_t>(n);
        offset += n;
    }
}

void read_all(int fd, char* data, std::size_t size, off_t offset, const std::string& what) {
    while (size > 0) {
        const ssize_t n = ::pread(fd, data, size, offset);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            throw Error(n < 0 ? errno : EIO, "read of " + what + " came up short");
        }
        data += n;
        size -= static_cast<std::size_t>(n);
        offset += n;
    }
}

struct stat fstat_or_throw(int fd, const std::string& what) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        throw_errno("fstat " + what);
    }
    if (!S_ISREG(st.st_mode)) {
        throw Error(EIO, what + " is not a regular file");
    }
    return st;
}

void check_or_throw(Violation v, bool is_key, std::string_view text) {
    if (v == Violation::none) {
        return;
    }
    const std::string shown(text.substr(0, 64));
    throw Error(is_key ? key_errno(v) : value_errno(v),
                std::string(is_key ? "key \"" : "value for key \"") + shown + "\": " + describe(v));
}

}  // namespace

// Applies record edits to the locked file and, in step, to the cached snapshot. A partial
// tail is cut off before the first write, and only then: reading never changes the file.
class PoolFile::Editor {
  public:
    Editor(int fd, PoolSnapshot& snapshot, const std::string& name)
        : fd_(fd), snapshot_(snapshot), name_(name) {}

    [[nodiscard]] PoolSnapshot& snapshot() { return snapshot_; }
    [[nodiscard]] bool changed() const { return changed_; }
    [[nodiscard]] const std::vector<std::string>& touched_keys() const { return touched_; }

    // Replaces the record at `index` so that a kill at any moment leaves the key reading its
    // old or its new value, never a mix (a kill stops a write at a page boundary, and records
    // are not page-aligned). The same key with a new value is rewritten in place in an order
    // that keeps it readable (write_value_in_place); otherwise a copy of the new record is
    // staged at the end first, then the old record is hidden and rewritten (write_revealed).
    // Callers remove the key's later duplicates before, so nothing else can surface meanwhile.
    void overwrite(std::size_t index, std::string_view key, std::string_view value) {
        before_write();
        const RecordBytes bytes = encode_record(key, value);
        const Record& old = snapshot_.records()[index].record;
        if (old.key != key || !write_value_in_place(index, bytes, old.value.size(), value.size())) {
            const std::size_t end = snapshot_.records().size();
            write_appended(end, bytes);
            write_revealed(index, bytes);
            truncate_to(end * kRecordSize);
        }
        snapshot_.overwrite(index, Record{std::string(key), std::string(value)}, {});
        touched_.emplace_back(key);
    }

    void append(std::string_view key, std::string_view value) {
        before_write();
        write_appended(snapshot_.records().size(), encode_record(key, value));
        snapshot_.append(Record{std::string(key), std::string(value)}, {});
        touched_.emplace_back(key);
    }

    // Each hole, highest first, takes the file's last record; then the file is cut once.
    // A kill in between leaves whole records (at worst a moved record twice, reading the same).
    // When the last record is a later duplicate of a key whose first record lies above the
    // hole, moving it would make it that key's first record and change what the key reads;
    // instead the key's first record moves into the hole and the last record takes its place,
    // so every key keeps its records and the value it reads.
    void remove(std::vector<std::size_t> indices) {
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

    void cut_partial_tail() {
        if (tail_checked_) {
            return;
        }
        tail_checked_ = true;
        if (fd_ < 0) {
            throw Error(ENOENT, name_ + " does not exist (kvpfs creates only the guest pool)");
        }
        const std::uint64_t whole = snapshot_.records().size() * kRecordSize;
        if (snapshot_.file_size() != whole) {
            log(LogLevel::warning, name_ + ": cutting off a partial record of " +
                                       std::to_string(snapshot_.file_size() - whole) +
                                       " bytes at offset " + std::to_string(whole));
            truncate_to(whole);
        }
    }

  private:
    // The first record of the last record's key when that lies above `hole` (a later
    // duplicate moved into the hole would overtake it), else `last`.
    [[nodiscard]] std::size_t first_overtaken(std::size_t last, std::size_t hole) const {
        const std::string& key = snapshot_.records()[last].record.key;
        if (key.empty()) {
            return last;
        }
        const std::size_t first = snapshot_.positions(key)->front();
        return first < last && hole < first ? first : last;
    }

    // Copies record `from` over record `to`, in the file (its bytes as they are: garbage after
    // a NUL, unterminated fields and all) and in the snapshot.
    void move_record(std::size_t from, std::size_t to) {
        RecordBytes bytes{};
        read_all(fd_, bytes.data(), bytes.size(), static_cast<off_t>(from * kRecordSize), name_);
        write_revealed(to, bytes);
        const SnapshotRecord moved = snapshot_.records()[from];
        snapshot_.overwrite(to, moved.record, moved.changed_at);
    }

    // The key stays, so only the value field is written, in at most two writes that each lie
    // within one page (a write within a page is all or nothing under SIGKILL). With the field
    // split at the page boundary into A and B: B first when the old value ends in A (the read
    // still stops at the old NUL), A first when the new value ends in A (the read already stops
    // at the new NUL). False when both values cross the boundary: no order is safe.
    bool write_value_in_place(std::size_t index, const RecordBytes& bytes, std::size_t old_length,
                              std::size_t new_length) {
        constexpr std::size_t kPage = 4096;
        const std::size_t field = index * kRecordSize + kKeyFieldSize;
        const std::size_t split = (field / kPage + 1) * kPage - field;
        const char* value = bytes.data() + kKeyFieldSize;
        const auto write_part = [&](std::size_t from, std::size_t to) {
            write_all(fd_, value + from, to - from, static_cast<off_t>(field + from), name_);
        };
        if (split < kValueFieldSize && old_length >= split && new_length >= split) {
            return false;
        }
        // The key's bytes up to its NUL are the same, so however this write is cut the key
        // reads the same; it zero-fills what another writer left after the NUL.
        write_all(fd_, bytes.data(), kKeyFieldSize, static_cast<off_t>(index * kRecordSize), name_);
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
    void write_revealed(std::size_t index, const RecordBytes& bytes) {
        const auto at = static_cast<off_t>(index * kRecordSize);
        const char hidden = '\0';
        write_all(fd_, &hidden, 1, at, name_);
        write_all(fd_, bytes.data() + 1, bytes.size() - 1, at + 1, name_);
        write_all(fd_, bytes.data(), 1, at, name_);
    }

    // Appends at `index` (the current end) with one write: a kill inside it can leave only a
    // partial record at the end, which every reader ignores and the next change cuts off.
    void write_appended(std::size_t index, const RecordBytes& bytes) {
        write_all(fd_, bytes.data(), bytes.size(), static_cast<off_t>(index * kRecordSize), name_);
    }

    void before_write() {
        cut_partial_tail();
        changed_ = true;
    }

    void truncate_to(std::uint64_t size) {
        while (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
            if (errno != EINTR) {
                throw_errno("truncate " + name_);
            }
        }
        changed_ = true;
    }

    int fd_;
    PoolSnapshot& snapshot_;
    const std::string& name_;
    bool tail_checked_ = false;
    bool changed_ = false;
    std::vector<std::string> touched_;
};

PoolFile::PoolFile(boost::filesystem::path path, PoolOptions options)
    : path_(std::move(path)),
      name_(path_.string()),
      options_(options),
      watch_(path_.parent_path().string(), path_.filename().string()) {}

void PoolFile::load_locked(int fd) {
    const struct stat st = fstat_or_throw(fd, name_);
    std::vector<SnapshotRecord> records;
    records.reserve(static_cast<std::size_t>(st.st_size) / kRecordSize);
    // Read in modest chunks: a 10,000-record pool is 25 MiB, and the daemon's memory should
    // hold the decoded strings only.
    constexpr std::size_t kChunkRecords = 64;
    std::vector<char> chunk(kChunkRecords * kRecordSize);
    std::uint64_t offset = 0;
    std::size_t filled = 0;
    for (;;) {
        const ssize_t n = ::pread(fd, chunk.data() + filled, chunk.size() - filled,
                                  static_cast<off_t>(offset + filled));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("read " + name_);
        }
        filled += static_cast<std::size_t>(n);
        if (n == 0 || filled == chunk.size()) {
            const std::size_t whole = filled / kRecordSize;
            for (std::size_t i = 0; i < whole; ++i) {
                records.push_back(SnapshotRecord{decode_record(std::span<const char, kRecordSize>(
                                                     chunk.data() + i * kRecordSize, kRecordSize)),
                                                 st.st_mtim});
            }
            offset += whole * kRecordSize;
            const std::size_t rest = filled - whole * kRecordSize;
            std::copy_n(chunk.data() + whole * kRecordSize, rest, chunk.data());
            filled = rest;
            if (n == 0) {
                offset += rest;
                break;
            }
        }
    }
    // A key keeps the time its value was last seen to change.
    bool same = cache_ != nullptr && cache_->records().size() == records.size();
    for (std::size_t i = 0; i < records.size(); ++i) {
        SnapshotRecord& now = records[i];
        if (same && !(cache_->records()[i].record == now.record)) {
            same = false;
        }
        if (cache_ != nullptr) {
            const SnapshotRecord* before = cache_->find(now.record.key);
            if (before != nullptr && before->record.value == now.record.value) {
                now.changed_at = before->changed_at;
            }
        }
    }
    if (!same || cache_ == nullptr || !cache_->exists()) {
        ++generation_;
    }
    cache_ =
        std::make_shared<PoolSnapshot>(std::move(records), true, offset, st.st_mtim, generation_);
    watch_.mark_loaded(&st);
}

std::shared_ptr<const PoolSnapshot> PoolFile::snapshot() {
    const std::lock_guard guard(mutex_);
    if (cache_ != nullptr && !watch_.maybe_changed()) {
        return lend_cache();
    }
    UniqueFd fd(::open(name_.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) {
        if (errno != ENOENT) {
            throw_errno("open " + name_);
        }
        if (cache_ == nullptr || cache_->exists()) {
            ++generation_;
        }
        cache_ = std::make_shared<PoolSnapshot>(std::vector<SnapshotRecord>{}, false, 0, timespec{},
                                                generation_);
        watch_.mark_loaded(nullptr);
        return lend_cache();
    }
    const FileLock lock(fd.get(), LockMode::shared, options_.lock_timeout, name_);
    load_locked(fd.get());
    return lend_cache();
}

std::shared_ptr<const PoolSnapshot> PoolFile::lend_cache() {
    // Counted so that modify() knows, with acquire/release ordering, when no reader is left
    // and the snapshot may be edited in place. The handle keeps the snapshot alive too.
    cache_->readers_.fetch_add(1, std::memory_order_relaxed);
    std::shared_ptr<PoolSnapshot> keep = cache_;
    const PoolSnapshot* raw = keep.get();
    return {raw, [keep = std::move(keep)](const PoolSnapshot* snapshot) mutable {
                snapshot->readers_.fetch_sub(1, std::memory_order_release);
                keep.reset();
            }};
}

UniqueFd PoolFile::open_for_change(bool create) {
    constexpr int kFlags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
    for (;;) {
        UniqueFd fd(::open(name_.c_str(), kFlags));
        if (fd) {
            return fd;
        }
        if (errno != ENOENT) {
            throw_errno("open " + name_);
        }
        if (!create || !options_.create_on_write) {
            return UniqueFd();
        }
        fd.reset(::open(name_.c_str(), kFlags | O_CREAT | O_EXCL, 0644));
        if (fd) {
            // The mode is part of the contract, whatever the process's umask.
            if (::fchmod(fd.get(), 0644) != 0) {
                throw_errno("chmod " + name_);
            }
            log(LogLevel::info, "created " + name_);
            return fd;
        }
        if (errno != EEXIST) {
            throw_errno("create " + name_);
        }
    }
}

template <typename Change>
auto PoolFile::modify(bool create, Change&& change) {
    const std::lock_guard guard(mutex_);
    const UniqueFd fd = open_for_change(create);
    std::optional<FileLock> lock;
    if (fd) {
        lock.emplace(fd.get(), LockMode::exclusive, options_.lock_timeout, name_);
        if (cache_ == nullptr || !cache_->exists() || watch_.maybe_changed()) {
            load_locked(fd.get());
        }
    } else if (cache_ == nullptr || cache_->exists()) {
        ++generation_;
        cache_ = std::make_shared<PoolSnapshot>(std::vector<SnapshotRecord>{}, false, 0, timespec{},
                                                generation_);
        watch_.mark_loaded(nullptr);
    }
    if (cache_->readers_.load(std::memory_order_acquire) != 0) {
        cache_ = std::make_shared<PoolSnapshot>(*cache_);  // a reader holds the old one
    }
    try {
        Editor editor(fd.get(), *cache_, name_);
        auto result = change(editor);
        if (editor.changed()) {
            const struct stat st = fstat_or_throw(fd.get(), name_);
            for (const std::string& key : editor.touched_keys()) {
                if (const auto* at = cache_->positions(key); at != nullptr) {
                    cache_->records_[at->front()].changed_at = st.st_mtim;
                }
            }
            cache_->set_file_state(true, static_cast<std::uint64_t>(st.st_size), st.st_mtim,
                                   ++generation_);
            watch_.mark_loaded(&st);  // the events our own writes queued
        }
        return result;
    } catch (...) {
        cache_.reset();  // the file may be half-edited: read it again next time
        throw;
    }
}

std::optional<std::string> PoolFile::get(std::string_view key) {
    const auto snap = snapshot();
    const SnapshotRecord* found = snap->find(key);
    if (found == nullptr) {
        return std::nullopt;
    }
    return found->record.value;
}

std::vector<std::string> PoolFile::list() {
    const auto snap = snapshot();
    std::vector<std::string> keys;
    keys.reserve(snap->key_count());
    for (const std::size_t i : snap->listing()) {
        keys.push_back(snap->records()[i].record.key);
    }
    return keys;
}

namespace {
// The positions of `key` after its first record (copied: editing moves records).
std::vector<std::size_t> later_duplicates(const std::vector<std::size_t>* at) {
    return at == nullptr ? std::vector<std::size_t>{}
                         : std::vector<std::size_t>(at->begin() + 1, at->end());
}
}  // namespace

void PoolFile::set(std::string_view key, std::string_view value, Limits limits) {
    check_or_throw(check_key(key, limits), true, key);
    check_or_throw(check_value(value, limits), false, key);
    (void)update(
        key, [&](const std::string*) { return std::optional<std::string>(value); }, limits);
}

bool PoolFile::update(std::string_view key, const ValueChange& change, Limits limits) {
    check_or_throw(check_key(key, limits), true, key);
    return modify(true, [&](Editor& editor) {
        const auto* at = editor.snapshot().positions(key);
        const std::optional<std::string> value =
            change(at == nullptr ? nullptr : &editor.snapshot().records()[at->front()].record.value);
        if (!value) {
            return false;
        }
        check_or_throw(check_value(*value, limits), false, key);
        if (at == nullptr) {
            editor.append(key, *value);
            return true;
        }
        // Later duplicates go first: none may surface while the first record is rewritten.
        editor.remove(later_duplicates(at));
        const std::size_t first = editor.snapshot().positions(key)->front();
        if (editor.snapshot().records()[first].record.value != *value) {
            editor.overwrite(first, key, *value);
        }
        return true;
    });
}

bool PoolFile::create_if_absent(std::string_view key, Limits limits) {
    check_or_throw(check_key(key, limits), true, key);
    return modify(true, [&](Editor& editor) {
        if (editor.snapshot().positions(key) != nullptr) {
            return false;
        }
        editor.append(key, "");
        return true;
    });
}

bool PoolFile::remove(std::string_view key) {
    return modify(false, [&](Editor& editor) {
        const auto* at = editor.snapshot().positions(key);
        if (at == nullptr) {
            return false;
        }
        editor.remove(*at);
        return true;
    });
}

bool PoolFile::rename(std::string_view from, std::string_view to, Limits limits) {
    check_or_throw(check_key(to, limits), true, to);
    return modify(false, [&](Editor& editor) {
        PoolSnapshot& snap = editor.snapshot();
        if (snap.positions(from) == nullptr) {
            return false;
        }
        if (from == to) {
            return true;
        }
        // Steps ordered so that a kill between any two leaves `from` or `to` holding the value.
        editor.remove(later_duplicates(snap.positions(from)));
        const std::string value = snap.records()[snap.positions(from)->front()].record.value;
        if (snap.positions(to) == nullptr) {
            // The source's record becomes the target's.
            editor.overwrite(snap.positions(from)->front(), to, value);
        } else {
            editor.remove(later_duplicates(snap.positions(to)));
            editor.overwrite(snap.positions(to)->front(), to, value);
            editor.remove(*snap.positions(from));
        }
        return true;
    });
}

std::size_t PoolFile::compact() {
    return modify(false, [&](Editor& editor) -> std::size_t {
        std::vector<std::size_t> drop;
        std::unordered_set<std::string_view> seen;
        const auto& records = editor.snapshot().records();
        for (std::size_t i = 0; i < records.size(); ++i) {
            const std::string& key = records[i].record.key;
            if (!key.empty() && !seen.insert(key).second) {
                drop.push_back(i);
            }
        }
        if (editor.snapshot().exists()) {
            editor.cut_partial_tail();
        }
        const std::size_t dropped = drop.size();
        editor.remove(std::move(drop));
        return dropped;
    });
}

}  // namespace kvp
