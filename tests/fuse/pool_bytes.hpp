#pragma once
// The tests' own pool-file reader and writer, written from the format description
// (docs/behaviour.md §2) and independent of the engine, so the tests check the engine too.
// The writer behaves like a foreign KVP writer: it takes flock (cloud-init) and a classic
// fcntl lock (hv_kvp_daemon) and changes the file in place.

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace kvptest {

inline constexpr std::size_t kKeySize = 512;
inline constexpr std::size_t kValueSize = 2048;
inline constexpr std::size_t kRecord = kKeySize + kValueSize;

struct Rec {
    std::string key;
    std::string value;
    bool operator==(const Rec&) const = default;
};

// One record; with `garbage`, the bytes after each string's NUL are not zero.
std::string encode(const Rec& r, bool garbage = false);
std::string encode_all(const std::vector<Rec>& recs, bool garbage = false);
// Whole records of `bytes` (a partial tail is ignored), strings cut at the first NUL.
std::vector<Rec> decode_all(const std::string& bytes);

std::string read_bytes(const std::string& path);
// Replaces the file's content in place under both locks (creates it 0644 if missing).
void write_locked(const std::string& path, const std::string& bytes);
void write_records(const std::string& path, const std::vector<Rec>& recs, bool garbage = false);

// Holds both exclusive locks of a pool file for as long as it lives.
class HeldLock {
  public:
    explicit HeldLock(const std::string& path);
    ~HeldLock();
    HeldLock(const HeldLock&) = delete;
    HeldLock& operator=(const HeldLock&) = delete;
    [[nodiscard]] int fd() const { return fd_; }

  private:
    int fd_ = -1;
};

}  // namespace kvptest
