#include "options.hpp"

#include "mount_point.hpp"

#include <fuse_opt.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

namespace kvpfs {
namespace {

enum Key {
    kHelp,
    kVersion,
    kForeground,
    kDebug,
    kSingle,
    kReadOnly,
    kReadWrite,
    kRaw,
    kCache,
    kCacheLevel,
    kLimits,
    kUid,
    kGid,
    kLockTimeout,
    kLookInterval,
    kUmask,
    kLogfile,
    kAuto,
};

struct ParseState {
    Options* options;
    std::vector<std::string> positionals;
    std::string error;
    bool fsname_given = false;  // -o fsname= / subtype= replace kvpfs's own
    bool subtype_given = false;
};

// Every option kvpfs handles itself: they never reach libfuse or the kernel.
// clang-format off
const struct fuse_opt kSpec[] = {
    FUSE_OPT_KEY("-h", kHelp),
    FUSE_OPT_KEY("--help", kHelp),
    FUSE_OPT_KEY("-V", kVersion),
    FUSE_OPT_KEY("--version", kVersion),
    FUSE_OPT_KEY("-f", kForeground),
    FUSE_OPT_KEY("-d", kDebug),
    FUSE_OPT_KEY("debug", kDebug),
    FUSE_OPT_KEY("-s", kSingle),
    FUSE_OPT_KEY("ro", kReadOnly),
    FUSE_OPT_KEY("rw", kReadWrite),
    FUSE_OPT_KEY("raw", kRaw),
    FUSE_OPT_KEY("cache", kCache),
    FUSE_OPT_KEY("cache=", kCacheLevel),
    FUSE_OPT_KEY("limits=", kLimits),
    FUSE_OPT_KEY("uid=", kUid),
    FUSE_OPT_KEY("gid=", kGid),
    FUSE_OPT_KEY("lock_timeout=", kLockTimeout),
    FUSE_OPT_KEY("look_interval=", kLookInterval),
    FUSE_OPT_KEY("umask=", kUmask),
    FUSE_OPT_KEY("logfile=", kLogfile),
    FUSE_OPT_KEY("auto=", kAuto),
    FUSE_OPT_END,
};
// clang-format on

enum class MountOption { kernel, ignored, unknown };

// The generic mount options libfuse's fuse_session_new() understands (lib/mount.c), which
// mount.fuse3 passes on from fstab/mount -o. Anything else is refused before mounting
// with our own one-line message instead of libfuse's.
MountOption mount_option_kind(const char* arg) {
    static const char* const kFlags[] = {
        "allow_root",   "dev",
        "nodev",        "suid",
        "nosuid",       "exec",
        "noexec",       "async",
        "sync",         "atime",
        "noatime",      "nodiratime",
        "relatime",     "norelatime",
        "strictatime",  "nostrictatime",
        "lazytime",     "nolazytime",
        "dirsync",      "allow_other",
        "auto_unmount", "default_permissions",
        "blkdev",
    };
    static const char* const kValued[] = {"fsname=",  "subtype=",   "max_read=",   "blksize=",
                                          "context=", "fscontext=", "defcontext=", "rootcontext="};
    static const char* const kIgnored[] = {"auto", "noauto", "nofail", "_netdev",
                                           "user", "nouser", "users",  "defaults"};
    for (const char* f : kFlags) {
        if (std::strcmp(arg, f) == 0) {
            return MountOption::kernel;
        }
    }
    for (const char* v : kValued) {
        if (std::strncmp(arg, v, std::strlen(v)) == 0) {
            return MountOption::kernel;
        }
    }
    for (const char* i : kIgnored) {
        if (std::strcmp(arg, i) == 0) {
            return MountOption::ignored;
        }
    }
    if (std::strncmp(arg, "x-", 2) == 0 || std::strncmp(arg, "comment=", 8) == 0) {
        return MountOption::ignored;
    }
    return MountOption::unknown;
}

const char* value_of(const char* arg) {
    const char* eq = std::strchr(arg, '=');
    return eq != nullptr ? eq + 1 : "";
}

bool parse_number(const char* text, unsigned& out, int base = 10) {
    const char* end = text + std::strlen(text);
    auto [ptr, ec] = std::from_chars(text, end, out, base);
    return ec == std::errc() && ptr == end && ptr != text;
}

// A number, or a user (group) name looked up in the passwd (group) database.
bool parse_id(const char* text, bool group, unsigned& out) {
    if (parse_number(text, out)) {
        return out != std::numeric_limits<unsigned>::max();  // (uid_t)-1 means "no change"
    }
    std::vector<char> buf(16384);
    if (group) {
        struct group gr {};
        struct group* found = nullptr;
        if (getgrnam_r(text, &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
            return false;
        }
        out = found->gr_gid;
    } else {
        struct passwd pw {};
        struct passwd* found = nullptr;
        if (getpwnam_r(text, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
            return false;
        }
        out = found->pw_uid;
    }
    return true;
}

bool parse_seconds(const char* text, std::chrono::milliseconds& out) {
    if (*text == '\0') {
        return false;
    }
    char* end = nullptr;
    errno = 0;
    const double seconds = std::strtod(text, &end);
    if (errno != 0 || end == nullptr || *end != '\0' || !std::isfinite(seconds) || seconds < 0 ||
        seconds > 86400.0 * 365) {
        return false;
    }
    out = std::chrono::milliseconds(static_cast<long long>(std::llround(seconds * 1000.0)));
    return true;
}

int process(void* data, const char* arg, int key, struct fuse_args* /*outargs*/) {
    auto* st = static_cast<ParseState*>(data);
    Options& o = *st->options;
    auto fail = [&](std::string why) {
        if (st->error.empty()) {
            st->error = std::move(why);
        }
        return 0;  // discard; the error is reported after parsing
    };
    switch (key) {
        case FUSE_OPT_KEY_NONOPT:
            st->positionals.emplace_back(arg);
            return 0;
        case FUSE_OPT_KEY_OPT:
            if (arg[0] == '-') {
                // A dash option nobody knows (libfuse would only pass on -o forms).
                return fail(std::string("unknown option '") + arg + "'");
            }
            switch (mount_option_kind(arg)) {
                case MountOption::kernel:
                    if (std::strncmp(arg, "fsname=", 7) == 0 ||
                        std::strncmp(arg, "subtype=", 8) == 0) {
                        const bool fsname = arg[0] == 'f';
                        if (*value_of(arg) == '\0') {
                            // (the kernel would refuse the mount with a bare EINVAL)
                            return fail(std::string("bad value for option ") +
                                        (fsname ? "fsname" : "subtype") + ": a name is needed");
                        }
                        (fsname ? st->fsname_given : st->subtype_given) = true;
                    } else if (std::strncmp(arg, "max_read=", 9) == 0) {
                        // Kept: init must answer with the same size, or libfuse ends the
                        // session with EPROTO right after mounting.
                        if (!parse_number(value_of(arg), o.max_read) || o.max_read == 0) {
                            return fail(std::string("bad value for option max_read: '") +
                                        value_of(arg) + "' (bytes, e.g. 131072)");
                        }
                    }
                    return 1;  // for libfuse / the kernel (dev, allow_other, ...)
                case MountOption::ignored:
                    return 0;  // fstab-only words mount(8) may pass on (noauto, nofail, ...)
                case MountOption::unknown:
                    break;
            }
            return fail(std::string("unknown option '-o ") + arg + "' (see --help)");
        case kHelp:
            o.show_help = true;
            return 0;
        case kVersion:
            o.show_version = true;
            return 0;
        case kForeground:
            o.foreground = true;
            return 0;
        case kDebug:
            o.debug = true;
            o.foreground = true;
            return 0;
        case kSingle:
            o.single_thread = true;
            return 0;
        case kReadOnly:  // of ro and rw, the last one wins (as for mount)
            o.read_only = true;
            return 0;
        case kReadWrite:
            o.read_only = false;
            return 0;
        case kRaw:
            o.raw = true;
            return 0;
        case kCache:
            o.cache = true;
            o.cache_contents = false;
            return 0;
        case kCacheLevel: {
            const std::string v = value_of(arg);
            if (v == "names") {
                o.cache = true;
                o.cache_contents = false;
            } else if (v == "all") {
                o.cache = true;
                o.cache_contents = true;
            } else {
                return fail("bad value for option cache: '" + v + "' (use names or all)");
            }
            return 0;
        }
        case kLimits: {
            const std::string v = value_of(arg);
            if (v == "host") {
                o.limits = kvp::Limits::host;
            } else if (v == "pool") {
                o.limits = kvp::Limits::pool;
            } else {
                return fail("bad value for option limits: '" + v + "' (use host or pool)");
            }
            return 0;
        }
        case kAuto: {
            const std::string v = value_of(arg);
            if (v == "host") {
                o.auto_intrinsic = true;
            } else if (v == "file") {
                o.auto_intrinsic = false;
            } else {
                return fail("bad value for option auto: '" + v + "' (use host or file)");
            }
            return 0;
        }
        case kUid:
        case kGid: {
            unsigned id = 0;
            if (!parse_id(value_of(arg), key == kGid, id)) {
                return fail(std::string("bad value for option ") + (key == kUid ? "uid" : "gid") +
                            ": '" + value_of(arg) + "' (a number or a known " +
                            (key == kUid ? "user" : "group") + " name is needed)");
            }
            if (key == kUid) {
                o.uid = id;
            } else {
                o.gid = id;
            }
            return 0;
        }
        case kUmask: {
            unsigned mask = 0;
            if (!parse_number(value_of(arg), mask, 8) || mask > 0777) {
                return fail(std::string("bad value for option umask: '") + value_of(arg) +
                            "' (octal, e.g. 022 or 002)");
            }
            o.umask = static_cast<mode_t>(mask);
            return 0;
        }
        case kLogfile:
            o.logfile = value_of(arg);
            if (o.logfile.empty()) {
                return fail("bad value for option logfile: a path is needed");
            }
            return 0;
        case kLockTimeout:
            if (!parse_seconds(value_of(arg), o.lock_timeout)) {
                return fail(std::string("bad value for option lock_timeout: '") + value_of(arg) +
                            "' (seconds, e.g. 10 or 0.5)");
            }
            return 0;
        case kLookInterval:
            if (!parse_seconds(value_of(arg), o.look_interval) ||
                o.look_interval < std::chrono::milliseconds(1)) {
                return fail(std::string("bad value for option look_interval: '") + value_of(arg) +
                            "' (seconds, at least 0.001, e.g. 0.1)");
            }
            return 0;
        default:
            return 1;
    }
}

// Escapes a value for a libfuse "-o name=value" list (',' separates options).
std::string escape_opt(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == ',' || c == '\\') {
            out.push_back('\\');
        }
        out.push_back(c);
    }
    return out;
}

}  // namespace

ParseResult parse_options(int argc, char** argv) {
    ParseResult result;
    // Files belong to whoever mounts, as on sshfs and other user mounts: a user's own mount
    // lets that user write guest/. -o uid= and -o gid= (parsed below) override it.
    result.options.uid = ::getuid();
    result.options.gid = ::getgid();
    ParseState st{&result.options, {}, {}};
    // fuse_opt_parse would print its own line before ours: say it in one line instead.
    for (int i = 1; i < argc && std::strcmp(argv[i], "--") != 0; ++i) {
        if (std::strcmp(argv[i], "-o") == 0 && i + 1 == argc) {
            result.error = "option -o needs an argument (see --help)";
            return result;
        }
    }
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    if (fuse_opt_parse(&args, &st, kSpec, process) != 0) {
        // fuse_opt_parse printed its own reason (e.g. a missing -o argument).
        result.error = "cannot parse the command line";
        fuse_opt_free_args(&args);
        return result;
    }
    Options& o = result.options;
    for (int i = 0; i < args.argc; ++i) {
        o.fuse_args.emplace_back(args.argv[i]);
    }
    fuse_opt_free_args(&args);
    if (o.fuse_args.empty()) {
        o.fuse_args.emplace_back("kvpfs");
    }
    if (!st.error.empty()) {
        result.error = st.error;
        return result;
    }
    if (o.show_help || o.show_version) {
        return result;
    }
    if (st.positionals.empty()) {
        result.error = "missing MOUNTPOINT (usage: kvpfs [OPTIONS] [POOL_DIR] MOUNTPOINT)";
        return result;
    }
    if (st.positionals.size() > 2) {
        result.error = "too many arguments: '" + st.positionals[2] +
                       "' (usage: kvpfs [OPTIONS] [POOL_DIR] MOUNTPOINT)";
        return result;
    }
    if (st.positionals.size() == 2) {
        o.pool_dir = st.positionals[0];
    }
    o.mountpoint = st.positionals.back();
    // Always: the kernel checks mode bits, so with allow_other others read but only the
    // owner writes guest/ (docs/behaviour.md §8). fsname/subtype make `mount` show fuse.kvpfs.
    o.fuse_args.emplace_back("-odefault_permissions");
    // Plain values need neither device files nor set-id bits: nodev,nosuid on every mount,
    // after the user's options so that the dev,suid mount.fuse3 passes for fstab lines lose.
    o.fuse_args.emplace_back("-onodev");
    o.fuse_args.emplace_back("-onosuid");
    if (!st.subtype_given) {
        o.fuse_args.emplace_back("-osubtype=kvpfs");
    }
    o.fsname_given = st.fsname_given;
    if (o.read_only) {
        // A read-only mount for the kernel too: /proc/mounts says ro, test -w is false, and
        // the kernel answers EROFS before asking us.
        o.fuse_args.emplace_back("-oro");
    }
    if (o.debug) {
        // libfuse's own trace: every request and its result (errno or reply size).
        o.fuse_args.emplace_back("-odebug");
    }
    return result;
}

namespace {

// "/a//b/./c/" -> "/a/b/c": the same directory, spelled so that the engine can follow it by
// events (it stats every look for a path with such components). ".." stays: it could follow a
// symbolic link.
std::string plain_absolute(const std::string& path) {
    std::string out;
    std::size_t begin = 0;
    while (begin < path.size()) {
        std::size_t end = path.find('/', begin);
        if (end == std::string::npos) {
            end = path.size();
        }
        const std::string component = path.substr(begin, end - begin);
        if (!component.empty() && component != ".") {
            out += "/" + component;
        }
        begin = end + 1;
    }
    return out.empty() ? "/" : out;
}

}  // namespace

std::string check_paths(Options& o) {
    struct stat st {};
    if (::stat(o.pool_dir.c_str(), &st) != 0) {
        return "POOL_DIR '" + o.pool_dir + "': " + std::strerror(errno);
    }
    if (!S_ISDIR(st.st_mode)) {
        return "POOL_DIR '" + o.pool_dir + "': not a directory";
    }
    // The pools are followed by the path as given (made absolute, since the daemon changes its
    // directory to /): a symbolic link on it that is later pointed elsewhere is followed there.
    // Only the overlap checks and the default fsname use the resolved path.
    std::string real_pool_dir = o.pool_dir;
    if (char* real = ::realpath(o.pool_dir.c_str(), nullptr); real != nullptr) {
        real_pool_dir = real;
        std::free(real);
    }
    if (o.pool_dir.front() != '/') {
        std::string cwd(PATH_MAX, '\0');
        if (::getcwd(cwd.data(), cwd.size()) == nullptr) {
            return std::string("POOL_DIR '") + o.pool_dir + "': " + std::strerror(errno);
        }
        cwd.resize(std::strlen(cwd.c_str()));
        o.pool_dir = cwd + "/" + o.pool_dir;
    }
    o.pool_dir = plain_absolute(o.pool_dir);
    if (!o.fsname_given) {
        o.fuse_args.emplace_back("-ofsname=" + escape_opt(real_pool_dir));
    }
    if (::stat(o.mountpoint.c_str(), &st) != 0) {
        if (errno == ENOTCONN) {
            return dead_mount_reason(o.mountpoint);
        }
        return "MOUNTPOINT '" + o.mountpoint + "': " + std::strerror(errno);
    }
    if (!S_ISDIR(st.st_mode)) {
        return "MOUNTPOINT '" + o.mountpoint + "': not a directory";
    }
    // Absolute, as libfuse's own parser makes it: unmounting at exit runs after the daemon
    // changed its directory to /, where a relative path would name something else.
    if (char* real = ::realpath(o.mountpoint.c_str(), nullptr); real != nullptr) {
        o.mountpoint = real;
        std::free(real);
    }
    return mountpoint_refusal(real_pool_dir, o.mountpoint);
}

std::string usage_text(const char* program) {
    std::string p = program != nullptr ? program : "kvpfs";
    return "usage: " + p +
           " [OPTIONS] [POOL_DIR] MOUNTPOINT\n"
           "\n"
           "Shows the Hyper-V KVP pool files of POOL_DIR (default /var/lib/hyperv) as\n"
           "MOUNTPOINT/{external,guest,auto,parameter}/KEY. Only guest/ is writable.\n"
           "\n"
           "options:\n"
           "  -h, --help             print this help and exit\n"
           "  -V, --version          print the version and exit\n"
           "  -f                     stay in the foreground (log to stderr)\n"
           "  -d                     debug: log every request and its result (implies -f)\n"
           "  -s                     single-threaded\n"
           "  -o ro                  a read-only mount: every change fails with EROFS\n"
           "  -o rw                  a read-write mount (the default; of ro and rw the last wins)\n"
           "  -o raw                 files hold exactly the value (no trailing newline)\n"
           "  -o cache               let the kernel cache names, attributes and listings;\n"
           "                         kvpfs invalidates them when a pool changes (another\n"
           "                         process's change shows within milliseconds)\n"
           "  -o cache=names         the same as -o cache\n"
           "  -o cache=all           -o cache, and key contents too: opens and reads of\n"
           "                         cached keys reach no daemon, each close one FLUSH; a\n"
           "                         read may tear during another writer's change (kvpfs(8))\n"
           "  -o limits=host|pool    write limits: what the host receives intact (254/1022\n"
           "                         UTF-16 units, valid UTF-8; default) or the file format's\n"
           "                         (511/2047 bytes)\n"
           "  -o auto=host|file      auto/: the file's records and the intrinsic items the\n"
           "                         host is shown (default), or .kvp_pool_2 alone\n"
           "  -o uid=U, -o gid=G     owner and group of every file, a number or a name (default:\n"
           "                         the user and group that mount)\n"
           "  -o umask=M             octal bits taken from the modes (default 022: guest/ 0755,\n"
           "                         its files 0644; with 002 the group may write guest/ too)\n"
           "  -o lock_timeout=S      longest wait for a pool file lock, in seconds (default 10)\n"
           "  -o look_interval=S     -o cache: how often every pool file's identity, size and\n"
           "                         times are looked at besides inotify (default 0.1)\n"
           "  -o logfile=PATH        also append log lines to PATH (detached: instead of syslog)\n"
           "  -o allow_other         let other users in (mode bits are always checked)\n"
           "  -o allow_root          let root in besides the mounting user\n"
           "  -o fsname=N, subtype=T what mount and df show (default: POOL_DIR, fuse.kvpfs)\n"
           "  -o OPT[,OPT...]        generic mount options (rw, nosuid, nodev, ...)\n";
}

}  // namespace kvpfs
