#include "fuzz_support.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>

namespace kvpfuzz {

void fail(const char* file, int line, const char* condition, const std::string& note) {
    std::fprintf(stderr, "\nFUZZ CHECK FAILED %s:%d: %s\n  %s\n", file, line, condition,
                 note.c_str());
    std::abort();
}

std::map<std::string, std::string> first_values(const std::vector<Rec>& records) {
    std::map<std::string, std::string> out;
    for (const Rec& r : records) {
        if (!r.key.empty()) {
            out.emplace(r.key, r.value);  // emplace keeps the first
        }
    }
    return out;
}

// The Unicode Standard, Table 3-7 (well-formed UTF-8 byte sequences): the allowed range of
// the second byte depends on the first; the rest are 80..BF.
bool ref_valid_utf8(std::string_view text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        const unsigned c = p[i];
        unsigned lo = 0x80;
        unsigned hi = 0xBF;
        std::size_t extra = 0;
        if (c <= 0x7F) {
            ++i;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            extra = 1;
        } else if (c == 0xE0) {
            extra = 2;
            lo = 0xA0;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            extra = 2;
        } else if (c == 0xED) {
            extra = 2;
            hi = 0x9F;
        } else if (c == 0xF0) {
            extra = 3;
            lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            extra = 3;
        } else if (c == 0xF4) {
            extra = 3;
            hi = 0x8F;
        } else {
            return false;
        }
        if (i + extra >= n) {
            return false;  // the sequence is cut short by the end of the text
        }
        if (p[i + 1] < lo || p[i + 1] > hi) {
            return false;
        }
        for (std::size_t k = 2; k <= extra; ++k) {
            if (p[i + k] < 0x80 || p[i + k] > 0xBF) {
                return false;
            }
        }
        i += extra + 1;
    }
    return true;
}

std::size_t ref_utf16_units(std::string_view text) {
    std::size_t units = 0;
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c & 0xC0) != 0x80) {
            ++units;  // a lead byte starts a code point
        }
        if (c >= 0xF0) {
            ++units;  // past the BMP: a surrogate pair
        }
    }
    return units;
}

namespace {

Judgement judge(std::string_view text, RefLimits limits, std::size_t max_bytes,
                std::size_t max_units) {
    Judgement j;
    j.nul = text.find('\0') != std::string_view::npos;
    const bool utf8 = ref_valid_utf8(text);
    j.too_long = text.size() > max_bytes ||
                 (limits == RefLimits::host && utf8 && ref_utf16_units(text) > max_units);
    j.bad_utf8 = limits == RefLimits::host && !utf8;
    j.ok = !j.nul && !j.too_long && !j.bad_utf8;
    return j;
}

}  // namespace

Judgement judge_key(std::string_view key, RefLimits limits) {
    Judgement j = judge(key, limits, 511, 254);
    j.empty = key.empty();
    j.ok = j.ok && !j.empty;
    return j;
}

Judgement judge_value(std::string_view value, RefLimits limits) {
    return judge(value, limits, 2047, 1022);
}

std::string printable(std::string_view text, std::size_t max) {
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size() && i < max; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7F && c != '\\' && c != '"') {
            out += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        }
    }
    out += text.size() > max ? "\"... (" + std::to_string(text.size()) + " bytes)" : "\"";
    return out;
}

const std::string& scratch_dir() {
    static const std::string dir = [] {
        // Under $KVPFS_FUZZ_SCRATCH when set (scripts/fuzz.sh removes it, also after a crash,
        // when atexit handlers do not run), else on /dev/shm.
        const char* parent = std::getenv("KVPFS_FUZZ_SCRATCH");
        std::string tmpl = std::string(parent != nullptr && *parent != '\0' ? parent : "/dev/shm") +
                           "/kvpfuzz.XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) {
            std::perror(("mkdtemp " + tmpl).c_str());
            std::abort();
        }
        std::string made = tmpl;
        static std::string to_remove = made;
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(to_remove, ec);
        });
        return made;
    }();
    return dir;
}

std::string read_whole(const std::string& path, bool* exists) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (exists != nullptr) {
        *exists = fd >= 0;
    }
    if (fd < 0) {
        FUZZ_CHECK(errno == ENOENT, "open " + path + ": " + std::strerror(errno));
        return {};
    }
    std::string out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        FUZZ_CHECK(n >= 0, "read " + path);
        if (n == 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

void write_whole(const std::string& path, std::string_view bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FUZZ_CHECK(fd >= 0, "create " + path);
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        FUZZ_CHECK(n > 0, "write " + path);
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
}

}  // namespace kvpfuzz
