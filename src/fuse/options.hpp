#pragma once
// The daemon's command line (docs/behaviour.md §1, §8), parsed the libfuse way (fuse_opt_parse) so
// that `mount -t fuse.kvpfs POOL_DIR MOUNTPOINT -o rw,dev,suid,...` works: options may come
// before or after the paths. kvpfs's own options are taken out; the generic mount options
// that remain are handed to fuse_session_new(), which passes them to the kernel and rejects
// any it does not know (still before mounting).

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "limits.hpp"

namespace kvpfs {

struct Options {
    std::string pool_dir = "/var/lib/hyperv";
    std::string mountpoint;
    bool foreground = false;
    bool debug = false;
    bool single_thread = false;
    bool read_only = false;
    bool raw = false;
    // -o cache: the kernel keeps entries, attributes, pages and listings; kvpfs invalidates
    // them (cache_invalidator.hpp). Off: nothing about a key is ever cached.
    bool cache = false;
    // -o cache=all: -o cache, and the kernel also keeps key contents in its page cache and
    // sends no OPEN, FLUSH or RELEASE (mode_cache_all.cpp). Implies cache.
    bool cache_contents = false;
    kvp::Limits limits = kvp::Limits::host;
    // -o auto=host (default): auto/ adds the intrinsic items hv_kvp_daemon computes;
    // -o auto=file: auto/ shows .kvp_pool_2 alone.
    bool auto_intrinsic = true;
    // Owner and group of every file: the mounting user's unless -o uid= / -o gid= say otherwise.
    uid_t uid = 0;
    gid_t gid = 0;
    // Taken away from the modes of guest/ and its files (and of the read-only pools, which
    // never have write bits): -o gid=kvp,umask=002 lets a group publish keys.
    mode_t umask = 022;
    // Where log lines go besides (foreground) or instead of (detached) syslog; "" = none.
    std::string logfile;
    bool fsname_given = false;  // -o fsname= was given: kvpfs does not set its own
    unsigned max_read = 0;      // -o max_read=N (0: not given); init must repeat it
    std::chrono::milliseconds lock_timeout{10'000};
    // -o look_interval: how often the cache thread (-o cache) looks at every pool file's
    // identity, size and timestamps without an inotify event (a store through a shared
    // mapping sends none), and at the pool directory.
    std::chrono::milliseconds look_interval{100};
    bool show_help = false;
    bool show_version = false;
    // argv[0] followed by the options for fuse_session_new (mount options for the kernel).
    std::vector<std::string> fuse_args;
};

struct ParseResult {
    Options options;
    std::string error;  // one line; empty when the command line is usable
};

[[nodiscard]] ParseResult parse_options(int argc, char** argv);
// Checks what can be checked before mounting: POOL_DIR is a directory, MOUNTPOINT exists
// and is a directory, and mountpoint_refusal() (mount_point.hpp) finds nothing against it.
// Returns a one-line reason, or "" when fine.
// Also makes both paths absolute: the daemon changes to "/" when it starts serving.
[[nodiscard]] std::string check_paths(Options& options);
[[nodiscard]] std::string usage_text(const char* program);

}  // namespace kvpfs
