// Which process holds which key file: /proc look-ups for the FLUSH of a close, which names
// the closing thread but not whether the process has other descriptors of the file.
#include "process_files.hpp"

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "unique_fd.hpp"

namespace kvpfs {
namespace {

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};

}  // namespace

// The thread group of thread `tid` (FUSE names the calling thread); 0 for 0, a caller in a pid
// namespace kvpfs cannot see.
pid_t thread_group_of(pid_t tid) {
    if (tid <= 0) {
        return 0;
    }
    // Only a thread-group leader has a pidfd (EINVAL for other threads): one cheap call for
    // the usual single-threaded writer.
    const kvp::UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, tid, 0)));
    if (pidfd || errno != EINVAL) {
        return tid;  // a leader, or gone already
    }
    std::ifstream status("/proc/" + std::to_string(tid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("Tgid:", 0) == 0) {
            try {
                return static_cast<pid_t>(std::stol(line.substr(5)));
            } catch (const std::exception&) {
                break;
            }
        }
    }
    return tid;
}

bool process_holds(pid_t process, Ino ino, const std::string& name) {
    if (process <= 0) {
        return false;  // not seen from here: every close counts as its last
    }
    const std::string proc = "/proc/" + std::to_string(process);
    const std::unique_ptr<DIR, DirCloser> dir(::opendir((proc + "/fd").c_str()));
    if (!dir) {
        return false;  // exited, or exiting (its descriptor table is gone)
    }
    const std::string tail = "/" + name;
    char link[PATH_MAX];
    while (const struct dirent* e = ::readdir(dir.get())) {
        if (e->d_name[0] == '.') {
            continue;
        }
        const ssize_t n = ::readlinkat(::dirfd(dir.get()), e->d_name, link, sizeof link);
        std::string_view target(link, n > 0 ? static_cast<std::size_t>(n) : 0);
        // A name whose entry the cache thread invalidated reads as unlinked.
        constexpr std::string_view kDeleted = " (deleted)";
        if (target.ends_with(kDeleted)) {
            target.remove_suffix(kDeleted.size());
        }
        if (!target.ends_with(tail)) {
            continue;
        }
        // The same name may be another file system's: the inode number tells.
        std::ifstream info(proc + "/fdinfo/" + e->d_name);
        std::string line;
        bool numbered = false;
        while (std::getline(info, line)) {
            if (line.rfind("ino:", 0) == 0) {
                numbered = true;
                try {
                    if (std::stoull(line.substr(4)) == ino) {
                        return true;
                    }
                } catch (const std::exception&) {
                }
            }
        }
        if (!numbered) {
            return true;  // a kernel that shows no inode number: the name must do
        }
    }
    return false;
}

bool others_hold(pid_t except, Ino ino, const std::string& name) {
    const std::unique_ptr<DIR, DirCloser> dir(::opendir("/proc"));
    if (!dir) {
        return false;
    }
    while (const struct dirent* e = ::readdir(dir.get())) {
        char* end = nullptr;
        const long pid = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0' || pid <= 0 || pid == except) {
            continue;
        }
        if (process_holds(static_cast<pid_t>(pid), ino, name)) {
            return true;
        }
    }
    return false;
}

}  // namespace kvpfs
