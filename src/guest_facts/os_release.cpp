#include "os_release.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "unique_fd.hpp"

namespace kvp {
namespace {

bool is_name_start(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_name_char(char c) {
    return is_name_start(c) || (c >= '0' && c <= '9');
}
bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

class Parser {
  public:
    explicit Parser(std::string_view text) : text_(text) {}

    OsReleaseVars run() {
        OsReleaseVars vars;
        while (pos_ < text_.size()) {
            skip_blanks();
            if (at_end()) {
                break;
            }
            const std::size_t start = pos_;
            while (!at_end() && is_name_char(peek())) {
                ++pos_;
            }
            std::string name(text_.substr(start, pos_ - start));
            skip_blanks();
            if (name.empty() || !is_name_start(name[0]) || at_end() || peek() != '=') {
                skip_line();  // a comment, a blank line, or not an assignment
                continue;
            }
            ++pos_;  // '='
            skip_blanks();
            vars[std::move(name)] = value();
        }
        return vars;
    }

  private:
    [[nodiscard]] bool at_end() const { return pos_ >= text_.size(); }
    [[nodiscard]] char peek() const { return text_[pos_]; }
    void skip_blanks() {
        while (!at_end() && is_blank(peek())) {
            ++pos_;
        }
    }
    void skip_line() {
        while (!at_end() && peek() != '\n') {
            ++pos_;
        }
        if (!at_end()) {
            ++pos_;
        }
    }

    // One value: quoted and unquoted pieces up to the end of the line (or a comment).
    std::string value() {
        std::string out;
        std::size_t kept = 0;  // length of `out` without unquoted trailing blanks
        // A '#' starts a comment only where a shell word could start: after a blank.
        bool after_blank = pos_ > 0 && is_blank(text_[pos_ - 1]);
        while (!at_end()) {
            const char c = peek();
            if (c == '\n') {
                ++pos_;
                break;
            }
            if (c == '\'') {
                ++pos_;
                while (!at_end() && peek() != '\'') {
                    out.push_back(text_[pos_++]);
                }
                ++pos_;
                kept = out.size();
            } else if (c == '"') {
                ++pos_;
                double_quoted(out);
                kept = out.size();
            } else if (c == '\\') {
                ++pos_;
                if (!at_end()) {
                    if (peek() != '\n') {  // backslash-newline joins lines
                        out.push_back(peek());
                    }
                    ++pos_;
                }
                kept = out.size();
            } else if (c == '#' && after_blank) {
                skip_line();  // a comment after the value
                break;
            } else {
                out.push_back(c);
                ++pos_;
                if (!is_blank(c)) {
                    kept = out.size();
                }
                after_blank = is_blank(c);
                continue;
            }
            after_blank = false;
        }
        out.resize(kept);
        return out;
    }

    void double_quoted(std::string& out) {
        while (!at_end() && peek() != '"') {
            const char c = text_[pos_++];
            if (c == '\\' && !at_end()) {
                const char next = peek();
                if (next == '"' || next == '\\' || next == '$' || next == '`') {
                    out.push_back(next);
                    ++pos_;
                    continue;
                }
                if (next == '\n') {
                    ++pos_;
                    continue;
                }
            }
            out.push_back(c);
        }
        ++pos_;  // the closing quote (or past the end)
    }

    std::string_view text_;
    std::size_t pos_ = 0;
};

}  // namespace

OsReleaseVars parse_os_release(std::string_view text) {
    return Parser(text).run();
}

std::optional<OsReleaseVars> read_os_release(const std::string& path) {
    // O_NONBLOCK and the regular-file test: a FIFO or a device in its place must not
    // hang the request that reads OSName.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return std::nullopt;
    }
    // os-release files are a few hundred bytes; anything past 64 KiB is not one.
    constexpr std::size_t kMaxSize = std::size_t{64} * 1024;
    std::string text;
    char buf[4096];
    while (text.size() < kMaxSize) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return std::nullopt;  // e.g. EISDIR
        }
        if (n == 0) {
            break;
        }
        text.append(buf, static_cast<std::size_t>(n));
    }
    return parse_os_release(text);
}

}  // namespace kvp
