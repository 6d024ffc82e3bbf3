#pragma once
// Whether a process other than this one wrote a file between two drains: fanotify's FAN_MODIFY
// events carry the writer's PID and the kernel never merges the events of two processes, so
// unlike with inotify (where repeated IN_MODIFY events merge) our own writes cannot hide
// another writer's. For the change
// path (pool_file_change.cpp): after its own writes, a change skips reading the file back when
// nothing but itself wrote it meanwhile.
//
// Unavailable (no CAP_SYS_ADMIN, which its priority class needs; no marks left): every look
// says "maybe", and the change path reads the file back instead. A store through a shared
// mapping sends no FAN_MODIFY: by a process that ignores the locks, during a change through
// the engine, it is not seen this way (docs/behaviour.md §3).
//
// Not thread-safe: the owner's mutex (PoolFile::mutex_) guards it.

#include <sys/stat.h>

#include "unique_fd.hpp"

namespace kvp {

class ForeignWrites {
  public:
    ForeignWrites();
    ForeignWrites(const ForeignWrites&) = delete;
    ForeignWrites& operator=(const ForeignWrites&) = delete;
    ForeignWrites(ForeignWrites&&) = delete;
    ForeignWrites& operator=(ForeignWrites&&) = delete;
    ~ForeignWrites() = default;

    // Watches the file open at `fd` (`st` its fstat) from now on, instead of the one before.
    // Returns whether it is watched.
    bool watch(int fd, const struct stat& st);
    // Reads every queued event. True when one came from another process, the queue overflowed,
    // the file is not watched or was marked since the last drain, or the queue cannot be read:
    // then "maybe".
    bool drain();

  private:
    UniqueFd fan_;
    bool watched_ = false;
    bool unknown_ = false;  // just marked: the next drain says "maybe"
    dev_t dev_ = 0;
    ino_t ino_ = 0;
};

}  // namespace kvp
