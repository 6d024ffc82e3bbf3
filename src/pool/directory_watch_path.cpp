// DirectoryWatch, following the pool directory by its path. A path names another directory only
// when a directory on it is moved or removed (inotify reports that to a watch on it: IN_MOVE_SELF,
// IN_DELETE_SELF, IN_IGNORED), when a symbolic link on it is replaced or removed (the directory
// holding the link reports its name: IN_MOVED_TO, IN_CREATE, IN_DELETE), or when something is
// mounted or unmounted on it (the mount table changes: the mount-info file polls POLLPRI). Until
// one of those happens the directory's identity is known, and a look needs no stat.
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

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
// An entry on the path (the pool directory's name, a symbolic link's) made, removed or
// renamed over, reported by the directory that holds it.
constexpr std::uint32_t kEntryEvents = IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM;

// The components of `path`, last first (a stack: the next one is back()).
std::vector<std::string> components_reversed(const std::string& path) {
    std::vector<std::string> out;
    std::size_t begin = 0;
    while (begin <= path.size()) {
        std::size_t end = path.find('/', begin);
        if (end == std::string::npos) {
            end = path.size();
        }
        if (end > begin) {
            out.push_back(path.substr(begin, end - begin));
        }
        begin = end + 1;
    }
    std::reverse(out.begin(), out.end());
    return out;
}

std::string parent_of(const std::string& dir) {
    const std::size_t slash = dir.rfind('/');
    return slash == 0 || slash == std::string::npos ? "/" : dir.substr(0, slash);
}

std::string child_of(const std::string& dir, const std::string& name) {
    return dir == "/" ? "/" + name : dir + "/" + name;
}

// More links than this on one path: the kernel's ELOOP (40); not followed by events.
constexpr int kMaxLinks = 40;

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

bool DirectoryWatch::entry_on_the_path(int wd, const char* name) const {
    for (const AncestorWatch& a : ancestors_) {
        if (a.wd == wd && !a.name.empty() && a.name == name) {
            return true;
        }
    }
    return false;
}

bool DirectoryWatch::watch_on_the_way(const std::string& path, std::uint32_t mask,
                                      const std::string& name) {
    // IN_MASK_ADD: a directory met twice keeps what the first watch asked for.
    const int wd = ::inotify_add_watch(inotify_.get(), path.c_str(), mask | IN_MASK_ADD);
    if (wd < 0) {
        return false;
    }
    ancestors_.push_back({wd, path, name});
    return true;
}

bool DirectoryWatch::watch_ancestors() {
    if (directory_.empty() || directory_.front() != '/' || !mounts_) {
        return false;
    }
    // The path resolved as the kernel does, one component at a time: `at` is the real
    // directory reached so far (no links in it), each one watched for its moving or removal.
    std::vector<std::string> todo = components_reversed(directory_);
    std::string at = "/";
    if (!watch_on_the_way(at, kAncestorEvents, "")) {
        return false;
    }
    int links = 0;
    while (!todo.empty()) {
        const std::string name = std::move(todo.back());
        todo.pop_back();
        if (name == ".") {
            continue;
        }
        if (name == "..") {
            at = parent_of(at);  // watched already, on the way down
            continue;
        }
        const std::string next = child_of(at, name);
        struct stat st {};
        if (::lstat(next.c_str(), &st) != 0) {
            // Missing: its directory reports its return (the pool directory made again).
            (void)watch_on_the_way(at, kAncestorEvents | kEntryEvents, name);
            return false;
        }
        if (S_ISLNK(st.st_mode)) {
            // `ln -sfn` renames a new link over this one: its directory reports that.
            if (++links > kMaxLinks ||
                !watch_on_the_way(at, kAncestorEvents | kEntryEvents, name)) {
                return false;
            }
            std::string target(PATH_MAX, '\0');
            const ssize_t n = ::readlink(next.c_str(), target.data(), target.size());
            if (n <= 0 || static_cast<std::size_t>(n) >= target.size()) {
                return false;
            }
            target.resize(static_cast<std::size_t>(n));
            if (target.front() == '/') {
                at = "/";
            }
            std::vector<std::string> more = components_reversed(target);
            todo.insert(todo.end(), more.begin(), more.end());
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            return false;
        }
        if (todo.empty()) {
            // The pool directory: its parent reports its name removed or renamed over (while
            // a process keeps the directory open, the directory's own removal event waits for
            // it); the directory itself is watched by follow_directory().
            return watch_on_the_way(at, kAncestorEvents | kEntryEvents, name);
        }
        if (!watch_on_the_way(next, kAncestorEvents, "")) {
            return false;
        }
        at = next;
    }
    return false;  // the pool directory is "/"
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
