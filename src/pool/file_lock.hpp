#pragma once
// Whole-file locks of both families other KVP writers use, taken in one order:
// flock (cloud-init) first, then an open-file-description fcntl lock (hv_kvp_daemon and
// the seed samples take classic fcntl locks; OFD locks conflict with those, keep the
// daemon's threads apart when each has its own descriptor, and are not dropped when some
// other descriptor of the file closes). Released in reverse order by the destructor.

#include <chrono>
#include <string>

namespace kvp {

enum class LockMode { shared, exclusive };

class FileLock {
  public:
    // Waits at most `timeout` for both locks; past it throws kvp::Error(EAGAIN) whose text
    // names the holder's PID where the kernel reports it. `what` names the file for messages.
    FileLock(int fd, LockMode mode, std::chrono::milliseconds timeout, const std::string& what);
    // The same, waiting until `deadline`: an operation's bound counts from its own start,
    // whatever it did before it came to the lock.
    FileLock(int fd, LockMode mode, std::chrono::steady_clock::time_point deadline,
             const std::string& what);
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;
    FileLock(FileLock&&) = delete;
    FileLock& operator=(FileLock&&) = delete;
    ~FileLock();

  private:
    int fd_;
    bool have_flock_ = false;
    bool have_record_lock_ = false;
};

// The PID holding a conflicting lock on the file, or 0 when the kernel does not say
// (an OFD holder reports -1 and flock holders are found in /proc/locks by inode).
[[nodiscard]] long lock_holder_pid(int fd, LockMode wanted);

}  // namespace kvp
