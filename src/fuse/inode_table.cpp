#include "inode_table.hpp"

#include <functional>

namespace kvpfs {

Ino pool_dir_ino(kvp::PoolId id) {
    return kFirstPoolIno + static_cast<Ino>(kvp::pool_number(id));
}

std::optional<kvp::PoolId> pool_of_dir_ino(Ino ino) {
    if (ino < kFirstPoolIno || ino >= kFirstPoolIno + kvp::kShownPools.size()) {
        return std::nullopt;
    }
    return kvp::kShownPools[ino - kFirstPoolIno];
}

std::string InodeTable::index_key(kvp::PoolId pool, std::string_view key) {
    std::string k;
    k.reserve(key.size() + 1);
    k.push_back(static_cast<char>('0' + kvp::pool_number(pool)));
    k.append(key);
    return k;
}

Ino InodeTable::acquire(kvp::PoolId pool, std::string_view key) {
    std::string k = index_key(pool, key);
    std::lock_guard lock(mutex_);
    auto it = by_key_.find(k);
    if (it != by_key_.end()) {
        ++entries_.at(it->second).nlookup;
        return it->second;
    }
    const Ino ino = next_++;
    entries_.emplace(ino, Entry{pool, std::string(key), 1, true});
    by_key_.emplace(std::move(k), ino);
    return ino;
}

Ino InodeTable::peek(kvp::PoolId pool, std::string_view key) const {
    const std::string k = index_key(pool, key);
    {
        std::lock_guard lock(mutex_);
        auto it = by_key_.find(k);
        if (it != by_key_.end()) {
            return it->second;
        }
    }
    // Not looked up yet: a stable number from the upper half, which the counter never
    // reaches, so it cannot name another key's inode (it is only a readdir d_ino hint).
    return (std::hash<std::string>{}(k) | (Ino{1} << 63));
}

std::optional<Ino> InodeTable::find(kvp::PoolId pool, std::string_view key) const {
    const std::string k = index_key(pool, key);
    std::lock_guard lock(mutex_);
    auto it = by_key_.find(k);
    if (it == by_key_.end()) {
        return std::nullopt;
    }
    return it->second;
}

std::optional<KeyRef> InodeTable::resolve(Ino ino) const {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(ino);
    if (it == entries_.end() || !it->second.attached) {
        return std::nullopt;
    }
    return KeyRef{it->second.pool, it->second.key};
}

std::optional<KeyRef> InodeTable::forget(Ino ino, std::uint64_t nlookup) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(ino);
    if (it == entries_.end()) {
        return std::nullopt;
    }
    Entry& e = it->second;
    e.nlookup = nlookup >= e.nlookup ? 0 : e.nlookup - nlookup;
    if (e.nlookup != 0) {
        return std::nullopt;
    }
    std::optional<KeyRef> gone;
    if (e.attached) {
        by_key_.erase(index_key(e.pool, e.key));
        gone = KeyRef{e.pool, std::move(e.key)};
    }
    entries_.erase(it);
    return gone;
}

void InodeTable::renamed(kvp::PoolId pool, std::string_view from, std::string_view to) {
    if (from == to) {
        return;
    }
    const std::string kf = index_key(pool, from);
    const std::string kt = index_key(pool, to);
    std::lock_guard lock(mutex_);
    if (auto old = by_key_.find(kt); old != by_key_.end()) {
        entries_.at(old->second).attached = false;
        by_key_.erase(old);
    }
    if (auto moved = by_key_.find(kf); moved != by_key_.end()) {
        const Ino ino = moved->second;
        by_key_.erase(moved);
        Entry& e = entries_.at(ino);
        e.key = std::string(to);
        by_key_.emplace(kt, ino);
    }
}

void InodeTable::removed(kvp::PoolId pool, std::string_view key) {
    std::lock_guard lock(mutex_);
    if (auto it = by_key_.find(index_key(pool, key)); it != by_key_.end()) {
        entries_.at(it->second).attached = false;
        by_key_.erase(it);
    }
}

std::size_t InodeTable::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

}  // namespace kvpfs
