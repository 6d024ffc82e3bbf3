#pragma once
// Text as the KVP driver converts it between the host (UTF-16LE) and hv_kvp_daemon (UTF-8).
// The two conversions follow the kernel's nls helpers the driver calls, including where
// they cut and what they skip, so the simulated host receives what a real one would.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hostsim {

using Utf16 = std::vector<std::uint16_t>;

// Host to daemon: reads at most `in_units` units (stopping at a 0 unit) and writes at most
// `max_bytes` bytes of UTF-8. Unpaired surrogates are dropped without a word, and a
// character that no longer fits is skipped while later, shorter ones may still fit.
[[nodiscard]] std::string driver_utf16_to_utf8(const Utf16& in, std::size_t in_units,
                                               std::size_t max_bytes);

// Daemon to host: converts bytes up to the first NUL, writing at most `max_units` units.
// The text past the cut is never looked at; invalid UTF-8 before it fails the conversion
// (nullopt: the driver then answers the host with HV_E_FAIL).
[[nodiscard]] std::optional<Utf16> driver_utf8_to_utf16(std::string_view in, std::size_t max_units);

// kvp-host's own rule for its command line: an argument must be UTF-8 and name no
// surrogate code point (the driver would drop one silently; kvp-host refuses it instead).
// Returns the UTF-16 units, or nullopt and a reason in `why`.
[[nodiscard]] std::optional<Utf16> command_line_to_utf16(std::string_view arg, std::string* why);

// UTF-16 the driver produced (always well-formed) back to UTF-8 for printing.
[[nodiscard]] std::string utf16_to_utf8(const Utf16& in);

}  // namespace hostsim
