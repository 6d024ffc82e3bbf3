#include "raw_pool.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <unordered_map>
#include <vector>

#include "error.hpp"
#include "file_lock.hpp"
#include "pool_open.hpp"
#include "record_format.hpp"

namespace kvpctl {

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

void scan_raw_pool(const boost::filesystem::path& dir, kvp::PoolId id,
                   std::chrono::milliseconds lock_timeout, const RawPoolVisitor& visitor) {
    RawPoolHeader header;
    header.id = id;
    header.path = dir / kvp::pool_file_name(id);
    const std::string what = header.path.string();

    kvp::OpenedPool opened = kvp::open_pool_file(what, kvp::PoolAccess::read);
    if (!opened.fd) {
        visitor.begin(header);
        return;
    }
    const kvp::FileLock lock(opened.fd.get(), kvp::LockMode::shared, lock_timeout, what);
    struct stat st {};
    if (::fstat(opened.fd.get(), &st) != 0) {
        kvp::throw_errno("fstat " + what);
    }
    kvp::require_pool_file(st, what);  // again: it may have grown while we waited
    header.exists = true;
    header.size = static_cast<std::uint64_t>(st.st_size);
    visitor.begin(header);

    // One chunk of records at a time, and the first index of each distinct key.
    constexpr std::size_t kChunk = 256 * kvp::kRecordSize;
    std::vector<char> chunk(kChunk);
    std::unordered_map<std::string, std::size_t> first;
    std::uint64_t offset = 0;
    std::size_t index = 0;
    std::size_t filled = 0;
    for (;;) {
        const ssize_t n = ::pread(opened.fd.get(), chunk.data() + filled, chunk.size() - filled,
                                  static_cast<off_t>(offset + filled));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            kvp::throw_errno("read " + what);
        }
        filled += static_cast<std::size_t>(n);
        if (n != 0 && filled < chunk.size()) {
            continue;
        }
        const std::size_t whole = filled / kvp::kRecordSize;
        for (std::size_t i = 0; i < whole; ++i, ++index) {
            const std::span<const char, kvp::kRecordSize> bytes(chunk.data() + i * kvp::kRecordSize,
                                                                kvp::kRecordSize);
            kvp::Record decoded = kvp::decode_record(bytes);
            RawRecord rec;
            rec.index = index;
            rec.offset = offset + i * kvp::kRecordSize;
            rec.key = std::move(decoded.key);
            rec.value = std::move(decoded.value);
            rec.key_unterminated = kvp::field_unterminated(bytes.first<kvp::kKeyFieldSize>());
            rec.value_unterminated = kvp::field_unterminated(bytes.last<kvp::kValueFieldSize>());
            if (!rec.key.empty()) {
                const auto [it, inserted] = first.emplace(rec.key, rec.index);
                if (!inserted) {
                    rec.duplicate_of = it->second;
                }
            }
            visitor.record(rec);
        }
        offset += whole * kvp::kRecordSize;
        const std::size_t rest = filled - whole * kvp::kRecordSize;
        std::copy_n(chunk.data() + whole * kvp::kRecordSize, rest, chunk.data());
        filled = rest;
        if (n == 0) {
            break;
        }
        if (offset > kvp::kMaxPoolFileSize) {
            kvp::throw_error(EFBIG, what + " grew past " + std::to_string(kvp::kMaxPoolFileSize) +
                                        " bytes while being read");
        }
    }
    if (filled != 0) {
        RawTail tail;
        tail.index = index;
        tail.offset = offset;
        tail.bytes.assign(chunk.data(), filled);
        visitor.tail(tail);
    }
}

}  // namespace kvpctl
