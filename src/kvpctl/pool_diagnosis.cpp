#include "pool_diagnosis.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>

#include <cerrno>
#include <optional>

#include "error.hpp"
#include "key_name.hpp"
#include "pool_directory.hpp"
#include "pool_id.hpp"
#include "record_format.hpp"
#include "unique_fd.hpp"

namespace kvpctl {

namespace {

// The size of the pool file of `pool`, nullopt when it does not exist (or is no regular file).
std::optional<off_t> pool_file_size(const Context& ctx, kvp::PoolId pool) {
    struct stat st {};
    const auto path = ctx.pool_dir / kvp::pool_file_name(pool);
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return std::nullopt;
    }
    return st.st_size;
}

}  // namespace

bool holds_pool_files(const Context& ctx) {
    return !kvp::pool_files_in(ctx.pool_dir).empty();
}

void require_pool_files(const Context& ctx) {
    require_pool_directory(ctx);
    if (!holds_pool_files(ctx)) {
        kvp::throw_error(ENOENT, ctx.pool_dir.string() +
                                     " holds no pool file (.kvp_pool_0 to .kvp_pool_4): is it "
                                     "the pool directory? Give it with --pool-dir DIR or "
                                     "$KVP_POOL_DIR (default " +
                                     std::string(kDefaultPoolDir) +
                                     "); `kvpctl init DIR` makes one");
    }
}

void warn_not_a_pool_file(const Context& ctx, kvp::PoolId pool) {
    const auto size = pool_file_size(ctx, pool);
    if (!size || *size == 0) {
        return;
    }
    const std::string path = (ctx.pool_dir / kvp::pool_file_name(pool)).string();
    const auto record = static_cast<off_t>(kvp::kRecordSize);
    const std::string check = " (kvpctl check " + std::string(kvp::pool_name(pool)) + ")\n";
    if (*size < record) {
        *ctx.err << "kvpctl: warning: " << path << " is " << *size << " bytes, less than one "
                 << kvp::kRecordSize << "-byte record: it holds no key; is it a pool file?"
                 << check;
        return;
    }
    if (const off_t tail = *size % record; tail != 0) {
        *ctx.err << "kvpctl: warning: " << path << " is " << *size
                 << " bytes, not a whole number of " << kvp::kRecordSize
                 << "-byte records: its last " << tail
                 << " bytes are a partial record, which every KVP reader ignores" << check;
    }
    // Every record's key field ends in a NUL; a text file's first 512 bytes hold none.
    const kvp::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    std::array<char, kvp::kKeyFieldSize> key{};
    if (fd.get() >= 0 &&
        ::pread(fd.get(), key.data(), key.size(), 0) == static_cast<ssize_t>(key.size()) &&
        std::find(key.begin(), key.end(), '\0') == key.end()) {
        *ctx.err << "kvpctl: warning: " << path
                 << " does not look like a pool file: its first record's " << kvp::kKeyFieldSize
                 << "-byte key field holds no NUL (a text file?)" << check;
    }
}

std::string file_name_hint(const std::string& key) {
    if (key.find('%') == std::string::npos) {
        return {};
    }
    const auto decoded = kvp::name_to_key(key);
    if (!decoded || *decoded == key) {
        return {};
    }
    return " (kvpctl takes keys as they are; " + escape(key, true) +
           " is how a kvpfs mount names the key " + escape(*decoded, true) + ")";
}

}  // namespace kvpctl
