#pragma once
// The one chunked reader of a pool file's records: PoolFile's (re)load and kvpctl's raw scan
// both stream the file through it, a bounded chunk at a time, so memory holds the decoded
// strings only however large the file is (a 10,000-record pool is 25 MiB).

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "record_format.hpp"

namespace kvp {

// What follows the last whole record.
struct RecordTail {
    std::uint64_t offset = 0;  // where it starts: the whole records' bytes
    std::string bytes;         // a partial record, exactly as read; empty when there is none
    [[nodiscard]] std::uint64_t end() const { return offset + bytes.size(); }
};

// Called with each whole record's bytes and offset, in file order.
using RecordVisitor = std::function<void(std::span<const char, kRecordSize>, std::uint64_t)>;

// Reads the file open at `fd` from offset 0 to its end (pread: the descriptor's offset does not
// move; the caller holds the lock it needs). Throws kvp::Error naming `name`: the read's errno,
// or EFBIG when the file grows past kMaxPoolFileSize while being read.
RecordTail read_records(int fd, const std::string& name, const RecordVisitor& visit);

}  // namespace kvp
