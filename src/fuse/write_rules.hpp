#pragma once
// What one write() or truncate does to a key's value (docs/behaviour.md §5), as pure functions
// on strings, defined at the top of op_write.cpp beside the one write path that uses them: it
// runs them inside PoolFile::update, under the exclusive lock, on the value the locked file
// holds. Content is the value's shown form (text mode adds one "\n"); what is stored is content
// minus exactly one trailing "\n" (text mode).

#include <cstddef>
#include <string>
#include <string_view>

#include "limits.hpp"

namespace kvpfs {

// The shown form of a stored value: text mode appends one '\n'.
[[nodiscard]] std::string shown_content(std::string_view value, bool raw);
// The stored form of shown content: text mode drops exactly one trailing '\n'.
[[nodiscard]] std::string_view stored_value(std::string_view content, bool raw);

struct WriteOutcome {
    std::string content;   // the new shown content
    std::size_t held = 0;  // trailing bytes of the data left out of `content` (held back)
    bool changed = false;  // false: nothing of the data went into `content` (all held)
};

// Applies `data` at `offset` of `base` (append: at its end). With `hold_unfinished`, a write
// reaching the end of the content and ending inside an unfinished UTF-8 sequence leaves
// those bytes out (held). Throws kvp::Error: EINVAL for a hole, EFBIG past the value limit.
[[nodiscard]] WriteOutcome apply_write(std::string_view base, std::string_view data,
                                       std::size_t offset, bool append, bool hold_unfinished);

// Refuses (kvp::Error with the limit's errno) a value the limits do not allow stored.
void check_stored_value(std::string_view value, kvp::Limits limits);

// The largest write() that can ever fit: a full value, its text-mode newline and the three
// bytes of an unfinished UTF-8 sequence.
inline constexpr std::size_t kMaxWriteBytes = kvp::kMaxValueBytes + 1 + 3;

}  // namespace kvpfs
