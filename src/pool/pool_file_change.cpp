// PoolFile, the change side: every change runs under the exclusive lock on a file checked to
// be the one the path names, against a cache checked to describe that file (its identity,
// size and ctime, and the pending change events), and is undone when it fails part-way.
#include <sys/stat.h>

#include <chrono>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_set>
#include <utility>

#include "error.hpp"
#include "log.hpp"
#include "pool_file.hpp"

namespace kvp {
namespace {

void check_or_throw(Violation v, bool is_key, std::string_view text) {
    if (v == Violation::none) {
        return;
    }
    const std::string shown(text.substr(0, 64));
    throw Error(is_key ? key_errno(v) : value_errno(v),
                std::string(is_key ? "key \"" : "value for key \"") + shown + "\": " + describe(v));
}

bool same_file(const struct stat& a, const struct stat& b) {
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

// The positions of `key` after its first record (copied: editing moves records).
std::vector<std::size_t> later_duplicates(const std::vector<std::size_t>* at) {
    return at == nullptr ? std::vector<std::size_t>{}
                         : std::vector<std::size_t>(at->begin() + 1, at->end());
}

}  // namespace

OpenedPool PoolFile::open_locked_for_change(bool create, Clock::time_point deadline,
                                            std::optional<FileLock>& lock) {
    const PoolAccess access =
        create && options_.create_on_write ? PoolAccess::create : PoolAccess::write;
    OpenedPool opened = open_pool_file(name_, access, false);
    if (opened.fd) {
        lock.emplace(opened.fd.get(), LockMode::exclusive, deadline, name_);
        // The state under the lock, for the checks modify() makes.
        if (::fstat(opened.fd.get(), &opened.st) != 0) {
            throw_errno("fstat " + name_);
        }
        require_pool_file(opened.st, name_);
    }
    return opened;
}

template <typename Change>
auto PoolFile::modify(bool create, Change&& change) {
    const auto deadline = Clock::now() + options_.lock_timeout;
    // Declared before the lock, so destroyed after it: the lock is released on the descriptor
    // it was taken on, never on a number another thread's open reused after a close.
    OpenedPool opened;
    std::optional<FileLock> lock;
    std::unique_lock guard(mutex_, std::defer_lock);
    bool foreign_seen = false;
    for (;;) {
        // Opened and locked without mutex_: a wait here holds up no other operation.
        opened = open_locked_for_change(create, deadline, lock);
        guard.lock();
        // Writes by other processes are reported to foreign_. Any since the last drain (also
        // one the look below sees: its inotify event may come after the look) make the change
        // read the file back; if none comes until its end, it need not.
        if (opened.fd) {
            (void)foreign_.watch(opened.fd.get(), opened.st);
            foreign_seen = foreign_.drain() || foreign_seen;
        }
        // Events first: whatever arrives after this stays pending.
        const bool events = watch_.maybe_changed();
        if (opened.fd) {
            const bool stale = cache_ == nullptr || !cache_->exists() || events ||
                               watch_.differs_from_loaded(opened.st);
            // The file may have been replaced (renamed over, its directory swapped) while we
            // waited for the lock: a change made to the old one would be lost. When no event
            // came since the last load and this is the file loaded then, the path still names
            // it (a rename, creation or removal of the name, and any move of the directory,
            // would have queued one); otherwise ask the path.
            if (!stale && watch_.using_inotify()) {
                break;
            }
            struct stat now {};
            if (::lstat(name_.c_str(), &now) == 0 && same_file(now, opened.st)) {
                if (stale) {
                    watch_.begin_load();
                    load_locked(opened.fd.get(), opened.st);
                }
                break;
            }
            guard.unlock();
            lock.reset();
            opened = OpenedPool{};
            if (Clock::now() >= deadline) {
                throw Error(EAGAIN, name_ + " kept being replaced while waiting for its lock");
            }
            continue;
        }
        // Missing: look again after draining, so a creation racing with the open is either
        // seen here (and the change made to that file) or stays pending.
        watch_.begin_load();
        struct stat st {};
        if (::lstat(name_.c_str(), &st) != 0) {
            set_missing();
            break;
        }
        guard.unlock();
        if (Clock::now() >= deadline) {
            throw Error(EAGAIN, name_ + " kept appearing and disappearing during a change");
        }
    }
    using Result = std::invoke_result_t<Change&, Editor&>;
    for (;;) {
        // Readers hold a snapshot for one request's lookups only (no handle keeps one), and no
        // new reader can start while mutex_ is held: wait a moment for them rather than copy
        // the whole pool (a copy costs time, and its memory stays in the heap afterwards).
        const auto copy_after = Clock::now() + std::chrono::milliseconds(2);
        while (cache_->readers_.load(std::memory_order_acquire) != 0 && Clock::now() < copy_after) {
            std::this_thread::yield();
        }
        if (cache_->readers_.load(std::memory_order_acquire) != 0) {
            // A reader still holds it (perhaps this very thread's caller): copy on write.
            if (log_debug_enabled()) {
                log(LogLevel::debug, name_ + ": copying the snapshot (a reader holds it)");
            }
            cache_ = std::make_shared<PoolSnapshot>(*cache_);
        }
        // The size the cache was read with: what the edit's tail check uses, never a guess.
        Editor editor(opened.fd.get(), cache_->file_size(), *cache_, name_, generation_ + 1);
        std::optional<Result> result;
        struct stat st {};
        // What the change wrote: each key's value, as its first record must read afterwards.
        std::vector<std::pair<std::string, std::string>> written;
        try {
            result.emplace(change(editor));
            if (!editor.changed()) {
                return std::move(*result);
            }
            // Our writes queued events, and so may a writer without a lock whose write landed
            // meanwhile: inotify cannot tell them apart (repeated events merge). Drain them
            // all; unless fanotify says only this process wrote the file since the change
            // began, read it back: what we wrote is there and nothing else changed, or it is
            // read again below. A write landing after the drain stays pending.
            watch_.begin_load();
            // After the inotify drain: a write whose inotify event it took has its fanotify
            // event queued already (foreign_writes.cpp).
            const bool maybe_foreign = foreign_.drain() || std::exchange(foreign_seen, false);
            if (::fstat(opened.fd.get(), &st) != 0) {
                throw_errno("fstat " + name_);
            }
            for (const std::string& key : editor.touched_keys()) {
                if (const auto* at = cache_->positions(key); at != nullptr) {
                    cache_->records_[at->front()].changed_at = st.st_mtim;
                    written.emplace_back(key, cache_->records()[at->front()].record.value);
                }
            }
            const std::uint64_t size = cache_->records().size() * kRecordSize;
            cache_->set_file_state(true, size, st.st_mtim, ++generation_);
            if ((!maybe_foreign && static_cast<std::uint64_t>(st.st_size) == size) ||
                file_holds_cache(opened.fd.get(), st)) {
                watch_.mark_own_change(st);
                return std::move(*result);
            }
        } catch (...) {
            // Put back every byte the change overwrote and the old size while the lock is
            // still held, then read the file again next time (the cache was edited in step; it
            // stays until then so that keys keep their mtime and birth). A change refused
            // before its first write leaves file and cache as they were.
            if (editor.changed()) {
                if (!editor.rollback()) {
                    log(LogLevel::error, name_ + ": a failed change could not be undone");
                }
                watch_.invalidate();
            }
            throw;
        }
        // Someone wrote without a lock while the change was made (cloud-init rewrites a pool
        // whole at boot): read what the file holds now. Nothing is undone: the bytes our
        // change replaced may already be the other writer's.
        log(LogLevel::info, name_ +
                                ": changed by a process without a lock while kvpfs changed it: "
                                "read again");
        load_locked(opened.fd.get(), st);
        bool stored = true;
        for (const auto& [key, value] : written) {
            const SnapshotRecord* now = cache_->find(key);
            stored = stored && now != nullptr && now->record.value == value;
        }
        if (stored) {
            return std::move(*result);  // whole, beside the other writer's change
        }
        // Overwritten or hidden by an older duplicate: made again on what the file holds now.
        if (Clock::now() >= deadline) {
            throw Error(EIO, name_ +
                                 ": kept being rewritten by a process without a lock while "
                                 "this change was made; the change is not in it");
        }
        log(LogLevel::warning, name_ +
                                   ": a change was overwritten by a process writing without a "
                                   "lock: made again");
    }
}

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
        const std::optional<std::string> value = change(
            at == nullptr ? nullptr : &editor.snapshot().records()[at->front()].record.value);
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
