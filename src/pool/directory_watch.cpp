// DirectoryWatch: the one inotify queue of the pool directory, drained by whoever looks and
// handed out to every subscriber. Following the directory by its path: directory_watch_path.cpp.
#include "directory_watch.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "change_watch.hpp"
#include "directory_watch_path.hpp"
#include "error.hpp"
#include "log.hpp"

namespace kvp {
namespace {

// A watched directory itself went away (removed, renamed, its file system unmounted).
constexpr std::uint32_t kDirectoryGone = IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT;

}  // namespace

DirectoryWatch::DirectoryWatch(std::string directory) : directory_(std::move(directory)) {
    UniqueFd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!fd) {
        log_once(LogLevel::warning, "inotify unavailable (" + std::string(std::strerror(errno)) +
                                        "): change detection falls back to stat in " + directory_);
        return;
    }
    inotify_ = std::move(fd);
    inotify_ok_ = true;
    mounts_ = open_mount_table();
    const std::lock_guard guard(mutex_);
    follow_directory();
}

DirectoryWatch::~DirectoryWatch() = default;

void DirectoryWatch::all_changed() {
    for (ChangeWatch* file : files_) {
        file->pending_change_ = true;
    }
    for (WatchObserver* observer : observers_) {
        observer->touch(nullptr);
    }
}

void DirectoryWatch::path_suspect() {
    for (ChangeWatch* file : files_) {
        file->recheck_ = true;
    }
    for (WatchObserver* observer : observers_) {
        observer->touch(nullptr);
    }
}

void DirectoryWatch::file_touched(const std::string& name) {
    for (WatchObserver* observer : observers_) {
        observer->touch(&name);
    }
}

void DirectoryWatch::mount_table_changed() {
    path_suspect();
}

void DirectoryWatch::drain_events() {
    if (!inotify_ok_) {
        return;
    }
    alignas(struct inotify_event) char buffer[8192];
    for (;;) {
        const ssize_t n = ::read(inotify_.get(), buffer, sizeof buffer);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) {
                continue;
            }
            // EAGAIN: drained. Any other failure: trust nothing from now on.
            if (n == 0 || errno != EAGAIN) {
                log(LogLevel::warning,
                    "inotify read failed; falling back to stat in " + directory_);
                drop_watches();
                for (ChangeWatch* file : files_) {
                    file->file_wd_ = -1;
                }
                inotify_ok_ = false;
                all_changed();
            }
            return;
        }
        for (ssize_t offset = 0; offset < n;) {
            const auto* event = reinterpret_cast<const struct inotify_event*>(buffer + offset);
            offset += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
            if ((event->mask & IN_Q_OVERFLOW) != 0) {
                all_changed();  // anything may have happened, the path too
                path_suspect();
                continue;
            }
            if (event->wd == wd_) {
                if (event->len > 0) {
                    const std::string name(event->name);
                    bool ours = false;
                    for (ChangeWatch* file : files_) {
                        if (file->file_name_ == name) {
                            file->pending_change_ = true;
                            ours = true;
                        }
                    }
                    if (ours) {
                        file_touched(name);
                        if ((event->mask & (IN_DELETE | IN_MOVED_FROM)) != 0) {
                            // Perhaps the whole directory is being removed: while some process
                            // still has it open (or as its working directory) its own removal
                            // is reported only once that process lets go.
                            path_suspect();
                        }
                    }
                }
                if (event->len == 0 && (event->mask & IN_ATTRIB) != 0) {
                    path_suspect();  // its link count: renamed over, perhaps
                }
                if ((event->mask & kDirectoryGone) != 0) {
                    // The watch no longer follows the path: stat fallback, and the next look
                    // watches whatever directory the path names then.
                    (void)::inotify_rm_watch(inotify_.get(), wd_);
                    wd_ = -1;
                    have_directory_ = false;
                    path_watched_ = false;
                    all_changed();
                }
                continue;
            }
            bool file_event = false;
            for (ChangeWatch* file : files_) {
                if (file->file_wd_ >= 0 && event->wd == file->file_wd_) {
                    file_event = true;
                    file->pending_change_ = true;  // written through any of its names
                    file_touched(file->file_name_);
                    if ((event->mask & IN_IGNORED) != 0) {
                        file->file_wd_ = -1;
                    }
                }
            }
            if (file_event) {
                continue;
            }
            if ((event->len > 0 && entry_on_the_path(event->wd, event->name)) ||
                ((event->mask & kDirectoryGone) != 0 && watches_ancestor(event->wd))) {
                // The pool directory's name was made, removed or renamed over in its parent, so
                // was a symbolic link on the path (ln -sfn), or a directory above moved or went:
                // the path may lead elsewhere now. (The
                // IN_IGNORED of a watch we removed ourselves is for a number no longer ours.)
                path_suspect();
            }
        }
        // A read returns every queued event that fits; with room left for the largest one,
        // the queue was empty when it returned (saves the read that would say EAGAIN).
        if (static_cast<std::size_t>(n) + sizeof(struct inotify_event) + NAME_MAX + 1 <=
            sizeof buffer) {
            return;
        }
    }
}

void DirectoryWatch::look() {
    if (!inotify_ok_) {
        if (poll_mount_table()) {
            mount_table_changed();
        }
        return;
    }
    struct pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {mounts_.get(), POLLPRI, 0}};
    int ready = 0;
    do {
        ready = ::poll(fds, 2, 0);
    } while (ready < 0 && errno == EINTR);
    if (ready < 0) {
        // Cannot tell: read the events and look at the directory.
        drain_events();
        path_suspect();
        return;
    }
    if ((fds[0].revents & POLLIN) != 0) {
        drain_events();
    }
    // POLLERR|POLLPRI: the mount table changed since the last poll of this descriptor.
    if ((fds[1].revents & (POLLPRI | POLLERR)) != 0) {
        mount_table_changed();
    }
}

void DirectoryWatch::release_file_watch(const ChangeWatch& owner, int wd) {
    for (const ChangeWatch* file : files_) {
        if (file != &owner && file->file_wd_ == wd) {
            return;
        }
    }
    (void)::inotify_rm_watch(inotify_.get(), wd);
}

WatchObserver::WatchObserver(std::shared_ptr<DirectoryWatch> watch)
    : watch_(std::move(watch)), changes_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (!changes_) {
        throw_errno("eventfd for watching " + watch_->directory());
    }
    const std::lock_guard guard(watch_->mutex_);
    watch_->observers_.push_back(this);
}

WatchObserver::~WatchObserver() {
    const std::lock_guard guard(watch_->mutex_);
    std::erase(watch_->observers_, this);
}

WatchObserver::Fds WatchObserver::fds() const {
    const DirectoryWatch& w = *watch_;
    const std::lock_guard guard(w.mutex_);
    // A queue no longer trusted is not polled: it may stay readable.
    return {changes_.get(), w.inotify_ok_ ? w.inotify_.get() : -1,
            w.mounts_ ? w.mounts_.get() : -1};
}

void WatchObserver::touch(const std::string* name) {
    if (name == nullptr) {
        touched_.all = true;
    } else if (std::find(touched_.names.begin(), touched_.names.end(), *name) ==
               touched_.names.end()) {
        touched_.names.push_back(*name);
    }
    if (!signalled_) {
        signalled_ = true;
        const std::uint64_t one = 1;
        (void)!::write(changes_.get(), &one, sizeof one);
    }
}

WatchObserver::Touched WatchObserver::collect(bool mount_table_polled) {
    const std::lock_guard guard(watch_->mutex_);
    if (mount_table_polled) {
        watch_->mount_table_changed();
    }
    watch_->drain_events();
    if (signalled_) {
        std::uint64_t count = 0;
        (void)!::read(changes_.get(), &count, sizeof count);
        signalled_ = false;
    }
    return std::exchange(touched_, Touched{});
}

}  // namespace kvp
