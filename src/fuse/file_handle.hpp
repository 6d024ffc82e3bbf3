#pragma once
// What an open key file holds between open() and release().
//
// A read-only handle keeps its own copy of the value it was opened on (at most 2 KiB), so a
// read sees one whole value however the pool changes meanwhile. It does not pin the pool's
// snapshot: a pinned snapshot would make the next change copy the whole pool. A writable handle
// holds the pending content: what a read through it shows (the value plus the text-mode newline),
// edited by write() at any offset, cut by truncate, committed on flush/fsync.

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "limits.hpp"
#include "pool_id.hpp"
#include "pool_snapshot.hpp"

namespace kvpfs {

class FileHandle {
  public:
    // Read-only copy of `value` (text mode adds the newline).
    FileHandle(kvp::PoolId pool, std::string key, std::string_view value, bool raw);
    // Writable: `initial` is the pending content (already in its shown form);
    // `truncated`: opened with O_TRUNC over an existing value (see trunc_pending()).
    FileHandle(kvp::PoolId pool, std::string key, std::string initial, bool append, bool truncated,
               bool raw, kvp::Limits limits);

    [[nodiscard]] kvp::PoolId pool() const { return pool_; }
    [[nodiscard]] const std::string& key() const { return key_; }
    [[nodiscard]] bool writable() const { return writable_; }
    // A read-only handle's content, shared so a reply can keep it alive.
    [[nodiscard]] const std::shared_ptr<const std::string>& content() const { return content_; }
    [[nodiscard]] std::mutex& mutex() { return mutex_; }
    // Created by open(O_CREAT|O_TRUNC) and not yet in the pool (Filesystem's pending list).
    [[nodiscard]] bool pending_create() const { return pending_create_; }
    void set_pending_create() { pending_create_ = true; }

    // --- under mutex() ---
    // The shown content: [head, tail) pieces for a zero-copy reply.
    [[nodiscard]] std::string_view head() const;
    [[nodiscard]] std::string_view tail() const;  // "\n" or ""
    [[nodiscard]] std::size_t size() const { return head().size() + tail().size(); }

    // Edits the pending content; returns 0 or a positive errno (EFBIG, EINVAL). A refused
    // write poisons the handle: nothing it wrote is ever committed.
    int write(std::string_view data, std::size_t offset);
    // Cuts the pending content; growing is EINVAL.
    int truncate(std::size_t size);
    // Something to commit at all (fsync, release).
    [[nodiscard]] bool dirty() const { return (dirty_ || trunc_pending_) && !poisoned_; }
    // Something to commit at flush: written or truncated through this handle. An O_TRUNC
    // with nothing written yet is not committed by flush, because the shell's `> file`
    // closes a dup of the descriptor (flush) before the command writes: committing there
    // would store an empty value first, and keep it if the later write is refused.
    [[nodiscard]] bool flush_dirty() const { return dirty_ && !poisoned_; }
    [[nodiscard]] bool poisoned() const { return poisoned_; }
    // The value a commit stores (text mode drops exactly one trailing '\n').
    [[nodiscard]] std::string_view value_to_commit() const;
    void committed() { dirty_ = trunc_pending_ = false; }

  private:
    kvp::PoolId pool_;
    std::string key_;
    bool writable_;
    bool raw_;
    bool append_ = false;
    bool dirty_ = false;
    bool trunc_pending_ = false;
    bool poisoned_ = false;
    bool pending_create_ = false;
    kvp::Limits limits_ = kvp::Limits::host;
    std::shared_ptr<const std::string> content_;  // read-only handles
    std::string pending_;                         // writable handles
    std::mutex mutex_;
};

// The shown form of a stored value: text mode appends one '\n'.
[[nodiscard]] std::string shown_content(std::string_view value, bool raw);
// The stored form of shown content: text mode drops exactly one trailing '\n'.
[[nodiscard]] std::string_view stored_value(std::string_view content, bool raw);

}  // namespace kvpfs
