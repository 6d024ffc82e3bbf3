#pragma once
// Inode numbers of the mount. 1 is the root, 2..5 the four pool directories (in
// kShownPools order); every key file the kernel has looked up gets a number from a
// 64-bit counter that never wraps, so a number is never given to another key. The kernel's
// lookup count is honoured: an entry lives until forget() brings it to zero.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pool_id.hpp"
#include "ranked_mutex.hpp"

namespace kvpfs {

using Ino = std::uint64_t;

inline constexpr Ino kRootIno = 1;
inline constexpr Ino kFirstPoolIno = 2;
inline constexpr Ino kFirstKeyIno = 6;

// Directory inode of a shown pool, and back.
[[nodiscard]] Ino pool_dir_ino(kvp::PoolId id);
[[nodiscard]] std::optional<kvp::PoolId> pool_of_dir_ino(Ino ino);

struct KeyRef {
    kvp::PoolId pool;
    std::string key;
};

class InodeTable {
  public:
    // The number of (pool, key), adding one to its lookup count (a reply the kernel counts).
    Ino acquire(kvp::PoolId pool, std::string_view key);
    // The number (pool, key) has or would show in readdir, without counting a lookup.
    [[nodiscard]] Ino peek(kvp::PoolId pool, std::string_view key) const;
    // The number of (pool, key) if the kernel holds one for it (-o cache invalidates it).
    [[nodiscard]] std::optional<Ino> find(kvp::PoolId pool, std::string_view key) const;
    // The key an inode names; nullopt when unknown or detached (removed/renamed away).
    [[nodiscard]] std::optional<KeyRef> resolve(Ino ino) const;
    // Drops `nlookup` lookups; returns the key of an attached entry that ends with it.
    std::optional<KeyRef> forget(Ino ino, std::uint64_t nlookup);
    // After a rename: the inode of `from` now names `to`; the old inode of `to` is detached.
    void renamed(kvp::PoolId pool, std::string_view from, std::string_view to);
    // After an unlink through the mount: the key's inode is detached (the key, made again,
    // gets a new one), as an unlinked file's inode on any file system.
    void removed(kvp::PoolId pool, std::string_view key);
    [[nodiscard]] std::size_t size() const;

  private:
    struct Entry {
        kvp::PoolId pool;
        std::string key;
        std::uint64_t nlookup = 0;
        bool attached = true;
    };
    static std::string index_key(kvp::PoolId pool, std::string_view key);

    // Guards the maps and next_. Taken under the names lock, a handle's mutex, a directory's
    // mutex or a pool's lock; nothing of kvpfs is taken under it; never across a reply.
    mutable kvp::RankedMutex mutex_{kvp::LockRank::inode_table};
    Ino next_ = kFirstKeyIno;
    std::unordered_map<Ino, Entry> entries_;
    std::unordered_map<std::string, Ino> by_key_;
};

}  // namespace kvpfs
