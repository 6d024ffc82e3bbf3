// kvpfs: the Hyper-V KVP pool files as a filesystem. Parses the command line and hands
// over to the daemon; everything else lives in the other files of this directory.

#include <fuse_lowlevel.h>

#include <malloc.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "daemon.hpp"
#include "kvpfs_version.hpp"
#include "mount_point.hpp"
#include "options.hpp"

int main(int argc, char** argv) {
    kvpfs::ParseResult parsed = kvpfs::parse_options(argc, argv);
    kvpfs::Options& o = parsed.options;
    if (o.show_help) {
        std::fputs(kvpfs::usage_text(argc > 0 ? argv[0] : "kvpfs").c_str(), stdout);
        return 0;
    }
    if (o.show_version) {
        std::printf("kvpfs %s (libfuse %s)\n", KVPFS_VERSION, fuse_pkgversion());
        return 0;
    }
    if (parsed.error.empty()) {
        parsed.error = kvpfs::check_paths(o);
    }
    if (parsed.error.empty()) {
        // libfuse would say only "fuse: mount failed: Invalid argument" for /dev/null there.
        parsed.error = kvpfs::fuse_device_problem();
    }
    if (!parsed.error.empty()) {
        std::fprintf(stderr, "kvpfs: %s\n", parsed.error.c_str());
        return 2;
    }
    if (std::string warning = kvpfs::pool_dir_warning(o.pool_dir); !warning.empty()) {
        std::fprintf(stderr, "kvpfs: warning: %s\n", warning.c_str());
    }
    // One malloc arena: the loop's worker threads would each keep their own, holding on to the
    // memory of reloaded pools (peak RSS 28 -> 16 MiB with two 10,000-record pools, measured by
    // scripts/bench.sh, at no measurable cost in time: requests are serialised per pool anyway).
    mallopt(M_ARENA_MAX, 1);
    // Past a file size limit (ulimit -f) a write fails with EFBIG and the change is undone;
    // the default action of SIGXFSZ would kill the daemon instead, leaving a dead mount.
    std::signal(SIGXFSZ, SIG_IGN);
    return kvpfs::run_daemon(o);
}
