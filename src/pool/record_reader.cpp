#include "record_reader.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "error.hpp"
#include "pool_open.hpp"

namespace kvp {

RecordTail read_records(int fd, const std::string& name, const RecordVisitor& visit) {
    constexpr std::size_t kChunkRecords = 64;
    std::vector<char> chunk(kChunkRecords * kRecordSize);
    std::uint64_t offset = 0;  // of chunk[0]
    std::size_t filled = 0;
    for (;;) {
        const ssize_t n = ::pread(fd, chunk.data() + filled, chunk.size() - filled,
                                  static_cast<off_t>(offset + filled));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("read " + name);
        }
        filled += static_cast<std::size_t>(n);
        if (n != 0 && filled < chunk.size()) {
            continue;
        }
        const std::size_t whole = filled / kRecordSize;
        for (std::size_t i = 0; i < whole; ++i) {
            visit(std::span<const char, kRecordSize>(chunk.data() + i * kRecordSize, kRecordSize),
                  offset + i * kRecordSize);
        }
        offset += whole * kRecordSize;
        const std::size_t rest = filled - whole * kRecordSize;
        std::copy_n(chunk.data() + whole * kRecordSize, rest, chunk.data());
        filled = rest;
        if (n == 0) {
            return RecordTail{offset, std::string(chunk.data(), filled)};
        }
        if (offset > kMaxPoolFileSize) {
            throw_error(EFBIG, name + " grew past " + std::to_string(kMaxPoolFileSize) +
                                   " bytes while being read: not read");
        }
    }
}

}  // namespace kvp
