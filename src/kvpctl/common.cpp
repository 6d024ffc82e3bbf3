#include "common.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

#include "error.hpp"

namespace kvpctl {

std::vector<kvp::PoolId> selected_pools(const std::optional<kvp::PoolId>& pool) {
    if (pool) {
        return {*pool};
    }
    return {kvp::kAllPools.begin(), kvp::kAllPools.end()};
}

kvp::PoolDirectory open_pool_directory(const Context& ctx, bool create) {
    kvp::DirectoryOptions options;
    options.lock_timeout = ctx.lock_timeout;
    options.create_on_write.fill(create);
    return kvp::PoolDirectory(ctx.pool_dir, options);
}

void require_pool_directory(const Context& ctx) {
    struct stat st {};
    if (::stat(ctx.pool_dir.c_str(), &st) != 0) {
        kvp::throw_errno("pool directory " + ctx.pool_dir.string());
    }
    if (!S_ISDIR(st.st_mode)) {
        kvp::throw_error(ENOTDIR, "pool directory " + ctx.pool_dir.string());
    }
}

namespace {

// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is not one.
std::size_t utf8_sequence(std::string_view text, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (lead < 0x80) {
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        len = 2;
        cp = lead & 0x1Fu;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        len = 3;
        cp = lead & 0x0Fu;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        len = 4;
        cp = lead & 0x07u;
    } else {
        return 0;
    }
    if (i + len > text.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < len; ++k) {
        if ((byte(i + k) & 0xC0u) != 0x80u) {
            return 0;
        }
        cp = (cp << 6) | (byte(i + k) & 0x3Fu);
    }
    const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    if (overlong || surrogate || cp > 0x10FFFF) {
        return 0;
    }
    return len;
}

void append_hex(std::string& out, unsigned char c) {
    char buf[5];
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
}

}  // namespace

std::string escape(std::string_view text, bool quoted) {
    std::string out;
    out.reserve(text.size() + 2);
    if (quoted) {
        out += '"';
    }
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        const std::size_t len = utf8_sequence(text, i);
        if (len == 0) {
            append_hex(out, c);
            ++i;
            continue;
        }
        if (len > 1) {
            out.append(text.substr(i, len));
            i += len;
            continue;
        }
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            case '"':
                out += quoted ? "\\\"" : "\"";
                break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    append_hex(out, c);
                } else {
                    out += static_cast<char>(c);
                }
        }
        ++i;
    }
    if (quoted) {
        out += '"';
    }
    return out;
}

std::string plural(std::size_t n, std::string_view singular, std::string_view plural_form) {
    return std::to_string(n) + " " + std::string(n == 1 ? singular : plural_form);
}

}  // namespace kvpctl
