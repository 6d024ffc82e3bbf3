#pragma once
// One pool file and everything done to it. Every read of the file holds a shared lock and
// every change an exclusive one (file_lock.hpp), only for the I/O itself. Between changes
// the pool is served from an in-memory snapshot, refreshed whenever ChangeWatch says the
// file may have changed. Pool files are changed in place only: never renamed or unlinked.
// A change that fails part-way puts the file back as it was before its lock is released.
//
// Thread-safe. Every operation waits at most `lock_timeout` from its own start, however many
// are queued: the file locks are waited for without holding mutex_, which guards the cache
// only (lock order: file locks, then mutex_). All failures throw kvp::Error with an errno.

#include <boost/filesystem/path.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "change_watch.hpp"
#include "file_lock.hpp"
#include "foreign_writes.hpp"
#include "limits.hpp"
#include "pool_open.hpp"
#include "pool_snapshot.hpp"
#include "ranked_mutex.hpp"
#include "record_editor.hpp"
#include "unique_fd.hpp"

namespace kvp {

struct PoolOptions {
    std::chrono::milliseconds lock_timeout{10'000};
    // May the first change create the file (mode 0644)? Only pool 1 through the mount.
    bool create_on_write = false;
};

class PoolFile {
  public:
    // `watch`: the pool directory's shared watcher (PoolDirectory's); nullptr: one of its own.
    PoolFile(boost::filesystem::path path, PoolOptions options,
             std::shared_ptr<DirectoryWatch> watch = nullptr);
    PoolFile(const PoolFile&) = delete;
    PoolFile& operator=(const PoolFile&) = delete;
    PoolFile(PoolFile&&) = delete;
    PoolFile& operator=(PoolFile&&) = delete;
    ~PoolFile() = default;

    // How a read that finds the file changed waits for its shared lock.
    enum class LockWait {
        bounded,  // up to lock_timeout (EAGAIN past it)
        // Not at all when the lock is held by someone else: the last state read (the last
        // released one) answers at once. For a lookup of a name, whose wait would hold the
        // kernel's directory lock and make the waits of every create behind it add up.
        // Before the first load there is none: it then waits as `bounded` does.
        none,
        // One attempt: EAGAIN at once when the lock is held and the file changed since the
        // last load (a load made ahead of need, e.g. kvpfs's at start, so that `none` has a
        // last released state to answer from).
        attempt,
    };
    // The current state: the cached snapshot when nothing changed, else re-read under a
    // shared lock. A missing file is an empty, non-existing snapshot.
    [[nodiscard]] std::shared_ptr<const PoolSnapshot> snapshot(LockWait wait = LockWait::bounded);

    [[nodiscard]] std::optional<std::string> get(std::string_view key);
    [[nodiscard]] std::vector<std::string> list();

    // Creates or replaces: the first record is rewritten in place, later duplicates removed,
    // a new key appended. Checks key and value against `limits` (EINVAL, ENAMETOOLONG, EFBIG).
    void set(std::string_view key, std::string_view value, Limits limits = Limits::pool);
    // Read-modify-write of one key under the exclusive lock: `change` gets the key's current
    // value as the locked file holds it (nullptr when absent) and returns the value to store,
    // or std::nullopt to leave the pool as it is. It may throw kvp::Error to refuse; what it
    // returns is checked against `limits` before anything is written, so a refusal stores
    // nothing. Returns true when a value was stored (also when it equals the old one).
    using ValueChange = std::function<std::optional<std::string>(const std::string* current)>;
    bool update(std::string_view key, const ValueChange& change, Limits limits = Limits::pool);
    // Creates `key` with an empty value if absent; returns true if it created it.
    bool create_if_absent(std::string_view key, Limits limits = Limits::pool);
    // Removes every record of `key`; false (and no change) when absent.
    bool remove(std::string_view key);
    // Renames under one lock, replacing `to`; false when `from` is absent.
    bool rename(std::string_view from, std::string_view to, Limits limits = Limits::pool);
    // Drops duplicate records (keeping the first of each key) and a partial tail.
    // Returns the number of records dropped.
    std::size_t compact();

    [[nodiscard]] const boost::filesystem::path& path() const { return path_; }

    // Called (with the pool's mutex held: it must not call back into this PoolFile, nor keep
    // either snapshot) each time the snapshot is read again from the file or found missing,
    // i.e. whenever a change made by someone else may have entered it, with the snapshot
    // every answer came from until now (nullptr before the first load; it includes the
    // changes made through this object, which edit it in place and do not call this) and the
    // new one. Every load is reported, also one superseded a moment later: a reader may
    // have been answered from it. For kvpfs's cache invalidation.
    using LoadListener = std::function<void(const PoolSnapshot* before, const PoolSnapshot& now)>;
    void set_load_listener(LoadListener listener);

  private:
    using Editor = RecordEditor;
    using Clock = std::chrono::steady_clock;
    // Opens the file (creating it if allowed and `create`), takes the exclusive lock, brings
    // the cache up to date from the locked file (pool_file_change.cpp) and hands `change` an
    // Editor over it; undoes the edits when `change` throws.
    template <typename Change>
    auto modify(bool create, Change&& change);
    // Opens the file for a change and locks it exclusively by `deadline`; `st` is its fstat
    // under the lock. Empty when missing. modify() checks that the path still names it.
    [[nodiscard]] OpenedPool open_locked_for_change(bool create, Clock::time_point deadline,
                                                    std::optional<FileLock>& lock);
    // Reads the whole locked file into a new snapshot (mutex_ held, begin_load() done).
    void load_locked(int fd, const struct stat& st);
    // Whether the locked file (its fstat `st`) holds exactly cache_'s records and size: read
    // back after a change of our own (mutex_ held). One read of the whole file.
    [[nodiscard]] bool file_holds_cache(int fd, const struct stat& st) const;
    // An empty snapshot for a missing file (mutex_ held).
    void set_missing();
    // A reader's handle on cache_ (mutex_ held).
    [[nodiscard]] std::shared_ptr<const PoolSnapshot> lend_cache();

    boost::filesystem::path path_;
    std::string name_;  // for messages
    PoolOptions options_;
    // Guards cache_, generation_, loads_ and watch_. Taken after the file lock (a change holds
    // both; a reader takes the file lock without it while it reads), never held while waiting
    // for the file lock; load_listener_ is called under it.
    RankedMutex mutex_{LockRank::pool_file};
    ChangeWatch watch_;
    // Whether another process wrote the file while a change of ours ran (mutex_ guards it):
    // when it says no, the change need not read the file back.
    ForeignWrites foreign_;
    std::shared_ptr<PoolSnapshot> cache_;  // edited in place only while no reader holds it
    std::uint64_t generation_ = 0;
    std::uint64_t loads_ = 0;  // counts installs of cache_ from the file
    LoadListener load_listener_;
};

}  // namespace kvp
