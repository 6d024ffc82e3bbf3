#include "change_watch.hpp"

#include <fcntl.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "log.hpp"

namespace kvp {
namespace {

// A load made within this of the file's mtime may have missed a write in the same tick.
constexpr long kTickMarginNs = 50'000'000;

long long ns(const timespec& t) {
    return static_cast<long long>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

}  // namespace

ChangeWatch::ChangeWatch(const std::string& directory, const std::string& file_name)
    : ChangeWatch(std::make_shared<DirectoryWatch>(directory), file_name) {}

ChangeWatch::ChangeWatch(std::shared_ptr<DirectoryWatch> directory, const std::string& file_name)
    : dir_(std::move(directory)),
      file_name_(file_name),
      path_(dir_->directory() + "/" + file_name) {
    const std::lock_guard guard(dir_->mutex_);
    dir_->files_.push_back(this);
}

ChangeWatch::~ChangeWatch() {
    const std::lock_guard guard(dir_->mutex_);
    if (file_wd_ >= 0) {
        dir_->release_file_watch(*this, file_wd_);
    }
    std::erase(dir_->files_, this);
}

bool ChangeWatch::using_inotify() const {
    const std::lock_guard guard(dir_->mutex_);
    return dir_->using_inotify();
}

bool ChangeWatch::following_by_events() const {
    const std::lock_guard guard(dir_->mutex_);
    return dir_->path_watched_;
}

void ChangeWatch::invalidate() {
    const std::lock_guard guard(dir_->mutex_);
    pending_change_ = true;
    have_stat_ = false;
}

bool ChangeWatch::stat_differs(bool tick_rule) {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) {
        return have_stat_;  // gone now, or still absent
    }
    if (!have_stat_ || st.st_ino != loaded_stat_.st_ino || st.st_dev != loaded_stat_.st_dev ||
        st.st_size != loaded_stat_.st_size || ns(st.st_mtim) != ns(loaded_stat_.st_mtim) ||
        ns(st.st_ctim) != ns(loaded_stat_.st_ctim)) {
        return true;
    }
    if (!tick_rule) {
        return false;
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
    const std::lock_guard guard(dir_->mutex_);
    DirectoryWatch& d = *dir_;
    if (d.path_watched_) {
        d.look();
        // An event or the mount table says the path may name another directory now, or the
        // directory went (the look lost its watch).
        if ((std::exchange(recheck_, false) || !d.path_watched_) &&
            (d.check_directory() || file_replaced())) {
            pending_change_ = true;
        }
    } else {
        d.drain_events();
        if (d.poll_mount_table()) {
            d.mount_table_changed();
        }
        // After a mount table change, something may be mounted over the file itself.
        const bool look_at_file = std::exchange(recheck_, false);
        if (d.check_directory() || (look_at_file && file_replaced())) {
            pending_change_ = true;
        }
    }
    if (pending_change_) {
        return true;
    }
    // Inotify is a hint: a store through a shared mapping, and writes on some file systems,
    // queue no event but move the file's timestamps. With inotify the stat is compared
    // exactly (a write() in the same tick queues an event); without it, the tick rule too.
    return stat_differs(!d.using_inotify());
}

void ChangeWatch::begin_load() {
    const std::lock_guard guard(dir_->mutex_);
    dir_->drain_events();
    pending_change_ = false;
}

void ChangeWatch::watch_file(int fd, const struct stat& st) {
    const std::lock_guard guard(dir_->mutex_);
    if (!dir_->inotify_ok_ || (file_wd_ >= 0 && st.st_dev == file_dev_ && st.st_ino == file_ino_)) {
        return;
    }
    if (file_wd_ >= 0) {
        dir_->release_file_watch(*this, file_wd_);
        file_wd_ = -1;
    }
    // The descriptor's magic link leads to the very file read, whatever the path names now.
    const std::string link = "/proc/self/fd/" + std::to_string(fd);
    const int wd = ::inotify_add_watch(dir_->inotify_.get(), link.c_str(), IN_MODIFY | IN_ATTRIB);
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
    const std::lock_guard guard(dir_->mutex_);
    have_stat_ = st != nullptr;
    if (st != nullptr) {
        loaded_stat_ = *st;
    }
    ::clock_gettime(CLOCK_REALTIME, &loaded_at_);
}

void ChangeWatch::mark_own_change(const struct stat& st) {
    mark_loaded(&st);
}

bool ChangeWatch::differs_from_loaded(const struct stat& st) const {
    return !have_stat_ || st.st_dev != loaded_stat_.st_dev || st.st_ino != loaded_stat_.st_ino ||
           st.st_size != loaded_stat_.st_size || ns(st.st_mtim) != ns(loaded_stat_.st_mtim) ||
           ns(st.st_ctim) != ns(loaded_stat_.st_ctim);
}

}  // namespace kvp
