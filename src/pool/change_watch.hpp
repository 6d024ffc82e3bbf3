#pragma once
// Tells whether a pool file may have changed since the last look. Primary: an inotify
// watch on the pool directory, drained without blocking (fsnotify queues an event before
// the writer's write() returns, so once the writer released its lock the event is there,
// whatever the file's size and timestamp tick). Fallback, when inotify is unavailable,
// overflowed or the directory is missing: the file's identity and stat fields, treating an
// mtime too close to the last load as "maybe changed" (timestamps are coarse ticks; the
// racy-git rule).
//
// The pool directory is followed by its path: when the path names another directory than the
// one watched (removed and made again, renamed away and replaced, mounted over, which sends no
// event at all) the watch moves to it and the file counts as changed. The directory is looked
// at again only when something may have moved it: an event on it or on any directory above it
// (each watched for being moved or removed; the parent also for the directory's name removed
// or renamed over, since the directory's own removal is reported only once no process has it
// open), the pool file's name removed from it, or a change of the mount table (the mount-info
// file polls ready after any mount or unmount; then the file's identity is checked too, for a
// mount over the file itself). So one non-blocking poll() per look is all an idle pool costs.
// Where that cannot be set up (a relative path, a symbolic link on the way, no inotify) every
// look stats the directory instead.
//
// The file last loaded is watched too (through its descriptor): a write through a hard link
// in another directory reaches its bytes without any event on the pool directory.

#include <sys/stat.h>

#include <chrono>
#include <string>
#include <vector>

#include "unique_fd.hpp"

namespace kvp {

class ChangeWatch {
  public:
    ChangeWatch(const std::string& directory, const std::string& file_name);

    // True if anything may have changed the file since the last load or own change. Cheap:
    // one non-blocking poll() when nothing happened.
    [[nodiscard]] bool maybe_changed();
    // Call under the file's lock right before (re)reading it: drains the events of the writes
    // that finished before, so an event that arrives during the read stays pending.
    void begin_load();
    // Records what was just read: the locked descriptor's fstat, or nullptr (no file).
    void mark_loaded(const struct stat* st);
    // Call before reading the file through `fd` (its fstat `st`): watches that very file, so a
    // write through a hard link in another directory, which the directory's watch never hears
    // of, is reported too.
    void watch_file(int fd, const struct stat& st);
    // After a change of our own under the exclusive lock: drains the events our writes
    // queued and records the file's state after them (`st`, its fstat taken after the last
    // write). `expected_size` is what the change left; a different size means someone wrote
    // without a lock meanwhile: stays pending.
    void mark_own_change(const struct stat& st, std::uint64_t expected_size);
    // Whether `st` (fstat of the locked file) is another file, or the same one with another
    // size or ctime, than the one last loaded or changed.
    [[nodiscard]] bool differs_from_loaded(const struct stat& st) const;
    // Whether the file's identity, size, mtime or ctime differ from what mark_loaded() recorded,
    // or the load came too soon after its last change to trust them (the tick rule above).
    // One stat(). For a caller that looks now and then where inotify can be silent (a store
    // through a shared mapping, some file systems): maybe_changed() trusts inotify alone.
    [[nodiscard]] bool metadata_differs() { return stat_differs(); }
    // Sleeps until something may have changed the file (an inotify event, or a mount table
    // change, after which the path is looked at at once), `also_fd` is readable, or `timeout`
    // passed (change_watch_wait.cpp). Returns whether `also_fd` is readable (-1: none).
    // maybe_changed() then tells whether the file may have changed and consumes what woke
    // the sleep, so a loop of wait() and maybe_changed() never spins. With the directory
    // missing or no inotify only `also_fd` and the timeout end it: look at your own pace.
    bool wait(std::chrono::milliseconds timeout, int also_fd);
    // Makes the next look report a change (the file must be read again).
    void invalidate() {
        pending_change_ = true;
        have_stat_ = false;
    }
    [[nodiscard]] bool using_inotify() const { return static_cast<bool>(inotify_) && wd_ >= 0; }
    // Whether looks skip the directory's stat (every directory on the path and the mount table
    // watched).
    [[nodiscard]] bool following_by_events() const { return path_watched_; }

  private:
    // A directory above the pool directory, watched for being moved or removed.
    struct AncestorWatch {
        int wd;
        std::string path;
    };

    bool drain_events();
    // Whether the path now names another file than the one last loaded (a mount over the
    // file itself changes it without any event).
    [[nodiscard]] bool file_replaced() const;
    // Whether the mount table changed since the last look (consumes the notification).
    bool mount_table_changed();
    bool stat_differs();
    // Whether an event or the mount table says the path may name another directory now.
    bool path_may_have_moved();
    // Stats the directory; when it is another one (or appeared, or went), follows it.
    // Returns true if it followed.
    bool check_directory();
    // Moves the watch to whatever directory the path names now (none when missing).
    void follow_directory();
    // Watches every directory above the pool directory; false when that is not possible.
    bool watch_ancestors();
    void drop_watches();
    [[nodiscard]] bool watches_ancestor(int wd) const;
    // Whether `wd` is the watch of the pool directory's parent (which also reports its entries).
    [[nodiscard]] bool parent_watched(int wd) const {
        return !ancestors_.empty() && ancestors_.back().wd == wd;
    }

    std::string directory_;
    std::string file_name_;
    std::string directory_base_;  // the pool directory's own name in its parent
    std::string path_;
    UniqueFd inotify_;
    int wd_ = -1;
    int file_wd_ = -1;  // the loaded file itself
    bool file_watch_warned_ = false;
    dev_t file_dev_ = 0;
    ino_t file_ino_ = 0;
    std::vector<AncestorWatch> ancestors_;
    UniqueFd mounts_;  // the mount-info file: polls POLLPRI once after each mount table change
    bool path_watched_ = false;
    bool directory_suspect_ = false;
    bool have_directory_ = false;
    dev_t directory_dev_ = 0;
    ino_t directory_ino_ = 0;
    bool pending_change_ = true;
    bool have_stat_ = false;
    struct stat loaded_stat_ {};
    struct timespec loaded_at_ {};
};

}  // namespace kvp
