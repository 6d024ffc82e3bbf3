#include "daemon.hpp"

#include <fcntl.h>
#include <signal.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "filesystem.hpp"

namespace kvpfs {

const struct fuse_lowlevel_ops& operations() {
    static const struct fuse_lowlevel_ops ops = [] {
        struct fuse_lowlevel_ops o {};
        o.init = op_init;
        o.lookup = op_lookup;
        o.forget = op_forget;
        o.forget_multi = op_forget_multi;
        o.getattr = op_getattr;
        o.setattr = op_setattr;
        o.statfs = op_statfs;
        o.opendir = op_opendir;
        o.readdir = op_readdir;
        o.releasedir = op_releasedir;
        o.open = op_open;
        o.create = op_create;
        o.mknod = op_mknod;
        o.read = op_read;
        o.write = op_write;
        o.flush = op_flush;
        o.fsync = op_fsync;
        o.release = op_release;
        o.unlink = op_unlink;
        o.rename = op_rename;
        o.mkdir = op_mkdir;
        o.rmdir = op_rmdir;
        o.symlink = op_symlink;
        o.link = op_link;
        return o;
    }();
    return ops;
}

namespace {

const char* const kLevelNames[] = {"debug", "info", "warning", "error"};

// Where lines go: stderr in the foreground, syslog when detached, and the -o logfile as well.
struct LogTargets {
    bool to_stderr = true;
    bool to_syslog = false;
    int file = -1;  // the -o logfile, opened O_APPEND before mounting; -1: none
};
LogTargets g_log;

void write_line(int fd, const std::string& line) {
    // One write per line, so lines of concurrent threads never interleave.
    (void)!::write(fd, line.data(), line.size());
}

void daemon_sink(kvp::LogLevel level, const std::string& message) {
    if (level == kvp::LogLevel::debug && !kvp::log_debug_enabled()) {
        return;
    }
    const char* name = kLevelNames[static_cast<int>(level)];
    if (g_log.to_stderr) {
        write_line(STDERR_FILENO, std::string("kvpfs: ") + name + ": " + message + '\n');
    }
    if (g_log.file >= 0) {
        char stamp[40] = "";
        const std::time_t now = std::time(nullptr);
        struct tm utc {};
        if (gmtime_r(&now, &utc) != nullptr) {
            std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ ", &utc);
        }
        write_line(g_log.file, std::string(stamp) + "kvpfs[" + std::to_string(::getpid()) +
                                   "]: " + name + ": " + message + '\n');
    }
    if (g_log.to_syslog) {
        static const int kPriority[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
        syslog(kPriority[static_cast<int>(level)], "%s", message.c_str());
    }
}

// Opens the -o logfile and, for a daemon that will detach without one, says once on stderr
// when syslog cannot take its lines (no /dev/log: containers). Returns false on failure.
bool prepare_log(const Options& options) {
    if (!options.logfile.empty()) {
        // O_NONBLOCK: a FIFO without a reader fails at once (ENXIO) instead of holding the
        // start-up forever, and a reader that stalls costs lines, never a blocked request.
        // O_NOCTTY: a terminal given as the log file does not become ours.
        g_log.file =
            ::open(options.logfile.c_str(),
                   O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0640);
        if (g_log.file < 0) {
            const int err = errno;
            std::fprintf(stderr, "kvpfs: logfile '%s': %s\n", options.logfile.c_str(),
                         err == ENXIO ? "a FIFO with no reader" : std::strerror(err));
            return false;
        }
    } else if (!options.foreground && ::access("/dev/log", W_OK) != 0) {
        std::fprintf(stderr,
                     "kvpfs: warning: /dev/log is missing, so the detached daemon's log lines "
                     "will be lost; use -f or -o logfile=PATH to keep them\n");
    }
    return true;
}

// Started after detaching (a fork keeps only the calling thread); false when it cannot be.
bool start_cache(Filesystem& fs, struct fuse_session* se) {
    try {
        fs.mode().start(se);
        return true;
    } catch (const std::exception& e) {
        kvp::log(kvp::LogLevel::error, std::string("-o cache: ") + e.what());
        return false;
    }
}

struct CacheStop {
    Filesystem& fs;
    explicit CacheStop(Filesystem& f) : fs(f) {}
    CacheStop(const CacheStop&) = delete;
    CacheStop& operator=(const CacheStop&) = delete;
    CacheStop(CacheStop&&) = delete;
    CacheStop& operator=(CacheStop&&) = delete;
    ~CacheStop() { fs.mode().stop(); }
};

struct ArgsDeleter {
    void operator()(struct fuse_args* a) const {
        fuse_opt_free_args(a);
        delete a;
    }
};

}  // namespace

int run_daemon(const Options& options) {
    kvp::set_log_debug(options.debug);
    kvp::set_log_sink(daemon_sink);
    if (!prepare_log(options)) {
        return 1;
    }

    std::unique_ptr<Filesystem> fs;
    try {
        fs = std::make_unique<Filesystem>(options);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "kvpfs: %s\n", e.what());
        return 1;
    }

    std::unique_ptr<struct fuse_args, ArgsDeleter> args(new fuse_args FUSE_ARGS_INIT(0, nullptr));
    for (const std::string& a : options.fuse_args) {
        fuse_opt_add_arg(args.get(), a.c_str());
    }
    struct fuse_session* se =
        fuse_session_new(args.get(), &operations(), sizeof(struct fuse_lowlevel_ops), fs.get());
    if (se == nullptr) {
        return 1;  // libfuse printed why (e.g. an option it does not accept)
    }
    int status = 1;
    if (fuse_set_signal_handlers(se) == 0) {
        if (fuse_session_mount(se, options.mountpoint.c_str()) == 0) {
            if (!options.foreground) {
                openlog("kvpfs", LOG_PID, LOG_DAEMON);
                g_log.to_stderr = false;
                g_log.to_syslog = options.logfile.empty();
            }
            kvp::log(kvp::LogLevel::info,
                     "mounted " + options.pool_dir + " on " + options.mountpoint);
            if (fuse_daemonize(options.foreground ? 1 : 0) == 0 && start_cache(*fs, se)) {
                // -o cache: the invalidation thread stops before the session ends.
                const CacheStop cache_stop(*fs);
                int rc = 0;
                if (options.single_thread) {
                    rc = fuse_session_loop(se);
                } else {
                    struct fuse_loop_config* cfg = fuse_loop_cfg_create();
                    fuse_loop_cfg_set_clone_fd(cfg, 0);
                    // A request waiting for a pool's lock keeps its thread for up to
                    // lock_timeout; so that waits never queue behind each other (each
                    // operation bounded from its own start) the loop may start many threads,
                    // and keeps few of them once idle.
                    fuse_loop_cfg_set_max_threads(cfg, 256);
                    fuse_loop_cfg_set_idle_threads(cfg, 16);
                    rc = fuse_session_loop_mt(se, cfg);
                    fuse_loop_cfg_destroy(cfg);
                }
                // libfuse's signal handler ends the loop and reports the signal number
                // (3.14: SIGTERM, SIGINT, SIGHUP): that is the clean way out.
                status = (rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP) ? 0 : 1;
                if (status != 0) {
                    kvp::log(kvp::LogLevel::error, "session loop failed: " + std::to_string(rc));
                }
            }
            fuse_session_unmount(se);
            kvp::log_flush();
            kvp::log(kvp::LogLevel::info, "unmounted " + options.mountpoint);
        }
        fuse_remove_signal_handlers(se);
    }
    fuse_session_destroy(se);
    if (g_log.file >= 0) {
        ::close(g_log.file);
    }
    return status;
}

}  // namespace kvpfs
