#include "change_watch.hpp"

#include <fcntl.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "change_watch_path.hpp"

#include "log.hpp"

namespace kvp {
namespace {

// A watched directory itself went away (removed, renamed, its file system unmounted).
constexpr std::uint32_t kDirectoryGone = IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT;

// A load made within this of the file's mtime may have missed a write in the same tick.
constexpr long kTickMarginNs = 50'000'000;

long long ns(const timespec& t) {
    return static_cast<long long>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace

ChangeWatch::ChangeWatch(const std::string& directory, const std::string& file_name)
    : directory_(directory),
      file_name_(file_name),
      directory_base_(directory.substr(directory.rfind('/') + 1)),
      path_(directory + "/" + file_name) {
    UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!fd) {
        log_once(LogLevel::warning, "inotify unavailable (" + std::string(std::strerror(errno)) +
                                        "): change detection falls back to stat of " + path_);
        return;
    }
    inotify_ = std::move(fd);
    mounts_ = open_mount_table();
    follow_directory();
}

bool ChangeWatch::drain_events() {
    bool changed = false;
    alignas(struct inotify_event) char buffer[8192];
    for (;;) {
        const ssize_t n = ::read(inotify_.get(), buffer, sizeof buffer);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            // EAGAIN: drained. Any other failure: trust nothing from now on.
            if (n == 0 || errno != EAGAIN) {
                log(LogLevel::warning, "inotify read failed; falling back to stat for " + path_);
                inotify_.reset();
                wd_ = -1;
                file_wd_ = -1;
                ancestors_.clear();
                path_watched_ = false;
                return true;
            }
            return changed;
        }
        for (ssize_t offset = 0; offset < n;) {
            const auto* event = reinterpret_cast<const struct inotify_event*>(buffer + offset);
            if ((event->mask & IN_Q_OVERFLOW) != 0) {
                changed = true;  // anything may have happened, the path too
                directory_suspect_ = true;
            } else if (event->wd == wd_) {
                if (event->len > 0 && file_name_ == event->name) {
                    changed = true;
                    if ((event->mask & (IN_DELETE | IN_MOVED_FROM)) != 0) {
                        // Perhaps the whole directory is being removed: while some process
                        // still has it open (or as its working directory) its own removal is
                        // reported only once that process lets go.
                        directory_suspect_ = true;
                    }
                }
                if (event->len == 0 && (event->mask & IN_ATTRIB) != 0) {
                    directory_suspect_ = true;  // its link count: renamed over, perhaps
                }
                if ((event->mask & kDirectoryGone) != 0) {
                    // The watch no longer follows the path: stat fallback, and the next look
                    // watches whatever directory the path names then.
                    (void)::inotify_rm_watch(inotify_.get(), wd_);
                    wd_ = -1;
                    have_directory_ = false;
                    path_watched_ = false;
                    changed = true;
                }
            } else if (event->wd == file_wd_) {
                changed = true;  // written through any of its names
                if ((event->mask & IN_IGNORED) != 0) {
                    file_wd_ = -1;
                }
            } else if ((event->len > 0 && parent_watched(event->wd) &&
                        directory_base_ == event->name) ||
                       ((event->mask & kDirectoryGone) != 0 && watches_ancestor(event->wd))) {
                // The pool directory's name was removed or renamed over in its parent, or a
                // directory above moved or went: the path may lead elsewhere now. (The
                // IN_IGNORED of a watch we removed ourselves is for a number no longer ours.)
                directory_suspect_ = true;
            }
            offset += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
        }
        // A read returns every queued event that fits; with room left for the largest one,
        // the queue was empty when it returned (saves the read that would say EAGAIN).
        if (static_cast<std::size_t>(n) + sizeof(struct inotify_event) + NAME_MAX + 1 <=
            sizeof buffer) {
            return changed;
        }
    }
}

bool ChangeWatch::stat_differs() {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
        return have_stat_;  // gone now, or still absent
    }
    if (!have_stat_ || st.st_ino != loaded_stat_.st_ino || st.st_dev != loaded_stat_.st_dev ||
        st.st_size != loaded_stat_.st_size || ns(st.st_mtim) != ns(loaded_stat_.st_mtim) ||
        ns(st.st_ctim) != ns(loaded_stat_.st_ctim)) {
        return true;
    }
    // Same stat: only trustworthy when the load came well after the last change's tick.
    return ns(loaded_at_) - ns(st.st_mtim) < kTickMarginNs ||
           ns(loaded_at_) - ns(st.st_ctim) < kTickMarginNs;
}

bool ChangeWatch::file_replaced() const {
    struct stat st {};
    const bool present = ::lstat(path_.c_str(), &st) == 0;
    if (!have_stat_) {
        return present;  // none was loaded (or the view is already dirty)
    }
    return !present || st.st_dev != loaded_stat_.st_dev || st.st_ino != loaded_stat_.st_ino;
}

bool ChangeWatch::maybe_changed() {
    if (path_watched_) {
        if (path_may_have_moved() && (check_directory() || file_replaced())) {
            pending_change_ = true;
        }
    } else {
        if (inotify_ && drain_events()) {
            pending_change_ = true;
        }
        // After a mount table change, something may be mounted over the file itself.
        if (check_directory() || (mount_table_changed() && file_replaced())) {
            pending_change_ = true;
        }
    }
    if (using_inotify()) {
        return pending_change_;
    }
    return pending_change_ || stat_differs();
}

void ChangeWatch::begin_load() {
    if (inotify_) {
        (void)drain_events();
    }
    pending_change_ = false;
}

void ChangeWatch::watch_file(int fd, const struct stat& st) {
    if (!inotify_ || (file_wd_ >= 0 && st.st_dev == file_dev_ && st.st_ino == file_ino_)) {
        return;
    }
    if (file_wd_ >= 0) {
        (void)::inotify_rm_watch(inotify_.get(), file_wd_);
        file_wd_ = -1;
    }
    // The descriptor's magic link leads to the very file read, whatever the path names now.
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    const int wd = ::inotify_add_watch(inotify_.get(), link.c_str(), IN_MODIFY | IN_ATTRIB);
    if (wd < 0) {
        if (!file_watch_warned_) {
            file_watch_warned_ = true;
            log_once(LogLevel::warning, "cannot watch " + path_ + " itself (" +
                                            std::strerror(errno) +
                                            "): a write through a hard link elsewhere goes unseen");
        }
        return;
    }
    file_wd_ = wd;
    file_dev_ = st.st_dev;
    file_ino_ = st.st_ino;
}

void ChangeWatch::mark_loaded(const struct stat* st) {
    have_stat_ = st != nullptr;
    if (st != nullptr) {
        loaded_stat_ = *st;
    }
    ::clock_gettime(CLOCK_REALTIME, &loaded_at_);
}

void ChangeWatch::mark_own_change(const struct stat& st, std::uint64_t expected_size) {
    if (inotify_) {
        (void)drain_events();
    }
    if (static_cast<std::uint64_t>(st.st_size) != expected_size) {
        pending_change_ = true;
        have_stat_ = false;
        return;
    }
    mark_loaded(&st);
}

bool ChangeWatch::differs_from_loaded(const struct stat& st) const {
    return !have_stat_ || st.st_dev != loaded_stat_.st_dev || st.st_ino != loaded_stat_.st_ino ||
           st.st_size != loaded_stat_.st_size || ns(st.st_ctim) != ns(loaded_stat_.st_ctim);
}

}  // namespace kvp
