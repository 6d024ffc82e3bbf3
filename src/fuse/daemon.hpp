#pragma once
// The daemon's life: mount, serve, unmount (docs/behaviour.md §8).

#include "options.hpp"

namespace kvpfs {

// Mounts and serves until unmounted or signalled (SIGTERM/SIGINT/SIGHUP). Returns the
// process exit status.
int run_daemon(const Options& options);

}  // namespace kvpfs
