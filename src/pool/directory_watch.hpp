#pragma once
// One watcher of the pool directory, shared by everyone who needs to know when a pool file may
// have changed: the engine's per-file ChangeWatch (one for each PoolFile, change_watch.hpp)
// and any thread that sleeps until something changed (a WatchObserver: kvpfs's cache thread).
// It owns the one inotify instance and the mount table's descriptor.
//
// The pool directory is followed by its path: when the path names another directory than the
// one watched (removed and made again, renamed away and replaced, mounted over, which sends no
// event at all) the watch moves to it and every file counts as changed. The directory is
// looked at again only when something may have moved it: an event on it or on any directory
// above it (each watched for being moved or removed; the parent also for the directory's name
// made, removed or renamed over, since the directory's own removal is reported only once no
// process has it open), a pool file's name removed from it, or a change of the mount table
// (the mount-info file polls ready after any mount or unmount; then each file's identity is
// checked too, for a mount over the file itself). A symbolic link on the path is followed the
// same way: the directory holding it is watched for the link's name made, removed or renamed
// over (`ln -sfn`), and the link's target is walked on. Where that cannot be set up (a
// relative path, no inotify) every look stats the directory instead.
//
// Whoever drains the queue (any subscriber, under mutex_) hands each event to every
// subscriber it concerns: a ChangeWatch's pending flag, an observer's list of touched names
// (and its eventfd). So no subscriber swallows an event another one needs.

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ranked_mutex.hpp"
#include "unique_fd.hpp"

namespace kvp {

class ChangeWatch;
class WatchObserver;

class DirectoryWatch {
  public:
    // `directory`: the pool directory's path as given (followed by that path).
    explicit DirectoryWatch(std::string directory);
    DirectoryWatch(const DirectoryWatch&) = delete;
    DirectoryWatch& operator=(const DirectoryWatch&) = delete;
    DirectoryWatch(DirectoryWatch&&) = delete;
    DirectoryWatch& operator=(DirectoryWatch&&) = delete;
    ~DirectoryWatch();

    [[nodiscard]] const std::string& directory() const { return directory_; }

  private:
    friend class ChangeWatch;
    friend class WatchObserver;

    // A directory on the way to the pool directory, watched for being moved or removed; with
    // `name`, also for that entry of it made, removed or renamed over (the pool directory's
    // own name in its parent, or a symbolic link on the path). One directory can appear more
    // than once (through "..", or links): its watch then serves every entry.
    struct AncestorWatch {
        int wd;
        std::string path;
        std::string name;
    };

    // All below: mutex_ held.
    // Reads every queued event and hands it out. False when inotify failed for good.
    void drain_events();
    // poll()s the queue and the mount table without waiting; drains, and on a mount table
    // change asks every subscriber to look at the path.
    void look();
    // The mount table changed (its notification was just consumed): every subscriber looks at
    // the path and its file's identity.
    void mount_table_changed();
    // Whether the mount table changed since the last poll of it (consumes the notification).
    bool poll_mount_table();
    // Stats the directory; when it is another one (or appeared, or went), follows it and
    // marks every file changed. Returns true if it followed.
    bool check_directory();
    // Moves the watches to whatever directory the path names now (none when missing).
    void follow_directory();
    // Watches every directory on the way to the pool directory, resolving symbolic links and
    // ".." as the kernel does (the link's own directory is watched for the link's name);
    // false when the path is relative or not all of it can be watched.
    bool watch_ancestors();
    // Adds (IN_MASK_ADD) the watch of one directory on the way; false when it fails.
    bool watch_on_the_way(const std::string& path, std::uint32_t mask, const std::string& name);
    void drop_watches();
    [[nodiscard]] bool watches_ancestor(int wd) const;
    // Whether `name` in the directory of watch `wd` is on the path (an entry event about it
    // may make the path lead elsewhere).
    [[nodiscard]] bool entry_on_the_path(int wd, const char* name) const;
    [[nodiscard]] bool using_inotify() const { return inotify_ok_ && wd_ >= 0; }
    // Every file may have changed (an overflow, the directory followed or gone).
    void all_changed();
    // The path may lead elsewhere now: every subscriber looks at it on its next look.
    void path_suspect();
    // An event named `name` (a pool file in the directory, or one's inode).
    void file_touched(const std::string& name);
    // Removes the inotify watch `wd` of a file unless another subscriber still uses it (two
    // names of one inode share one watch).
    void release_file_watch(const ChangeWatch& owner, int wd);

    const std::string directory_;
    // Taken after PoolFile::mutex_ (a ChangeWatch is asked under it) and by the cache thread
    // holding nothing; nothing but the log is taken under it; never held across a FUSE reply.
    // Guards everything below and each subscriber's watch state (ChangeWatch::pending_change_,
    // recheck_, file_wd_; WatchObserver's touched names).
    mutable RankedMutex mutex_{LockRank::pool_watch};
    // Both descriptors live as long as this object (observers poll them without mutex_); after
    // a failed read the queue is no longer trusted (inotify_ok_) but stays open.
    UniqueFd inotify_;
    UniqueFd mounts_;  // the mount-info file: polls POLLPRI once after each mount table change
    bool inotify_ok_ = false;
    int wd_ = -1;
    std::vector<AncestorWatch> ancestors_;
    bool path_watched_ = false;
    bool have_directory_ = false;
    dev_t directory_dev_ = 0;
    ino_t directory_ino_ = 0;
    std::vector<ChangeWatch*> files_;
    std::vector<WatchObserver*> observers_;
};

// For a thread that sleeps until a pool file may have changed: poll() fds() (POLLIN on the
// first two, POLLPRI on the mount table; -1 where there is none), then collect() what woke
// it. Changes found by any subscriber's look reach it too (its eventfd).
class WatchObserver {
  public:
    // Throws kvp::Error when no eventfd can be had.
    explicit WatchObserver(std::shared_ptr<DirectoryWatch> watch);
    WatchObserver(const WatchObserver&) = delete;
    WatchObserver& operator=(const WatchObserver&) = delete;
    WatchObserver(WatchObserver&&) = delete;
    WatchObserver& operator=(WatchObserver&&) = delete;
    ~WatchObserver();

    struct Fds {
        int changes;      // POLLIN: something was handed to this observer
        int inotify;      // POLLIN: events queued, not drained yet
        int mount_table;  // POLLPRI: the mount table changed
    };
    [[nodiscard]] Fds fds() const;

    struct Touched {
        bool all = false;                // look at every file (the path may have moved)
        std::vector<std::string> names;  // the pool files that may have changed
    };
    // Drains the queue and returns (and forgets) what may have changed since the last call.
    // `mount_table_polled`: this observer's poll() consumed the mount table's notification.
    [[nodiscard]] Touched collect(bool mount_table_polled);

  private:
    friend class DirectoryWatch;
    void touch(const std::string* name);  // nullptr: all (mutex_ held)

    std::shared_ptr<DirectoryWatch> watch_;
    UniqueFd changes_;  // eventfd
    // Guarded by watch_->mutex_.
    Touched touched_;
    bool signalled_ = false;
};

}  // namespace kvp
