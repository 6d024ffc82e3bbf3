#pragma once
// Which process holds which key file, from /proc (process_files.cpp). FUSE's FLUSH comes at
// every close() of any descriptor, from the closing thread, and says nothing of the others: a
// shell's `echo V > K` closes the descriptor it opened right after dup2()ing it to stdout,
// before the write. What waits for a process's last close (an O_TRUNC or a create with
// nothing written yet) asks here; nothing else does, so reads pay nothing.

#include <sys/types.h>

#include <string>

#include "inode_table.hpp"

namespace kvpfs {

// The thread group (process) of thread `tid` (FUSE names the calling thread); 0 for 0, a
// caller in a pid namespace kvpfs cannot see.
[[nodiscard]] pid_t thread_group_of(pid_t tid);
// Does process `process` still hold a descriptor of `ino` (named `name`, "POOL/NAME", in the
// mount)? False for 0 and for a process gone or exiting.
[[nodiscard]] bool process_holds(pid_t process, Ino ino, const std::string& name);
// Does any process but `except` hold one?
[[nodiscard]] bool others_hold(pid_t except, Ino ino, const std::string& name);

}  // namespace kvpfs
