#pragma once
// The names of guest/ as open writable handles see them (docs/behaviour.md §5): which
// handles write to which key, and which names are reserved by a create (open with O_CREAT,
// mknod) that has stored nothing yet.
//
// The names lock keeps a store and a change of names apart: a store through a handle holds
// it shared from reading the handle's key until the engine returns, unlink and rename hold
// it exclusively around the engine's change and the handles' update. So a store lands under
// the name its handle has at that moment, never under one it just lost. Lock order: names
// lock, then a handle's mutex, then the engine.

#include <chrono>
#include <map>
#include <mutex>
#include <shared_mutex>

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>
#include "ranked_mutex.hpp"

#include "file_handle.hpp"

namespace kvpfs {

class WriterRegistry {
  public:
    explicit WriterRegistry(std::chrono::milliseconds wait) : wait_(wait) {}

    // The names lock, waited for at most the lock timeout (`bounded`); throws
    // kvp::Error(EAGAIN).
    [[nodiscard]] std::shared_lock<kvp::RankedSharedMutex> share_names(bool bounded = true);
    [[nodiscard]] std::unique_lock<kvp::RankedSharedMutex> own_names();
    // The names lock if it is free at once (check owns_lock()).
    [[nodiscard]] std::shared_lock<kvp::RankedSharedMutex> try_share_names() {
        return std::shared_lock(names_, std::try_to_lock);
    }

    // A writable handle from open to release (names lock shared). `reserve`: the name is not
    // in the pool; the handle holds a reservation of it until its first store.
    void add(FileHandle& h, bool reserve);
    // Release: drops the handle and its reservation.
    void remove(FileHandle& h);
    // The handle stored its first value: its reservation is no longer needed.
    void stored(FileHandle& h);

    // mknod: reserves `key` with no handle, until a writable open takes it over, an unlink or
    // rename moves it, or the kernel forgets the name.
    void reserve_unopened(std::string_view key);
    void forget_unopened(std::string_view key);
    // Is `key` reserved (by a handle or mknod)?
    [[nodiscard]] bool reserved(std::string_view key) const;
    // Takes over a mknod reservation of `key` for `h` (call before add(h, true)): true if
    // there was one.
    bool adopt_unopened(std::string_view key);

    // Names lock owned: the handles writing to `key`.
    [[nodiscard]] std::vector<FileHandle*> handles_of(std::string_view key) const;
    // Names lock owned: `key` was removed; its handles store nothing from now on.
    void unlinked(std::string_view key);
    // Names lock owned: `from` became `to`; handles of `to` lose their name, handles of
    // `from` follow it.
    void renamed(std::string_view from, std::string_view to);

  private:
    struct Reservation {
        int handles = 0;
        bool unopened = false;
    };
    void release_locked(std::string_view key, bool handle);
    // The handles of `key` (mutex_ held).
    [[nodiscard]] std::vector<FileHandle*> handles_locked(const std::string& key) const;

    std::chrono::milliseconds wait_;
    // The names lock: guards every handle's name fields (WriterState key, reserved,
    // unlinked). Taken first, before any other lock of kvpfs (shared by stores, owned by
    // unlink, rename and a chmod's look at the handles); a handle's mutex, the maps' mutex
    // and the pools' locks come after it. Held across the replies of open, create and mknod
    // (the new handle or entry goes out before a rename can move its name), and of unlink
    // and rename.
    kvp::RankedSharedMutex names_{kvp::LockRank::writer_names};
    // Guards handles_ and reserved_. Taken after the names lock and a handle's mutex, never
    // with a pool lock (a handle's mutex is never taken under it); never across a reply.
    mutable kvp::RankedMutex mutex_{kvp::LockRank::writer_registry};
    std::unordered_multimap<std::string, FileHandle*> handles_;
    std::map<std::string, Reservation, std::less<>> reserved_;
};

}  // namespace kvpfs
