#pragma once
// Whole-buffer positional I/O on a pool file, retried on EINTR and short counts. Errors throw
// kvp::Error naming `what` (the file).

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace kvp {

void pwrite_all(int fd, const char* data, std::size_t size, off_t offset, const std::string& what);
// Reads exactly `size` bytes; a file that ends first is EIO.
void pread_all(int fd, char* data, std::size_t size, off_t offset, const std::string& what);
void ftruncate_or_throw(int fd, std::uint64_t size, const std::string& what);

// For tests: the next `successes` writes and truncates (of this process, any thread) succeed,
// then one fails with `errno_value` (0: none). Lets a test fail a change at each of its steps,
// which a full disk or a file size limit can do only to the steps that grow the file.
void inject_write_failure(int successes, int errno_value);

}  // namespace kvp
