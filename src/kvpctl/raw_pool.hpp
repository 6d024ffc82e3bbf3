#pragma once
// The raw pool reader behind `dump` and `check`: the whole file as it is, read under a
// shared lock (both lock families, like every other reader). Unlike kvp::PoolSnapshot it
// hides nothing: empty keys, duplicates, unterminated fields and the partial tail all stay.

#include <boost/filesystem/path.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

struct RawPool {
    kvp::PoolId id = kvp::PoolId::external;
    boost::filesystem::path path;
    bool exists = false;
    std::uint64_t size = 0;
    std::vector<RawRecord> records;
    std::optional<RawTail> tail;
};

// Reads `dir/.kvp_pool_N` whole under a shared lock. A missing file gives exists=false.
// Throws kvp::Error on any other failure (EAGAIN when the lock does not come in time).
[[nodiscard]] RawPool read_raw_pool(const boost::filesystem::path& dir, kvp::PoolId id,
                                    std::chrono::milliseconds lock_timeout);

}  // namespace kvpctl
