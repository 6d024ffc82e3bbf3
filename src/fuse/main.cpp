// kvpfs: the Hyper-V KVP pool files as a filesystem. Parses the command line and hands
// over to the daemon; everything else lives in the other files of this directory.

#include <fuse_lowlevel.h>

#include <cstdio>

#include "daemon.hpp"
#include "kvpfs_version.hpp"
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
    if (!parsed.error.empty()) {
        std::fprintf(stderr, "kvpfs: %s\n", parsed.error.c_str());
        return 2;
    }
    return kvpfs::run_daemon(o);
}
