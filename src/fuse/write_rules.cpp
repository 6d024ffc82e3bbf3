#include "write_rules.hpp"

#include <algorithm>
#include <cerrno>

#include "error.hpp"

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

namespace {

// Bytes a sequence starting with `lead` has in all (0: not a lead byte of valid UTF-8).
std::size_t sequence_length(unsigned char lead) {
    if (lead >= 0xC2 && lead <= 0xDF) {
        return 2;
    }
    if (lead >= 0xE0 && lead <= 0xEF) {
        return 3;
    }
    if (lead >= 0xF0 && lead <= 0xF4) {
        return 4;
    }
    return 0;
}

// May `second` follow `lead` in valid UTF-8 (no overlong forms, surrogates or > U+10FFFF)?
bool valid_second(unsigned char lead, unsigned char second) {
    const unsigned char lo = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
    return second >= lo && second <= hi;
}

}  // namespace

std::size_t unfinished_utf8_tail(std::string_view text) {
    const std::size_t n = text.size();
    for (std::size_t back = 1; back <= std::min<std::size_t>(3, n); ++back) {
        const auto c = static_cast<unsigned char>(text[n - back]);
        if ((c & 0xC0) == 0x80) {
            continue;  // a continuation byte: the lead is further back
        }
        const std::size_t need = sequence_length(c);
        if (need <= back) {
            return 0;  // ASCII, an invalid lead, or a sequence that is already complete
        }
        if (back >= 2 && !valid_second(c, static_cast<unsigned char>(text[n - back + 1]))) {
            return 0;
        }
        return back;
    }
    return 0;
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
        out.held = std::min(unfinished_utf8_tail(whole), data.size());
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
