#pragma once
// Key <-> file name (docs/behaviour.md §6). Exactly three escapes: '%' -> %25, '/' -> %2F, and a
// key that is exactly "." or ".." -> %2E / %2E%2E. Decoding accepts only those canonical
// forms, so every name maps to one key and back.

#include <optional>
#include <string>
#include <string_view>

namespace kvp {

[[nodiscard]] std::string key_to_name(std::string_view key);
// nullopt when the name is not the canonical encoding of any key (the caller answers EINVAL).
[[nodiscard]] std::optional<std::string> name_to_key(std::string_view name);

}  // namespace kvp
