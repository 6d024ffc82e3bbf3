#pragma once
// Tells whether a pool file may have changed since the last look. Primary: an inotify
// watch on the pool directory, drained without blocking (fsnotify queues an event before
// the writer's write() returns, so once the writer released its lock the event is there,
// whatever the file's size and timestamp tick). Fallback, when inotify is unavailable or
// overflowed: the file's identity and stat fields, treating an mtime too close to the last
// load as "maybe changed" (timestamps are coarse ticks; the racy-git rule).

#include <sys/stat.h>

#include <string>

#include "unique_fd.hpp"

namespace kvp {

class ChangeWatch {
  public:
    ChangeWatch(const std::string& directory, const std::string& file_name);

    // True if anything may have changed the file since the last `mark_loaded`.
    // Drains the pending events; cheap (one non-blocking read) when nothing happened.
    [[nodiscard]] bool maybe_changed();
    // Records the state just loaded: call under the lock, right after reading the file,
    // with its fstat; drains the events, whose writes are in what was just read. With nullptr
    // (the file was missing, no lock to hold) queued events stay pending.
    void mark_loaded(const struct stat* st);
    [[nodiscard]] bool using_inotify() const { return static_cast<bool>(inotify_); }

  private:
    bool drain_events();
    bool stat_differs();

    std::string directory_;
    std::string file_name_;
    std::string path_;
    UniqueFd inotify_;
    bool pending_change_ = true;
    bool have_stat_ = false;
    struct stat loaded_stat_ {};
    struct timespec loaded_at_ {};
};

}  // namespace kvp
