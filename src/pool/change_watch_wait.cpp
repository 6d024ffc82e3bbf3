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
    std::array<struct pollfd, 3> fds{{{also_fd, POLLIN, 0},
                                      {inotify_ ? inotify_.get() : -1, POLLIN, 0},
                                      {mounts_ ? mounts_.get() : -1, POLLPRI, 0}}};
    const auto ms = static_cast<int>(std::clamp<long long>(timeout.count(), 0, INT_MAX));
    const int ready = ::poll(fds.data(), fds.size(), ms);
    if (ready < 0) {
        if (errno == EINTR) {
            return false;  // the caller works out its time again
        }
        throw_errno("poll " + path_);
    }
    if ((fds[2].revents & (POLLPRI | POLLERR)) != 0) {
        // This poll consumed the mount table's notification, which maybe_changed() would have
        // acted on: something may be mounted over the directory, one above, or the file.
        if (check_directory() || file_replaced()) {
            pending_change_ = true;
        }
    }
    return (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

}  // namespace kvp
