#pragma once
// Errors inside kvpfs are exceptions carrying an errno value; the FUSE adapter and
// kvpctl turn them into -errno / exit codes at their boundary. One way, kept everywhere.

#include <cerrno>
#include <string>
#include <system_error>

namespace kvp {

class Error : public std::system_error {
  public:
    Error(int errno_value, const std::string& what)
        : std::system_error(errno_value, std::generic_category(), what) {}
    [[nodiscard]] int errno_value() const noexcept { return code().value(); }
};

// Throws kvp::Error for the current errno, naming the failed call.
[[noreturn]] void throw_errno(const std::string& what);
[[noreturn]] inline void throw_error(int errno_value, const std::string& what) {
    throw Error(errno_value, what);
}

}  // namespace kvp
