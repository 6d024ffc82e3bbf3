// PoolFile, the read side: the cached snapshot, change detection and (re)loading.
// The change side is in pool_file_change.cpp.
#include "pool_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "error.hpp"
#include "file_lock.hpp"
#include "log.hpp"
#include "record_reader.hpp"

namespace kvp {

PoolFile::PoolFile(boost::filesystem::path path, PoolOptions options,
                   std::shared_ptr<DirectoryWatch> watch)
    : path_(std::move(path)),
      name_(path_.string()),
      options_(options),
      watch_(watch != nullptr ? std::move(watch)
                              : std::make_shared<DirectoryWatch>(path_.parent_path().string()),
             path_.filename().string()) {}

void PoolFile::load_locked(int fd, const struct stat& st) {
    require_pool_file(st, name_);
    watch_.watch_file(fd, st);  // before the read: a write through another link stays pending
    if (log_debug_enabled()) {
        log(LogLevel::debug, name_ + ": reading " + std::to_string(st.st_size) + " bytes");
    }
    std::vector<SnapshotRecord> records;
    records.reserve(static_cast<std::size_t>(st.st_size) / kRecordSize);
    const std::uint64_t size =
        read_records(fd, name_, [&](std::span<const char, kRecordSize> bytes, std::uint64_t) {
            records.push_back(SnapshotRecord{decode_record(bytes), st.st_mtim, generation_ + 1});
        }).end();
    // A key keeps the time its value was last seen to change.
    bool same = cache_ != nullptr && cache_->records().size() == records.size();
    for (std::size_t i = 0; i < records.size(); ++i) {
        SnapshotRecord& now = records[i];
        if (same && !(cache_->records()[i].record == now.record)) {
            same = false;
        }
        if (cache_ != nullptr) {
            const SnapshotRecord* before = cache_->find(now.record.key);
            if (before != nullptr) {
                now.born = before->born;  // a key already known keeps its birth
                if (before->record.value == now.record.value) {
                    now.changed_at = before->changed_at;
                }
            }
        }
    }
    if (!same || cache_ == nullptr || !cache_->exists()) {
        ++generation_;
    }
    // What was read decides the size: a writer without a lock may have changed the file since
    // the fstat, and a later change must never trust a size it did not see.
    struct stat loaded = st;
    loaded.st_size = static_cast<off_t>(size);
    const auto before = std::exchange(
        cache_,
        std::make_shared<PoolSnapshot>(std::move(records), true, size, st.st_mtim, generation_));
    watch_.mark_loaded(&loaded);
    ++loads_;
    if (load_listener_) {
        load_listener_(before.get(), *cache_);
    }
}

bool PoolFile::file_holds_cache(int fd, const struct stat& st) const {
    if (static_cast<std::uint64_t>(st.st_size) != cache_->file_size()) {
        return false;
    }
    const std::vector<SnapshotRecord>& records = cache_->records();
    bool same = true;
    std::size_t i = 0;
    const RecordTail tail =
        read_records(fd, name_, [&](std::span<const char, kRecordSize> bytes, std::uint64_t) {
            same = same && i < records.size() && record_holds(bytes, records[i].record);
            ++i;
        });
    return same && i == records.size() && tail.end() == cache_->file_size();
}

void PoolFile::set_missing() {
    if (cache_ == nullptr || cache_->exists()) {
        ++generation_;
    }
    const auto before =
        std::exchange(cache_, std::make_shared<PoolSnapshot>(std::vector<SnapshotRecord>{}, false,
                                                             0, timespec{}, generation_));
    watch_.mark_loaded(nullptr);
    ++loads_;
    if (load_listener_) {
        load_listener_(before.get(), *cache_);
    }
}

void PoolFile::set_load_listener(LoadListener listener) {
    const std::lock_guard guard(mutex_);
    load_listener_ = std::move(listener);
}

std::shared_ptr<const PoolSnapshot> PoolFile::snapshot(LockWait wait) {
    const auto started = Clock::now();
    const auto deadline = started + options_.lock_timeout;
    std::uint64_t seen = 0;
    bool have_cache = false;
    OpenedPool opened;
    {
        const std::lock_guard guard(mutex_);
        if (cache_ != nullptr && !watch_.maybe_changed()) {
            return lend_cache();
        }
        seen = loads_;
        have_cache = cache_ != nullptr;
        opened = open_pool_file(name_, PoolAccess::read);
        if (!opened.fd) {
            // Events drained before this second look cannot hide a creation from it.
            watch_.begin_load();
            opened = open_pool_file(name_, PoolAccess::read);
            if (!opened.fd) {
                set_missing();
                return lend_cache();
            }
        }
    }
    // The wait for the lock holds no mutex: other pools' and other threads' operations, and
    // reads answered from the cache, go on meanwhile.
    std::optional<FileLock> lock;
    if (wait == LockWait::none && have_cache) {
        try {
            lock.emplace(opened.fd.get(), LockMode::shared, started, name_);  // one attempt
        } catch (const Error& e) {
            if (e.errno_value() != EAGAIN) {
                throw;
            }
            const std::lock_guard guard(mutex_);
            return lend_cache();  // held by someone else: the last released state
        }
    } else {
        lock.emplace(opened.fd.get(), LockMode::shared,
                     wait == LockWait::attempt ? started : deadline, name_);
    }
    const std::lock_guard guard(mutex_);
    if (loads_ != seen && cache_ != nullptr && !watch_.maybe_changed()) {
        return lend_cache();  // another thread loaded it meanwhile
    }
    watch_.begin_load();
    struct stat st {};
    if (::fstat(opened.fd.get(), &st) != 0) {
        throw_errno("fstat " + name_);
    }
    load_locked(opened.fd.get(), st);
    // The descriptor was opened before the wait for the lock, and the events of a rename over
    // the name or of its removal meanwhile were just drained: this answer may be the old file
    // (it overlapped the replacement), the next one must read what the path names now.
    struct stat now {};
    if (::lstat(name_.c_str(), &now) != 0 || now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
        watch_.invalidate();
    }
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

}  // namespace kvp
