// kvpctl set POOL KEY VALUE: create or replace a key (any pool: kvpctl stands for the host
// and hv_kvp_daemon side). A missing pool file is created with mode 0644.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "commands.hpp"
#include "error.hpp"
#include "pool_diagnosis.hpp"

namespace kvpctl {

std::string read_value(const std::string& path, bool raw) {
    int fd = STDIN_FILENO;
    if (path != "-") {
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            kvp::throw_error(errno, "--file " + path);
        }
    }
    // A value is at most 2047 bytes: read a little past that so the limit check can say
    // "too long" instead of this function reading a huge file into memory.
    std::string value;
    char buf[4096];
    int err = 0;
    while (value.size() <= 8192) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            err = errno;
            break;
        }
        if (n == 0) {
            break;
        }
        value.append(buf, static_cast<std::size_t>(n));
    }
    if (fd != STDIN_FILENO) {
        ::close(fd);
    }
    if (err != 0) {
        kvp::throw_error(err, path == "-" ? std::string("stdin") : "--file " + path);
    }
    // The text-mode rule of the mount: exactly one trailing newline is the line's end.
    if (!raw && !value.empty() && value.back() == '\n') {
        value.pop_back();
    }
    return value;
}

int cmd_set(const Context& ctx, kvp::PoolId pool, const std::string& key, const std::string& value,
            kvp::Limits limits) {
    // Say which limit a key or value crosses before touching the pool.
    if (const auto v = kvp::check_key(key, limits); v != kvp::Violation::none) {
        kvp::throw_error(kvp::key_errno(v), std::string("key: ") + kvp::describe(v));
    }
    if (const auto v = kvp::check_value(value, limits); v != kvp::Violation::none) {
        kvp::throw_error(kvp::value_errno(v), std::string("value: ") + kvp::describe(v));
    }
    // A first pool file in a directory that held none: most likely --pool-dir names the wrong
    // directory; the key is stored as asked, and the user is told where.
    const bool first_pool_file = !holds_pool_files(ctx);
    auto directory = open_pool_directory(ctx, true);
    directory.pool(pool).set(key, value, limits);
    if (first_pool_file) {
        *ctx.err << "kvpctl: warning: " << ctx.pool_dir.string()
                 << " held no pool file before: is it the pool directory? (--pool-dir DIR or "
                    "$KVP_POOL_DIR, default "
                 << kDefaultPoolDir << ")\n";
    }
    return kExitOk;
}

}  // namespace kvpctl
