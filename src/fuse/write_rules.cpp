#include "write_rules.hpp"

#include <algorithm>
#include <cerrno>

#include "error.hpp"
#include "utf8.hpp"

namespace kvpfs {

std::string shown_content(std::string_view value, bool raw) {
    std::string s;
    s.reserve(value.size() + 1);
    s.append(value);
    if (!raw) {
        s.push_back('\n');
    }
    return s;
}

std::string_view stored_value(std::string_view content, bool raw) {
    if (!raw && !content.empty() && content.back() == '\n') {
        content.remove_suffix(1);
    }
    return content;
}

void check_stored_value(std::string_view value, kvp::Limits limits) {
    const kvp::Violation v = kvp::check_value(value, limits);
    if (v != kvp::Violation::none) {
        throw kvp::Error(kvp::value_errno(v), std::string("value not stored: ") + kvp::describe(v));
    }
}

WriteOutcome apply_write(std::string_view base, std::string_view data, std::size_t offset,
                         bool append, bool hold_unfinished) {
    if (append) {
        offset = base.size();
    }
    if (offset > base.size()) {
        throw kvp::Error(EINVAL, "a write past the end would leave a hole of NUL bytes");
    }
    // Judged before building anything: no oversized string is ever made.
    if (std::max(base.size(), offset + data.size()) > kMaxWriteBytes) {
        throw kvp::Error(EFBIG, "value over the write limit");
    }
    WriteOutcome out;
    const std::size_t end = offset + data.size();
    if (hold_unfinished && end >= base.size()) {
        std::string whole(base.substr(0, offset));
        whole.append(data);
        out.held = std::min(kvp::unfinished_utf8_tail(whole), data.size());
        data.remove_suffix(out.held);
    }
    out.changed = !data.empty();
    out.content.reserve(std::max(base.size(), offset + data.size()));
    out.content.append(base.substr(0, offset));
    out.content.append(data);
    if (offset + data.size() < base.size()) {
        out.content.append(base.substr(offset + data.size()));
    }
    return out;
}

}  // namespace kvpfs
