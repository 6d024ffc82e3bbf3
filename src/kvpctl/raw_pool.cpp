#include "raw_pool.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <unordered_map>

#include "error.hpp"
#include "file_lock.hpp"
#include "pool_open.hpp"
#include "record_format.hpp"
#include "record_reader.hpp"

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

    // The first index of each distinct key.
    std::unordered_map<std::string, std::size_t> first;
    std::size_t index = 0;
    kvp::RecordTail tail = kvp::read_records(
        opened.fd.get(), what,
        [&](std::span<const char, kvp::kRecordSize> bytes, std::uint64_t offset) {
            kvp::Record decoded = kvp::decode_record(bytes);
            RawRecord rec;
            rec.index = index++;
            rec.offset = offset;
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
        });
    if (!tail.bytes.empty()) {
        RawTail raw;
        raw.index = index;
        raw.offset = tail.offset;
        raw.bytes = std::move(tail.bytes);
        visitor.tail(raw);
    }
}

}  // namespace kvpctl
