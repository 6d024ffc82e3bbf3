#pragma once
// What an open key file holds between open() and release().
//
// A read-only handle keeps its own copy of the value it was opened on (at most 2 KiB), so a
// read sees one whole value however the pool changes meanwhile. It does not pin the pool's
// snapshot: a pinned snapshot would make the next change copy the whole pool.
//
// A writable handle holds no content: every write() is applied to the key's current value
// and stored before it returns (op_write.cpp). It keeps only what the rules of docs/behaviour.md §5
// need between writes (WriterState).

#include <cstddef>
#include <memory>
#include <mutex>

#include <optional>
#include <string>
#include <string_view>
#include "ranked_mutex.hpp"

#include "limits.hpp"
#include "pool_id.hpp"

namespace kvpfs {

struct WriteMode {
    bool append = false;  // O_APPEND: every write goes to the end of the current value
    bool raw = false;     // -o raw: no text-mode newline
    kvp::Limits limits = kvp::Limits::host;
};

// A writable handle's state, under FileHandle::mutex(). The name fields (key, reserved,
// unlinked) change only under WriterRegistry's names lock held exclusively.
struct WriterState {
    std::string key;
    // Opened with O_TRUNC and nothing stored yet: the first stored write applies to an empty
    // value; at release, with no write refused, the value is emptied.
    bool truncate_pending = false;
    // The name is reserved for this handle and not in the pool yet (open with O_CREAT, mknod):
    // the first stored write creates the key; at release, with no write refused, it is
    // created empty.
    bool reserved = false;
    // The permission bits the create asked for (after umask); 0 when not created by this open.
    // While this handle is open, a chmod to them changes nothing its creator can tell
    // (install and rsync chmod their new file to its create mode).
    unsigned create_mode = 0;
    // Removed or replaced through the mount: writes succeed and store nothing.
    bool unlinked = false;
    // The errno of the last refused write: flush and fsync answer it again.
    int error = 0;
    // An ftruncate was refused: like a refused write, nothing empty is stored at release.
    bool truncate_refused = false;
    // Trailing bytes of an unfinished UTF-8 sequence (-o limits=host), held until a later
    // write finishes them; they belong at content offset `held_at`.
    std::string held;
    std::size_t held_at = 0;
    // Text mode, O_APPEND: the value this handle's last append stored when its data did not
    // end in "\n" (its hash). While the key still holds that value, the next append goes on
    // at the value's end, not after the newline a read shows, so a line written in pieces
    // reads as one.
    std::optional<std::size_t> open_line;
    // The value this handle's last write stored (its hash), whatever it ended with.
    std::optional<std::size_t> last_stored;
};

class FileHandle {
  public:
    // Read-only copy of `value` (text mode adds the newline).
    FileHandle(kvp::PoolId pool, std::string_view value, bool raw);
    // Writable.
    FileHandle(kvp::PoolId pool, std::string key, WriteMode mode);

    [[nodiscard]] kvp::PoolId pool() const { return pool_; }
    [[nodiscard]] bool writable() const { return writable_; }
    [[nodiscard]] kvp::RankedMutex& mutex() { return mutex_; }

    // --- read-only handles ---
    // The content, shared so a reply can keep it alive.
    [[nodiscard]] const std::shared_ptr<const std::string>& content() const { return content_; }
    [[nodiscard]] std::string_view head() const { return *content_; }
    [[nodiscard]] std::string_view tail() const;  // "\n" or ""

    // --- writable handles ---
    [[nodiscard]] const WriteMode& mode() const { return mode_; }
    [[nodiscard]] WriterState& state() { return state_; }  // under mutex()

  private:
    kvp::PoolId pool_;
    bool writable_;
    bool raw_ = false;
    std::shared_ptr<const std::string> content_;  // read-only handles
    WriteMode mode_;                              // writable handles
    WriterState state_;                           // writable handles
    // Guards state_ (a writable handle's write, read, getattr, flush, fsync, setattr and
    // release). Taken after the names lock (WriterRegistry), before the registry's maps and
    // any pool lock; one handle's at a time. Held across one reply only: fsync answering an
    // earlier refusal's errno.
    kvp::RankedMutex mutex_{kvp::LockRank::file_handle};
};

}  // namespace kvpfs
