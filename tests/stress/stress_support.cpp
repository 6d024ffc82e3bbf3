#include "stress_support.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

namespace kvpstress {
namespace {

constexpr long kFuseSuperMagic = 0x65735546;

void nap_ms(long ms) {
    struct timespec ts {
        ms / 1000, (ms % 1000) * 1'000'000
    };
    while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return h;
}

}  // namespace

std::vector<std::string> list_dir(const std::string& path) {
    std::vector<std::string> names;
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) {
        return {"<opendir: " + std::string(std::strerror(errno)) + ">"};
    }
    while (const dirent* e = ::readdir(d)) {
        const std::string name = e->d_name;
        if (name != "." && name != "..") {
            names.push_back(name);
        }
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
}

std::string read_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        throw std::runtime_error("open " + path + ": " + std::strerror(errno));
    }
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            throw std::runtime_error("read " + path + ": " + std::strerror(e));
        }
        if (n == 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

void write_file(const std::string& path, std::string_view bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw std::runtime_error("create " + path + ": " + std::strerror(errno));
    }
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n <= 0) {
            ::close(fd);
            throw std::runtime_error("write " + path);
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

std::string printable(std::string_view s, std::size_t max) {
    std::string out = "\"";
    for (std::size_t i = 0; i < s.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    out += "\"";
    if (s.size() > max) {
        out += "...(" + std::to_string(s.size()) + " bytes)";
    }
    return out;
}

std::string escape_key(const std::string& key) {
    if (key == ".")
        return "%2E";
    if (key == "..")
        return "%2E%2E";
    std::string out;
    for (const char c : key) {
        if (c == '%') {
            out += "%25";
        } else if (c == '/') {
            out += "%2F";
        } else {
            out += c;
        }
    }
    return out;
}

std::string unescape_name(const std::string& name) {
    if (name == "%2E")
        return ".";
    if (name == "%2E%2E")
        return "..";
    std::string out;
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (name.compare(i, 3, "%25") == 0) {
            out += '%';
            i += 2;
        } else if (name.compare(i, 3, "%2F") == 0) {
            out += '/';
            i += 2;
        } else {
            out += name[i];
        }
    }
    return out;
}

std::string errno_name(int e) {
    switch (e) {
        case 0:
            return "success";
        case EINVAL:
            return "EINVAL";
        case EFBIG:
            return "EFBIG";
        case ENAMETOOLONG:
            return "ENAMETOOLONG";
        case EACCES:
            return "EACCES";
        case EPERM:
            return "EPERM";
        case EXDEV:
            return "EXDEV";
        case ENOENT:
            return "ENOENT";
        case EISDIR:
            return "EISDIR";
        case EROFS:
            return "EROFS";
        case EAGAIN:
            return "EAGAIN";
        case ENOTCONN:
            return "ENOTCONN";
        case ECONNABORTED:
            return "ECONNABORTED";
        case EEXIST:
            return "EEXIST";
        case ENOTDIR:
            return "ENOTDIR";
        case EIO:
            return "EIO";
        default:
            return "errno " + std::to_string(e) + " (" + std::strerror(e) + ")";
    }
}

std::string make_value(std::string_view tag, std::uint64_t seq, std::size_t length) {
    const std::string id = std::string(tag) + "|" + std::to_string(seq);
    std::string head = "V|" + id + "|" + std::to_string(length) + "|";
    // The padding depends on the id, so two values of one length never share it.
    std::string pad;
    const std::uint64_t h0 = fnv1a(id);
    const std::size_t hash_width = 16;
    const std::size_t fixed = head.size() + hash_width + 1;
    if (length < fixed) {
        length = fixed;
        head = "V|" + id + "|" + std::to_string(length) + "|";
    }
    for (std::size_t i = 0; pad.size() + head.size() + hash_width + 1 < length; ++i) {
        pad += static_cast<char>('a' + (h0 >> (i % 60)) % 26);
    }
    char hash[32];
    std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(fnv1a(head + pad)));
    return head + hash + "|" + pad;
}

std::optional<std::string> partial_value_id(std::string_view value) {
    std::vector<std::string_view> f;
    std::size_t at = 0;
    for (int i = 0; i < 4; ++i) {
        const std::size_t bar = value.find('|', at);
        if (bar == std::string_view::npos) {
            return std::nullopt;
        }
        f.push_back(value.substr(at, bar - at));
        at = bar + 1;
    }
    const bool digits = !f[3].empty() && f[3].size() < 6 &&
                        f[3].find_first_not_of("0123456789") == std::string_view::npos;
    if (f[0] != "V" || f[1].empty() || f[1].back() != 'c' || !digits ||
        value.size() >= std::stoul(std::string(f[3]))) {
        return std::nullopt;
    }
    return std::string(f[1]) + "|" + std::string(f[2]);
}

std::optional<std::string> verify_value(std::string_view value) {
    // V|tag|seq|len|hash|pad  (tag may not hold '|')
    if (value.substr(0, 2) != "V|") {
        return std::nullopt;
    }
    std::vector<std::string_view> parts;
    std::size_t at = 0;
    for (int i = 0; i < 5; ++i) {
        const std::size_t bar = value.find('|', at);
        if (bar == std::string_view::npos) {
            return std::nullopt;
        }
        parts.push_back(value.substr(at, bar - at));
        at = bar + 1;
    }
    const std::string_view pad = value.substr(at);
    const std::string_view tag = parts[1], seq = parts[2], len = parts[3], hash = parts[4];
    if (std::to_string(value.size()) != len) {
        return std::nullopt;
    }
    const std::string head =
        "V|" + std::string(tag) + "|" + std::string(seq) + "|" + std::string(len) + "|";
    char want[32];
    std::snprintf(want, sizeof want, "%016llx",
                  static_cast<unsigned long long>(fnv1a(head + std::string(pad))));
    if (hash != want) {
        return std::nullopt;
    }
    return std::string(tag) + "|" + std::string(seq);
}

pid_t spawn(const std::function<int()>& body) {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        int status = 99;
        try {
            status = body();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "child %d: %s\n", ::getpid(), e.what());
            status = 98;
        }
        std::fflush(nullptr);
        ::_exit(status);
    }
    return pid;
}

int wait_for(pid_t pid, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + kvptest::scaled(limit);
    int status = 0;
    for (;;) {
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            break;
        }
        if (r < 0 && errno != EINTR) {
            return -2;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return -1;
        }
        nap_ms(2);
    }
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -3;
}

Io write_value(const std::string& path, std::string_view data, int flags, std::size_t chunk,
               const std::function<void()>& before_close) {
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
    if (fd < 0) {
        return {errno, "open"};
    }
    Io result;
    std::size_t done = 0;
    while (done < data.size()) {
        const std::size_t n = chunk == 0 ? data.size() - done : std::min(chunk, data.size() - done);
        const ssize_t w = ::write(fd, data.data() + done, n);
        if (w < 0) {
            result = {errno, "write"};
            break;
        }
        done += static_cast<std::size_t>(w);
    }
    if (before_close) {
        before_close();
    }
    if (::close(fd) != 0 && result.err == 0) {
        result = {errno, "close"};
    }
    return result;
}

ReadResult read_value(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return {errno, {}};
    }
    ReadResult r;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            r.err = errno;
            break;
        }
        if (n == 0) {
            break;
        }
        r.data.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return r;
}

std::string kvpfs_binary() {
    if (const char* env = std::getenv("KVPFS_BIN")) {
        return env;
    }
#ifdef KVPFS_BIN
    return KVPFS_BIN;
#else
    return "kvpfs";
#endif
}

double env_seconds(const char* name, double fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::atof(v) : fallback;
}

long env_long(const char* name, long fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::atol(v) : fallback;
}

namespace {
std::string env_or_empty() {
    const char* v = std::getenv("KVPFS_TEST_MOUNT_OPTIONS");
    return v != nullptr ? v : "";
}
}  // namespace

bool cache_mode() {
    const std::string extra = "," + env_or_empty() + ",";
    return extra.find(",cache,") != std::string::npos || extra.find(",cache=") != std::string::npos;
}

bool contents_cached() {
    const std::string extra = "," + env_or_empty() + ",";
    return extra.find(",cache=all,") != std::string::npos;
}

bool shown_after_outside_change(const std::function<bool()>& shown,
                                std::chrono::steady_clock::duration window) {
    return cache_mode() ? kvptest::eventually(shown, window) : shown();
}

Sandbox::Sandbox() {
    char tmpl[] = "/tmp/kvpstress.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
    }
    base_ = tmpl;
    pool_ = base_ + "/pool";
    tmpfs_dir_ = pool_;
    mnt_ = base_ + "/mnt";
    log_path_ = base_ + "/kvpfs.log";
    if (::mkdir(pool_.c_str(), 0755) != 0 || ::mkdir(mnt_.c_str(), 0755) != 0) {
        throw std::runtime_error("mkdir in " + base_);
    }
    if (::mount("tmpfs", pool_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=0755") != 0) {
        throw std::runtime_error(std::string("mount tmpfs: ") + std::strerror(errno));
    }
    tmpfs_ = true;
}

Sandbox::~Sandbox() {
    if (daemon_ > 0) {
        stop();
    }
    detach_mount();
    if (tmpfs_) {
        if (::umount2(tmpfs_dir_.c_str(), 0) != 0) {
            ::umount2(tmpfs_dir_.c_str(), MNT_DETACH);
        }
    }
    std::error_code ec;
    ::rmdir(mnt_.c_str());
    std::filesystem::remove_all(base_, ec);
}

std::string Sandbox::pool(int n) const {
    return pool_ + "/.kvp_pool_" + std::to_string(n);
}

std::string Sandbox::mnt(const std::string& rel) const {
    return rel.empty() ? mnt_ : mnt_ + "/" + rel;
}

std::string Sandbox::log() const {
    try {
        return read_file(log_path_);
    } catch (const std::exception&) {
        return {};
    }
}

bool Sandbox::mounted() const {
    // The mountpoint is ours when /proc/self/mountinfo lists it; statfs would hang or fail
    // on a dead connection.
    std::string info;
    try {
        info = read_file("/proc/self/mountinfo");
    } catch (const std::exception&) {
        return false;
    }
    return info.find(" " + mnt_ + " ") != std::string::npos;
}

void Sandbox::start(const std::vector<std::string>& options,
                    const std::vector<std::string>& wrapper) {
    if (daemon_ > 0) {
        throw std::runtime_error("daemon already running");
    }
    std::vector<std::string> args = wrapper;
    args.push_back(kvpfs_binary());
    args.push_back("-f");
    args.insert(args.end(), options.begin(), options.end());
    // The stress-cache run: the same tests again with these options (e.g. "cache").
    if (const char* extra = std::getenv("KVPFS_TEST_MOUNT_OPTIONS"); extra != nullptr && *extra) {
        args.emplace_back("-o");
        args.emplace_back(extra);
    }
    args.push_back(pool_);
    args.push_back(mnt_);
    const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    std::fflush(nullptr);
    daemon_ = ::fork();
    if (daemon_ < 0) {
        throw std::runtime_error("fork");
    }
    if (daemon_ == 0) {
        ::dup2(log_fd, 1);
        ::dup2(log_fd, 2);
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        ::execvp(argv[0], argv.data());
        std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
        ::_exit(127);
    }
    ::close(log_fd);
    const auto deadline =
        std::chrono::steady_clock::now() + kvptest::scaled(std::chrono::seconds(30));
    for (;;) {
        struct statfs fs {};
        if (::statfs(mnt_.c_str(), &fs) == 0 && fs.f_type == kFuseSuperMagic) {
            return;
        }
        int status = 0;
        if (::waitpid(daemon_, &status, WNOHANG) == daemon_) {
            daemon_ = -1;
            throw std::runtime_error("kvpfs exited before mounting (status " +
                                     std::to_string(status) + "): " + log());
        }
        if (std::chrono::steady_clock::now() > deadline) {
            kill_daemon();
            throw std::runtime_error("kvpfs did not mount within 30 s: " + log());
        }
        nap_ms(1);
    }
}

void Sandbox::detach_mount() {
    for (int i = 0; i < 5 && mounted(); ++i) {
        if (::umount2(mnt_.c_str(), 0) != 0) {
            ::umount2(mnt_.c_str(), MNT_DETACH);
        }
    }
}

int Sandbox::stop() {
    if (daemon_ <= 0) {
        detach_mount();
        return -1;
    }
    // A clean unmount ends the daemon's session loop; SIGTERM if it is still there.
    if (::umount2(mnt_.c_str(), 0) != 0) {
        ::kill(daemon_, SIGTERM);
    }
    int status = wait_for(daemon_, std::chrono::seconds(10));
    daemon_ = -1;
    detach_mount();
    return status;
}

void Sandbox::kill_daemon() {
    if (daemon_ > 0) {
        ::kill(daemon_, SIGKILL);
        wait_for(daemon_, std::chrono::seconds(10));
        daemon_ = -1;
    }
    detach_mount();
}

}  // namespace kvpstress
