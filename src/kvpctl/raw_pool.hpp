#pragma once
// The raw pool reader behind `dump`, `check` and `compact`: the file as it is, streamed record
// by record under a shared lock (both lock families, like every other reader), so memory does
// not grow with the file. Unlike kvp::PoolSnapshot it hides nothing: empty keys, duplicates,
// unterminated fields and the partial tail all stay. The file is opened the one way every
// pool file is (kvp::open_pool_file): no FIFO hangs it, no symlink is followed.

#include <boost/filesystem/path.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "pool_id.hpp"

namespace kvpctl {

struct RawRecord {
    std::size_t index = 0;
    std::uint64_t offset = 0;
    std::string key;
    std::string value;
    bool key_unterminated = false;    // the key field holds no NUL
    bool value_unterminated = false;  // the value field holds no NUL
    // The first record with the same (non-empty) key, when this one is a later duplicate.
    std::optional<std::size_t> duplicate_of;
};

struct RawTail {
    std::size_t index = 0;  // the index the record would have had
    std::uint64_t offset = 0;
    std::string bytes;  // exactly what is there
    // What the partial bytes hold so far (each field up to its first NUL).
    [[nodiscard]] std::string key() const;
    [[nodiscard]] std::string value() const;
};

struct RawPoolHeader {
    kvp::PoolId id = kvp::PoolId::external;
    boost::filesystem::path path;
    bool exists = false;
    std::uint64_t size = 0;  // by fstat under the lock
};

struct RawPoolVisitor {
    std::function<void(const RawPoolHeader&)> begin;  // once, also for a missing file
    std::function<void(const RawRecord&)> record;     // each whole record, in file order
    std::function<void(const RawTail&)> tail;         // a partial record at the end, if any
};

// Streams `dir/.kvp_pool_N` under a shared lock. A missing file gives exists=false and no
// records. Throws kvp::Error on any other failure (EAGAIN when the lock does not come in time,
// ELOOP for a symlink, EISDIR/EINVAL for a directory or other non-file, EFBIG past the size
// no pool reaches).
void scan_raw_pool(const boost::filesystem::path& dir, kvp::PoolId id,
                   std::chrono::milliseconds lock_timeout, const RawPoolVisitor& visitor);

}  // namespace kvpctl
