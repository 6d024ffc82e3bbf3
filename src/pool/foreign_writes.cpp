#include "foreign_writes.hpp"

#include <fcntl.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "log.hpp"

namespace kvp {

ForeignWrites::ForeignWrites()
    // FAN_CLASS_CONTENT, not _NOTIF: a higher priority than inotify's, so the kernel queues a
    // write's fanotify event before its inotify events. A change drains inotify first: a write
    // whose inotify event it took has its fanotify event queued already. (It needs
    // CAP_SYS_ADMIN, and cannot report file ids: each event comes with a descriptor of the
    // file, closed at once. Without it the change path reads the file back instead.)
    : fan_(::fanotify_init(FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK,
                           O_RDONLY | O_CLOEXEC | O_NOATIME)) {
    if (!fan_) {
        log_once(LogLevel::info, std::string("fanotify unavailable (") + std::strerror(errno) +
                                     "): every change through kvpfs reads the pool file back");
    }
}

bool ForeignWrites::watch(int fd, const struct stat& st) {
    if (!fan_) {
        return false;
    }
    if (watched_ && st.st_dev == dev_ && st.st_ino == ino_) {
        return true;
    }
    // One file at a time: the marks of the one before go.
    (void)::fanotify_mark(fan_.get(), FAN_MARK_FLUSH, 0, AT_FDCWD, nullptr);
    watched_ = ::fanotify_mark(fan_.get(), FAN_MARK_ADD, FAN_MODIFY, fd, nullptr) == 0;
    if (!watched_) {
        log_once(LogLevel::info, std::string("fanotify cannot watch a pool file (") +
                                     std::strerror(errno) +
                                     "): every change through kvpfs reads the pool file back");
        return false;
    }
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    unknown_ = true;  // what happened before the mark is not known
    return true;
}

bool ForeignWrites::drain() {
    if (!fan_ || !watched_) {
        return true;
    }
    const pid_t self = ::getpid();
    bool foreign = std::exchange(unknown_, false);
    alignas(struct fanotify_event_metadata) char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fan_.get(), buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return foreign || errno != EAGAIN;
        }
        if (n == 0) {
            return true;
        }
        for (ssize_t offset = 0;
             offset + static_cast<ssize_t>(sizeof(fanotify_event_metadata)) <= n;) {
            const auto* event =
                reinterpret_cast<const struct fanotify_event_metadata*>(buffer + offset);
            if (event->event_len < sizeof(fanotify_event_metadata)) {
                return true;  // cannot be parsed: maybe
            }
            if ((event->mask & FAN_Q_OVERFLOW) != 0 || event->pid != self) {
                foreign = true;
            }
            if (event->fd >= 0) {
                ::close(event->fd);  // the file, opened for this event (no lock is on it)
            }
            offset += static_cast<ssize_t>(event->event_len);
        }
    }
}

}  // namespace kvp
