#include "raw_pool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <string_view>
#include <unordered_map>

#include "error.hpp"
#include "file_lock.hpp"
#include "record_format.hpp"
#include "unique_fd.hpp"

namespace kvpctl {

namespace {

std::string read_all(int fd, const std::string& what) {
    std::string data;
    char buf[64 * 1024];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            kvp::throw_errno("read " + what);
        }
        if (n == 0) {
            return data;
        }
        data.append(buf, static_cast<std::size_t>(n));
    }
}

}  // namespace

std::string RawTail::key() const {
    const std::size_t n = std::min(bytes.size(), kvp::kKeyFieldSize);
    return kvp::decode_field(std::span<const char>(bytes.data(), n));
}

std::string RawTail::value() const {
    if (bytes.size() <= kvp::kKeyFieldSize) {
        return {};
    }
    return kvp::decode_field(std::span<const char>(bytes.data() + kvp::kKeyFieldSize,
                                                   bytes.size() - kvp::kKeyFieldSize));
}

RawPool read_raw_pool(const boost::filesystem::path& dir, kvp::PoolId id,
                      std::chrono::milliseconds lock_timeout) {
    RawPool pool;
    pool.id = id;
    pool.path = dir / kvp::pool_file_name(id);
    const std::string what = pool.path.string();

    kvp::UniqueFd fd(::open(pool.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) {
        if (errno == ENOENT) {
            return pool;
        }
        kvp::throw_errno("open " + what);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        kvp::throw_errno("fstat " + what);
    }
    if (!S_ISREG(st.st_mode)) {
        kvp::throw_error(EINVAL, what + " is not a regular file");
    }
    pool.exists = true;

    std::string data;
    {
        const kvp::FileLock lock(fd.get(), kvp::LockMode::shared, lock_timeout, what);
        data = read_all(fd.get(), what);
    }
    pool.size = data.size();

    const std::size_t whole = data.size() / kvp::kRecordSize;
    pool.records.reserve(whole);
    std::unordered_map<std::string_view, std::size_t> first;
    for (std::size_t i = 0; i < whole; ++i) {
        const char* base = data.data() + i * kvp::kRecordSize;
        const std::span<const char, kvp::kRecordSize> bytes(base, kvp::kRecordSize);
        kvp::Record decoded = kvp::decode_record(bytes);
        RawRecord rec;
        rec.index = i;
        rec.offset = static_cast<std::uint64_t>(i) * kvp::kRecordSize;
        rec.key = std::move(decoded.key);
        rec.value = std::move(decoded.value);
        rec.key_unterminated = kvp::field_unterminated(bytes.first<kvp::kKeyFieldSize>());
        rec.value_unterminated = kvp::field_unterminated(bytes.last<kvp::kValueFieldSize>());
        pool.records.push_back(std::move(rec));
    }
    // A second pass, once the strings no longer move, to find duplicates.
    for (auto& rec : pool.records) {
        if (rec.key.empty()) {
            continue;
        }
        const auto [it, inserted] = first.emplace(rec.key, rec.index);
        if (!inserted) {
            rec.duplicate_of = it->second;
        }
    }
    if (data.size() % kvp::kRecordSize != 0) {
        RawTail tail;
        tail.index = whole;
        tail.offset = static_cast<std::uint64_t>(whole) * kvp::kRecordSize;
        tail.bytes = data.substr(whole * kvp::kRecordSize);
        pool.tail = std::move(tail);
    }
    return pool;
}

}  // namespace kvpctl
