#include "writer_registry.hpp"

#include <cerrno>
#include <vector>

#include "error.hpp"

namespace kvpfs {

std::shared_lock<kvp::RankedSharedMutex> WriterRegistry::share_names(bool bounded) {
    if (!bounded) {
        return std::shared_lock(names_);
    }
    std::shared_lock lock(names_, wait_);
    if (!lock.owns_lock()) {
        throw kvp::Error(EAGAIN, "a rename or delete through the mount is still waiting");
    }
    return lock;
}

std::unique_lock<kvp::RankedSharedMutex> WriterRegistry::own_names() {
    std::unique_lock lock(names_, wait_);
    if (!lock.owns_lock()) {
        throw kvp::Error(EAGAIN, "writes through the mount are still waiting");
    }
    return lock;
}

void WriterRegistry::add(FileHandle& h, bool reserve) {
    std::lock_guard lock(mutex_);
    WriterState& s = h.state();
    handles_.emplace(s.key, &h);
    if (reserve) {
        ++reserved_[s.key].handles;
        s.reserved = true;
    }
}

void WriterRegistry::remove(FileHandle& h) {
    std::lock_guard lock(mutex_);
    WriterState& s = h.state();
    auto [first, last] = handles_.equal_range(s.key);
    for (auto it = first; it != last; ++it) {
        if (it->second == &h) {
            handles_.erase(it);
            break;
        }
    }
    if (s.reserved) {
        release_locked(s.key, true);
        s.reserved = false;
    }
}

void WriterRegistry::stored(FileHandle& h) {
    WriterState& s = h.state();
    if (!s.reserved) {
        return;
    }
    std::lock_guard lock(mutex_);
    release_locked(s.key, true);
    s.reserved = false;
}

void WriterRegistry::release_locked(std::string_view key, bool handle) {
    auto it = reserved_.find(key);
    if (it == reserved_.end()) {
        return;
    }
    if (handle) {
        --it->second.handles;
    } else {
        it->second.unopened = false;
    }
    if (it->second.handles <= 0 && !it->second.unopened) {
        reserved_.erase(it);
    }
}

void WriterRegistry::reserve_unopened(std::string_view key) {
    std::lock_guard lock(mutex_);
    reserved_[std::string(key)].unopened = true;
}

void WriterRegistry::forget_unopened(std::string_view key) {
    std::lock_guard lock(mutex_);
    release_locked(key, false);
}

bool WriterRegistry::adopt_unopened(std::string_view key) {
    std::lock_guard lock(mutex_);
    auto it = reserved_.find(key);
    if (it == reserved_.end() || !it->second.unopened) {
        return false;
    }
    it->second.unopened = false;
    if (it->second.handles <= 0) {
        reserved_.erase(it);
    }
    return true;
}

bool WriterRegistry::reserved(std::string_view key) const {
    std::lock_guard lock(mutex_);
    return !reserved_.empty() && reserved_.find(key) != reserved_.end();
}

std::vector<FileHandle*> WriterRegistry::handles_locked(const std::string& key) const {
    std::vector<FileHandle*> out;
    auto [first, last] = handles_.equal_range(key);
    for (auto it = first; it != last; ++it) {
        out.push_back(it->second);
    }
    return out;
}

std::vector<FileHandle*> WriterRegistry::handles_of(std::string_view key) const {
    std::lock_guard lock(mutex_);
    return handles_locked(std::string(key));
}

// Handles' mutexes are taken after mutex_ is released: elsewhere a handle's mutex comes first.
void WriterRegistry::unlinked(std::string_view key) {
    std::vector<FileHandle*> losing;
    {
        std::lock_guard lock(mutex_);
        const std::string k(key);
        losing = handles_locked(k);
        handles_.erase(k);
        reserved_.erase(k);
    }
    for (FileHandle* h : losing) {
        std::lock_guard hl(h->mutex());
        WriterState& s = h->state();
        s.unlinked = true;
        s.reserved = false;
        s.held.clear();
    }
}

void WriterRegistry::renamed(std::string_view from, std::string_view to) {
    if (from == to) {
        return;
    }
    unlinked(to);  // the replaced target's handles lose their name
    const std::string t(to);
    std::vector<FileHandle*> moving;
    {
        std::lock_guard lock(mutex_);
        const std::string f(from);
        moving = handles_locked(f);
        handles_.erase(f);
        for (FileHandle* h : moving) {
            handles_.emplace(t, h);
        }
        if (auto it = reserved_.find(f); it != reserved_.end()) {
            const Reservation r = it->second;
            reserved_.erase(it);
            reserved_[t] = r;
        }
    }
    for (FileHandle* h : moving) {
        std::lock_guard hl(h->mutex());
        h->state().key = t;
    }
}

}  // namespace kvpfs
