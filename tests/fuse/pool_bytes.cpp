#include "pool_bytes.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace kvptest {
namespace {

[[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
}

void lock_both(int fd, short type) {
    if (::flock(fd, type == F_WRLCK ? LOCK_EX : LOCK_SH) != 0) {
        fail("flock");
    }
    struct flock fl {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    if (::fcntl(fd, F_SETLKW, &fl) != 0) {
        fail("fcntl F_SETLKW");
    }
}

void unlock_both(int fd) {
    struct flock fl {};
    fl.l_type = F_UNLCK;
    fl.l_whence = SEEK_SET;
    (void)::fcntl(fd, F_SETLK, &fl);
    (void)::flock(fd, LOCK_UN);
}

void put_field(std::string& out, const std::string& s, std::size_t size, bool garbage) {
    if (s.size() >= size) {
        throw std::length_error("field too long for the test writer");
    }
    out += s;
    out.push_back('\0');
    for (std::size_t i = s.size() + 1; i < size; ++i) {
        out.push_back(garbage ? static_cast<char>('A' + (i % 26)) : '\0');
    }
}

std::string field(const char* p, std::size_t size) {
    const void* nul = std::memchr(p, '\0', size);
    return std::string(p, nul != nullptr ? static_cast<const char*>(nul) - p : size);
}

}  // namespace

std::string encode(const Rec& r, bool garbage) {
    std::string out;
    out.reserve(kRecord);
    put_field(out, r.key, kKeySize, garbage);
    put_field(out, r.value, kValueSize, garbage);
    return out;
}

std::string encode_all(const std::vector<Rec>& recs, bool garbage) {
    std::string out;
    out.reserve(recs.size() * kRecord);
    for (const Rec& r : recs) {
        out += encode(r, garbage);
    }
    return out;
}

std::vector<Rec> decode_all(const std::string& bytes) {
    std::vector<Rec> out;
    for (std::size_t off = 0; off + kRecord <= bytes.size(); off += kRecord) {
        out.push_back(Rec{field(bytes.data() + off, kKeySize),
                          field(bytes.data() + off + kKeySize, kValueSize)});
    }
    return out;
}

std::string read_bytes(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return "<missing>";
        }
        fail("open " + path);
    }
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            ::close(fd);
            fail("read " + path);
        }
        if (n == 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

void write_locked(const std::string& path, const std::string& bytes) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        fail("open " + path);
    }
    lock_both(fd, F_WRLCK);
    bool ok = ::ftruncate(fd, 0) == 0;
    std::size_t done = 0;
    while (ok && done < bytes.size()) {
        ssize_t n =
            ::pwrite(fd, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
        ok = n > 0;
        done += ok ? static_cast<std::size_t>(n) : 0;
    }
    unlock_both(fd);
    ::close(fd);
    if (!ok) {
        fail("write " + path);
    }
}

void write_records(const std::string& path, const std::vector<Rec>& recs, bool garbage) {
    write_locked(path, encode_all(recs, garbage));
}

HeldLock::HeldLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd_ < 0) {
        fail("open " + path);
    }
    lock_both(fd_, F_WRLCK);
}

HeldLock::~HeldLock() {
    unlock_both(fd_);
    ::close(fd_);
}

}  // namespace kvptest
