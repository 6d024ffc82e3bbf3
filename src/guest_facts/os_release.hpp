#pragma once
// /etc/os-release (os-release(5)): shell-style variable assignments. Parsed the way a shell
// sourcing it reads them, which is what systemd's parser implements too: '#' comments,
// single quotes (literal), double quotes (where \" \\ \$ \` are escapes), backslash
// escapes outside quotes, pieces joined ("a"'b'c is abc), the last assignment winning.
// Leniencies a shell would refuse: spaces inside an unquoted value stay (trailing ones
// are dropped), and an unterminated quote runs to the end of the file.

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace kvp {

using OsReleaseVars = std::map<std::string, std::string, std::less<>>;

[[nodiscard]] OsReleaseVars parse_os_release(std::string_view text);
// The variables of the file at `path`; nullopt when it cannot be read (missing, not a
// regular file, no permission), which hv_kvp_daemon treats as "no os-release". Reads at
// most 64 KiB.
[[nodiscard]] std::optional<OsReleaseVars> read_os_release(const std::string& path);

}  // namespace kvp
