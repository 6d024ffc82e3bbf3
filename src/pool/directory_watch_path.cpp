// DirectoryWatch, following the pool directory by its path. A path names another directory only
// when a directory on it is moved or removed (inotify reports that to a watch on it: IN_MOVE_SELF,
// IN_DELETE_SELF, IN_IGNORED), when a symbolic link on it changes (there is none: the path is
// set up only when every component is a real directory), or when something is mounted or
// unmounted on it (the mount table changes: the mount-info file polls POLLPRI). Until one of
// those happens the directory's identity is known, and a look needs no stat.
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "change_watch.hpp"
#include "directory_watch.hpp"
#include "directory_watch_path.hpp"
#include "log.hpp"

namespace kvp {
namespace {

// The pool directory's own events: content and identity changes of the file in it, and the
// directory being moved or removed. IN_CLOSE_WRITE and IN_OPEN are left out on purpose: every
// locked operation opens and closes the file, and the content events already cover what a
// close could add.
constexpr std::uint32_t kDirectoryEvents = IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE |
                                           IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
                                           IN_MOVE_SELF | IN_ONLYDIR;
// A directory above: only its own moving or removal matters (IN_IGNORED and IN_UNMOUNT come
// unasked). No entry events, but for the parent's removals and renames-over (watch_ancestors):
// they would queue one event for every file made in /tmp.
constexpr std::uint32_t kAncestorEvents =
    IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW;

// "/a/b/c" -> {"/", "/a", "/a/b"}; empty when `path` is not absolute and plain (".", "..",
// "//" or a trailing "/" would make the lexical parents differ from the real ones).
std::vector<std::string> ancestors_of(const std::string& path) {
    if (path.size() < 2 || path.front() != '/' || path.back() == '/') {
        return {};
    }
    std::vector<std::string> out{"/"};
    std::size_t begin = 1;
    for (;;) {
        const std::size_t end = path.find('/', begin);
        const std::string component = path.substr(begin, end - begin);
        if (component.empty() || component == "." || component == "..") {
            return {};
        }
        if (end == std::string::npos) {
            return out;
        }
        out.push_back(path.substr(0, end));
        begin = end + 1;
    }
}

bool is_real_directory(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

}  // namespace

bool stat_directory(const std::string& path, struct stat& st) {
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

UniqueFd open_mount_table() {
    UniqueFd fd(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
    if (!fd) {
        log_once(LogLevel::warning, "cannot open /proc/self/mountinfo (" +
                                        std::string(std::strerror(errno)) +
                                        "): the pool directory is looked at on every operation");
    }
    return fd;
}

void DirectoryWatch::drop_watches() {
    if (!inotify_ok_) {
        return;
    }
    if (wd_ >= 0) {
        (void)::inotify_rm_watch(inotify_.get(), wd_);  // fails when the kernel dropped it
        wd_ = -1;
    }
    for (const AncestorWatch& a : ancestors_) {
        (void)::inotify_rm_watch(inotify_.get(), a.wd);
    }
    ancestors_.clear();
    path_watched_ = false;
}

bool DirectoryWatch::watches_ancestor(int wd) const {
    for (const AncestorWatch& a : ancestors_) {
        if (a.wd == wd) {
            return true;
        }
    }
    return false;
}

bool DirectoryWatch::watch_ancestors() {
    const std::vector<std::string> paths = ancestors_of(directory_);
    if (paths.empty() || !mounts_) {
        return false;
    }
    for (const std::string& path : paths) {
        // A symbolic link on the path could be swapped without any event we watch for.
        if (path != "/" && !is_real_directory(path)) {
            return false;
        }
        // The parent also reports the pool directory's name removed or renamed over (while a
        // process keeps the directory open, the directory's own removal event waits for it),
        // and made again (a missing directory has no watch of its own to say so).
        const std::uint32_t mask = path == paths.back()
                                       ? kAncestorEvents | IN_CREATE | IN_DELETE | IN_MOVED_TO
                                       : kAncestorEvents;
        const int wd = ::inotify_add_watch(inotify_.get(), path.c_str(), mask);
        if (wd < 0) {
            return false;
        }
        if (watches_ancestor(wd)) {
            return false;  // the same directory twice (a bind mount loop): keep it simple
        }
        ancestors_.push_back({wd, path});
    }
    return is_real_directory(directory_);
}

void DirectoryWatch::follow_directory() {
    drop_watches();
    for (ChangeWatch* file : files_) {
        file->recheck_ = false;  // every file is marked changed below
    }
    all_changed();
    if (mounts_) {
        // Reading nothing; a poll() now consumes any mount table change made before this
        // point, which the identity taken below already reflects.
        struct pollfd p {
            mounts_.get(), POLLPRI, 0
        };
        (void)::poll(&p, 1, 0);
    }
    struct stat before {};
    have_directory_ = stat_directory(directory_, before);
    directory_dev_ = before.st_dev;
    directory_ino_ = before.st_ino;
    if (!inotify_ok_) {
        return;
    }
    // Also while the directory is missing: its parent reports its return.
    const bool ancestors_watched = watch_ancestors();
    if (!have_directory_) {
        return;  // stat fallback until the directory is back
    }
    const int wd = ::inotify_add_watch(inotify_.get(), directory_.c_str(), kDirectoryEvents);
    struct stat after {};
    if (wd < 0) {
        log_once(LogLevel::warning, "cannot watch " + directory_ + " (" + std::strerror(errno) +
                                        "): change detection falls back to stat");
    } else if (stat_directory(directory_, after) && after.st_dev == before.st_dev &&
               after.st_ino == before.st_ino) {
        wd_ = wd;
        // Every watch is in place and the identity was taken after the mount table poll and
        // checked after the watches: anything that moves the path from now on is reported.
        path_watched_ = ancestors_watched;
        return;
    } else {
        (void)::inotify_rm_watch(inotify_.get(), wd);
    }
    // Replaced again between the stat and the watch (or no watch): the next look follows it
    // (the ancestors stay watched, to hear of it).
    path_watched_ = false;
    have_directory_ = false;
}

bool DirectoryWatch::poll_mount_table() {
    if (!mounts_) {
        return false;
    }
    struct pollfd p {
        mounts_.get(), POLLPRI, 0
    };
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLPRI | POLLERR)) != 0;
}

bool DirectoryWatch::check_directory() {
    struct stat dir {};
    const bool present = stat_directory(directory_, dir);
    if (present != have_directory_ ||
        (present && (dir.st_dev != directory_dev_ || dir.st_ino != directory_ino_))) {
        follow_directory();
        return true;
    }
    return false;
}

}  // namespace kvp
