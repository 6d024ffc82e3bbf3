#pragma once
// Tells whether one pool file may have changed since the last look: a subscriber of the pool
// directory's one DirectoryWatch (directory_watch.hpp), which follows the directory by its
// path and hands this watch the events about its file. Inotify is a hint, not the truth: each
// look drains it without blocking (fsnotify queues an event before the writer's write()
// returns, so once the writer released its lock the event is there, whatever the file's size
// and timestamp tick) AND compares the file's identity, size, mtime and ctime (nanoseconds)
// with what the last load or own change recorded: a store through a shared mapping (the first
// one to a clean page moves mtime and ctime) and writes on file systems that send no event
// are seen that way. Without inotify (unavailable, overflowed, the directory missing) an
// mtime too close to the last load also counts as "maybe changed" (timestamps are coarse
// ticks; the racy-git rule). So one non-blocking poll() and one stat() per look is all an
// idle pool costs. What no look can see: a store that moves no metadata (a later store to a
// page already dirty, docs/behaviour.md §3).
//
// The file last loaded is watched too (through its descriptor): a write through a hard link
// in another directory reaches its bytes without any event on the pool directory.

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "directory_watch.hpp"

namespace kvp {

class ChangeWatch {
  public:
    // A watch with a DirectoryWatch of its own (one inotify instance for this file alone).
    ChangeWatch(const std::string& directory, const std::string& file_name);
    // One of the subscribers of `directory` (a file in it).
    ChangeWatch(std::shared_ptr<DirectoryWatch> directory, const std::string& file_name);
    ChangeWatch(const ChangeWatch&) = delete;
    ChangeWatch& operator=(const ChangeWatch&) = delete;
    ChangeWatch(ChangeWatch&&) = delete;
    ChangeWatch& operator=(ChangeWatch&&) = delete;
    ~ChangeWatch();

    // True if anything may have changed the file since the last load or own change. Cheap:
    // one non-blocking poll() and one stat() when nothing happened.
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
    // After a change of our own under the exclusive lock, verified: records the file's state
    // (`st`). The events our writes queued cannot be told from those of a writer without a
    // lock whose write landed meanwhile (repeated events merge): the caller drains them with
    // begin_load() after its last write, takes `st`, then reads the file back and compares it
    // with what it expects; if it differs it loads it instead (PoolFile::modify).
    void mark_own_change(const struct stat& st);
    // Whether `st` (fstat of the locked file) is another file, or the same one with another
    // size, mtime or ctime, than the one last loaded or changed.
    [[nodiscard]] bool differs_from_loaded(const struct stat& st) const;
    // Whether the file's identity, size, mtime or ctime differ from what mark_loaded() recorded,
    // or the load came too soon after its last change to trust them (the tick rule above).
    // One stat(). For a caller that looks now and then where inotify can be silent (a store
    // through a shared mapping, some file systems): maybe_changed() compares the same fields,
    // with inotify without the tick rule.
    [[nodiscard]] bool metadata_differs() { return stat_differs(true); }
    // Sleeps until something may have changed the file (an inotify event, or a mount table
    // change, after which the path is looked at at once), `also_fd` is readable, or `timeout`
    // passed (change_watch_wait.cpp). Returns whether `also_fd` is readable (-1: none).
    // maybe_changed() then tells whether the file may have changed and consumes what woke
    // the sleep, so a loop of wait() and maybe_changed() never spins. With the directory
    // missing or no inotify only `also_fd` and the timeout end it: look at your own pace.
    bool wait(std::chrono::milliseconds timeout, int also_fd);
    // Makes the next look report a change (the file must be read again).
    void invalidate();
    [[nodiscard]] bool using_inotify() const;
    // Whether looks skip the directory's stat (every directory on the path and the mount table
    // watched).
    [[nodiscard]] bool following_by_events() const;

  private:
    friend class DirectoryWatch;

    // Whether the path now names another file than the one last loaded (a mount over the
    // file itself changes it without any event).
    [[nodiscard]] bool file_replaced() const;
    // `tick_rule`: also count a load within a timestamp tick of the last change as stale.
    bool stat_differs(bool tick_rule);

    std::shared_ptr<DirectoryWatch> dir_;
    std::string file_name_;
    std::string path_;
    // Guarded by dir_->mutex_ (another subscriber's drain sets them).
    bool pending_change_ = true;
    bool recheck_ = false;  // the path may lead elsewhere: look at the directory and the file
    int file_wd_ = -1;      // the loaded file itself
    dev_t file_dev_ = 0;
    ino_t file_ino_ = 0;
    bool file_watch_warned_ = false;
    // The owner's (the PoolFile's mutex, or the one thread using a watch of its own); written
    // under dir_->mutex_ too.
    bool have_stat_ = false;
    struct stat loaded_stat_ {};
    struct timespec loaded_at_ {};
};

}  // namespace kvp
