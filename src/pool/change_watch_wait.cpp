// ChangeWatch::wait: sleeping until the pool file may have changed, for a caller that waits
// for a change instead of looking at each operation (kvpctl wait).
#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>

#include "change_watch.hpp"
#include "error.hpp"

namespace kvp {

bool ChangeWatch::wait(std::chrono::milliseconds timeout, int also_fd) {
    // poll() skips negative descriptors: a missing inotify or mount table is just not waited on.
    // The descriptors live as long as the DirectoryWatch: polled without its mutex.
    const DirectoryWatch& d = *dir_;
    std::array<struct pollfd, 3> fds{{{also_fd, POLLIN, 0},
                                      {d.inotify_ ? d.inotify_.get() : -1, POLLIN, 0},
                                      {d.mounts_ ? d.mounts_.get() : -1, POLLPRI, 0}}};
    const auto ms = static_cast<int>(std::clamp<long long>(timeout.count(), 0, INT_MAX));
    const int ready = ::poll(fds.data(), fds.size(), ms);
    if (ready < 0) {
        if (errno == EINTR) {
            return false;  // the caller works out its time again
        }
        throw_errno("poll " + path_);
    }
    if ((fds[2].revents & (POLLPRI | POLLERR)) != 0) {
        // This poll consumed the mount table's notification, which a look would have acted on:
        // something may be mounted over the directory, one above, or a file. Every
        // subscriber's next look checks.
        const std::lock_guard guard(dir_->mutex_);
        dir_->mount_table_changed();
    }
    return (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

}  // namespace kvp
