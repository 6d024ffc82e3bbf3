// Writing (docs/behaviour.md §5): every write() is one PoolFile::update, a read-modify-write of the
// key under the exclusive lock, applied to the key's current value as a read shows it and
// stored before the reply, so the caller sees every refusal. flush (every close) and fsync
// answer the last refused write's errno again; release stores what an O_TRUNC or a create
// with nothing written leaves (the empty value).
//
// The file reads top down: the rules (pure functions on strings, write_rules.hpp), then the
// one write path every mode takes (store_write), then the FUSE operations.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <string>

#include "filesystem.hpp"
#include "key_name.hpp"
#include "process_files.hpp"
#include "unique_fd.hpp"
#include "utf8.hpp"
#include "write_rules.hpp"

namespace kvpfs {

// --- The rules: what one write or truncate does to a value -----------------------------------

std::string shown_content(std::string_view value, bool raw) {
    std::string s;
    s.reserve(value.size() + 1);
    s.append(value);
    if (!raw) {
        s.push_back('\n');
    }
    return s;
}

std::string_view stored_value(std::string_view content, bool raw) {
    if (!raw && !content.empty() && content.back() == '\n') {
        content.remove_suffix(1);
    }
    return content;
}

void check_stored_value(std::string_view value, kvp::Limits limits) {
    const kvp::Violation v = kvp::check_value(value, limits);
    if (v != kvp::Violation::none) {
        throw kvp::Error(kvp::value_errno(v), std::string("value not stored: ") + kvp::describe(v));
    }
}

WriteOutcome apply_write(std::string_view base, std::string_view data, std::size_t offset,
                         bool append, bool hold_unfinished) {
    if (append) {
        offset = base.size();
    }
    if (offset > base.size()) {
        throw kvp::Error(EINVAL, "a write past the end would leave a hole of NUL bytes");
    }
    // Judged before building anything: no oversized string is ever made.
    if (const std::size_t size = std::max(base.size(), offset + data.size());
        size > kMaxWriteBytes) {
        throw kvp::Error(EFBIG, "value over the write limit: it would be " + std::to_string(size) +
                                    " bytes; no value is longer than " +
                                    std::to_string(kvp::kMaxValueBytes) + " bytes");
    }
    WriteOutcome out;
    const std::size_t end = offset + data.size();
    if (hold_unfinished && end >= base.size()) {
        std::string whole(base.substr(0, offset));
        whole.append(data);
        out.held = std::min(kvp::unfinished_utf8_tail(whole), data.size());
        data.remove_suffix(out.held);
    }
    out.changed = !data.empty();
    out.content.reserve(std::max(base.size(), offset + data.size()));
    out.content.append(base.substr(0, offset));
    out.content.append(data);
    if (offset + data.size() < base.size()) {
        out.content.append(base.substr(offset + data.size()));
    }
    return out;
}

// --- The write path ----------------------------------------------------------------------------

namespace {

std::size_t value_hash(std::string_view value) {
    return std::hash<std::string_view>{}(value);
}

// A writable handle's state between writes (h's mutex held).
class HandleSite final : public WriteSite {
  public:
    explicit HandleSite(WriterState& s) : s_(s) {}
    bool truncated() override { return s_.truncate_pending; }
    bool continues_line(std::string_view current) override {
        return s_.open_line && *s_.open_line == value_hash(current);
    }
    bool stored_last(std::string_view current) override {
        return s_.last_stored && *s_.last_stored == value_hash(current);
    }

  private:
    WriterState& s_;
};

// One write() through `h` (names lock shared, h's mutex held). Throws kvp::Error to refuse.
void write_through(Filesystem& fs, FileHandle& h, std::string_view data, std::size_t offset) {
    WriterState& s = h.state();
    const WriteMode& mode = h.mode();
    if (s.unlinked) {
        return;  // as for an unlinked file: the write succeeds and nothing keeps it
    }
    check_written_data(data);
    // Bytes held back from an earlier write go first when this write continues them.
    std::string joined;
    WriteCall call{h.pool(), s.key, mode, data, offset};
    const bool joins = !s.held.empty() && (mode.append || offset == s.held_at + s.held.size());
    if (joins) {
        joined = s.held + std::string(data);
        call.data = joined;
        call.at = s.held_at;
    } else if (!s.held.empty()) {
        s.held.clear();
        s.error = EINVAL;
        kvp::log(kvp::LogLevel::error, "write: " + describe_key(h.pool(), s.key) +
                                           ": an unfinished UTF-8 sequence was not continued; "
                                           "it is not stored");
    }
    call.hold = mode.limits == kvp::Limits::host;
    HandleSite site(s);
    const WriteResult r = store_write(fs, call, site);
    const std::string_view piece = call.data;
    if (joins) {
        s.held.clear();
    }
    if (r.outcome.held > 0) {
        s.held = std::string(piece.substr(piece.size() - r.outcome.held));
        s.held_at = call.at + piece.size() - r.outcome.held;
    }
    if (r.stored) {
        fs.mode().written(h.pool(), s.key, r.created);
        s.truncate_pending = false;
        fs.writers().stored(h);
        const std::string_view written = piece.substr(0, piece.size() - r.outcome.held);
        const bool line_open = mode.append && !mode.raw && written.back() != '\n';
        s.open_line = line_open ? std::optional(value_hash(r.value)) : std::nullopt;
        s.last_stored = value_hash(r.value);
    }
}

// Stores the empty value an O_TRUNC or a create leaves when nothing was written (names lock
// shared, h's mutex held). A create stores it only if the key is still absent.
void store_empty(Filesystem& fs, FileHandle& h) {
    WriterState& s = h.state();
    const bool truncate = s.truncate_pending;
    bool created = false;
    if (fs.pool(h.pool()).update(
            s.key,
            [&](const std::string* current) -> std::optional<std::string> {
                if (!truncate && current != nullptr) {
                    return std::nullopt;  // created meanwhile by someone else: leave it
                }
                created = current == nullptr;
                return std::string();
            },
            h.mode().limits)) {
        fs.mode().key_changed(h.pool(), s.key, created);
    }
    s.truncate_pending = false;
    fs.writers().stored(h);
}

[[nodiscard]] bool empty_pending(const WriterState& s) {
    return !s.unlinked && s.error == 0 && !s.truncate_refused && s.held.empty() &&
           (s.truncate_pending || s.reserved);
}

}  // namespace

void check_written_data(std::string_view data) {
    if (std::memchr(data.data(), '\0', data.size()) != nullptr) {
        throw kvp::Error(EINVAL, "NUL byte in written data: a value cannot hold one");
    }
    if (data.size() > kMaxWriteBytes) {
        throw kvp::Error(EFBIG, "value over the write limit: a write() of " +
                                    std::to_string(data.size()) +
                                    " bytes; no value is longer than " +
                                    std::to_string(kvp::kMaxValueBytes) + " bytes");
    }
}

WriteResult store_write(Filesystem& fs, const WriteCall& call, WriteSite& site) {
    const WriteMode& mode = call.mode;
    WriteResult r;
    r.placed_at = call.at;
    r.stored = update_or_refuse(
        fs.pool(call.pool), call.key, mode.limits,
        [&](const std::string* current) -> std::optional<std::string> {
            r.created = current == nullptr;
            const bool truncated = site.truncated();
            std::string base;
            // An append to an empty value stores just the data (`touch K; echo x >> K`
            // stores "x", not "\nx"): its shown "\n" is no line of the value, unless this
            // writer's own last write left the value empty (a first write of "\n").
            const bool starts_value = mode.append && current != nullptr && current->empty() &&
                                      !site.stored_last(*current);
            if (current != nullptr && !truncated && !starts_value) {
                const bool open_line = mode.append && !mode.raw && site.continues_line(*current);
                base = open_line ? *current : shown_content(*current, mode.raw);
            }
            r.outcome = apply_write(base, call.data, call.at, mode.append, call.hold);
            r.placed_at = mode.append ? base.size() : call.at;
            if (!r.outcome.changed) {
                return std::nullopt;  // all of it held back: nothing to store yet
            }
            r.value = std::string(stored_value(r.outcome.content, mode.raw));
            check_stored_value(r.value, mode.limits);
            site.storing();
            return r.value;
        });
    return r;
}

void create_if_reserved(Filesystem& fs, FileHandle& h) {
    const WriterState& s = h.state();
    if (s.reserved && empty_pending(s)) {
        store_empty(fs, h);
    }
}

void touch_reserved(Filesystem& fs, std::string_view key) {
    for (FileHandle* h : fs.writers().handles_of(key)) {
        std::lock_guard lock(h->mutex());
        create_if_reserved(fs, *h);
    }
}

void truncate_through(Filesystem& fs, FileHandle& h, std::size_t size) {
    WriterState& s = h.state();
    if (s.unlinked) {
        return;
    }
    const WriteMode& mode = h.mode();
    // A refused ftruncate, like a refused write, keeps a create or an O_TRUNC from storing an
    // empty value at release (`truncate -s 5 guest/new` leaves no key); close still answers 0.
    bool created = false;
    try {
        if (update_or_refuse(fs.pool(h.pool()), s.key, mode.limits,
                             [&](const std::string* current) -> std::optional<std::string> {
                                 created = current == nullptr;
                                 std::string content;
                                 if (!s.truncate_pending && current != nullptr) {
                                     content = shown_content(*current, mode.raw);
                                 }
                                 if (size > content.size()) {
                                     throw kvp::Error(EINVAL,
                                                      "truncate to " + std::to_string(size) +
                                                          ": growing a value is not possible");
                                 }
                                 content.resize(size);
                                 std::string value(stored_value(content, mode.raw));
                                 check_stored_value(value, mode.limits);
                                 return value;
                             })) {
            fs.mode().key_changed(h.pool(), s.key, created);
        }
    } catch (const kvp::Error&) {
        s.truncate_refused = true;
        throw;
    }
    s.truncate_pending = false;
    s.open_line.reset();
    s.last_stored.reset();  // a truncation, not a write: an append after it starts the value
    fs.writers().stored(h);
}

std::string writer_content(Filesystem& fs, FileHandle& h) {
    const WriterState& s = h.state();
    if (s.unlinked || s.truncate_pending) {
        return {};
    }
    auto snap = fs.pool(h.pool()).snapshot();
    const kvp::SnapshotRecord* rec = snap->find(s.key);
    return rec != nullptr ? shown_content(rec->record.value, h.mode().raw) : std::string();
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
              struct fuse_file_info* fi) {
    if (handle_of(fi) == nullptr) {
        fs_of(req).mode().write_unopened(req, ino, std::string_view(buf, size), off, fi->flags);
        return;
    }
    FileHandle& h = *handle_of(fi);
    guarded(req, "write", [&] {
        Filesystem& fs = fs_of(req);
        try {
            const auto names = fs.writers().share_names();
            std::lock_guard lock(h.mutex());
            set_request_subject(h.pool(), h.state().key);
            try {
                write_through(fs, h, std::string_view(buf, size),
                              static_cast<std::size_t>(off < 0 ? 0 : off));
            } catch (const kvp::Error& e) {
                h.state().error = e.errno_value();  // flush and fsync answer it again
                h.state().held.clear();             // held bytes went with the refused write
                throw;
            }
        } catch (const kvp::Error& e) {
            if (e.errno_value() == EAGAIN) {
                std::lock_guard lock(h.mutex());
                h.state().error = EAGAIN;
            }
            throw;
        }
        fuse_reply_write(req, size);
    });
}

void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
    FileHandle* h = handle_of(fi);
    if (h == nullptr) {
        fs_of(req).mode().flush_unopened(req, ino);
        return;
    }
    if (!h->writable()) {
        fuse_reply_err(req, 0);
        return;
    }
    guarded(req, "flush", [&] {
        Filesystem& fs = fs_of(req);
        int err = 0;
        std::string name;  // "POOL/NAME" while an empty value waits for this process's close
        {
            // Only to drop a refused create's name early; never waited for here.
            const auto names = fs.writers().try_share_names();
            std::lock_guard lock(h->mutex());
            WriterState& s = h->state();
            err = s.error;  // the refusal was logged when the write got it
            if (err == 0 && !s.held.empty()) {
                // Every close() of any descriptor of this handle flushes, also a child's that
                // only inherited it (a fork, an exec with FD_CLOEXEC): this close answers
                // EINVAL, but the bytes stay held so a later write can still finish them. Only
                // the release after the last close drops them (not stored).
                kvp::log(kvp::LogLevel::error,
                         "flush: " + describe_key(h->pool(), s.key) +
                             ": closed inside an unfinished UTF-8 sequence; those bytes are not "
                             "stored unless a later write finishes them: " +
                             std::strerror(EINVAL));
                err = EINVAL;
            }
            if (s.error != 0 && s.reserved && names.owns_lock()) {
                // A create whose writes were refused: its name goes now, not at release, which
                // comes after close() returns.
                fs.writers().stored(*h);
            }
            if (err == 0 && empty_pending(s)) {
                name = std::string(kvp::pool_name(h->pool())) + "/" + kvp::key_to_name(s.key);
            }
        }
        // An O_TRUNC or a create with nothing written: the empty value is stored at the
        // process's last close, before close() returns (the release comes after it returns,
        // and an empty value stored then could land after the process's next command wrote).
        // Not at a close that leaves the process another descriptor (a shell closes the one it
        // opened after dup2()ing it, before the write). A caller kvpfs cannot see (pid 0) is
        // left to the release.
        if (!name.empty()) {
            const pid_t process = thread_group_of(fuse_req_ctx(req)->pid);
            if (process > 0 && !process_holds(process, ino, name)) {
                const auto names = fs.writers().share_names();
                std::lock_guard lock(h->mutex());
                WriterState& s = h->state();
                set_request_subject(h->pool(), s.key);
                if (empty_pending(s)) {
                    try {
                        store_empty(fs, *h);
                    } catch (const kvp::Error& e) {
                        s.error = e.errno_value();  // answered again; the release stores nothing
                        throw;
                    }
                }
            }
        }
        fuse_reply_err(req, err);
    });
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info* fi) {
    FileHandle* h = handle_of(fi);
    if (h == nullptr) {
        fs_of(req).mode().fsync_unopened(req, ino, datasync);
        return;
    }
    if (!h->writable()) {
        fuse_reply_err(req, 0);
        return;
    }
    guarded(req, "fsync", [&] {
        Filesystem& fs = fs_of(req);
        {
            const auto names = fs.writers().share_names();
            std::lock_guard lock(h->mutex());
            WriterState& s = h->state();
            set_request_subject(h->pool(), s.key);
            if (!s.held.empty()) {
                throw kvp::Error(EINVAL, "the value ends inside an unfinished UTF-8 sequence");
            }
            if (s.error != 0) {
                fuse_reply_err(req, s.error);  // logged when the write was refused
                return;
            }
            if (empty_pending(s)) {
                store_empty(fs, *h);
            }
        }
        // The pool file to its storage, as fsync promises for the file written.
        sync_pool_file(fs, h->pool(), datasync != 0);
        fuse_reply_err(req, 0);
    });
}

void finish_writer(Filesystem& fs, FileHandle& h) {
    // No caller waits for a release: wait for the names lock as long as it takes.
    const auto names = fs.writers().share_names(false);
    std::lock_guard lock(h.mutex());
    WriterState& s = h.state();
    if (empty_pending(s)) {
        try {
            store_empty(fs, h);
            trace_ok("release", h.pool(), s.key, " stored empty");
        } catch (const std::exception& e) {
            kvp::log(kvp::LogLevel::error, "release: " + describe_key(h.pool(), s.key) +
                                               ": empty value not stored: " + e.what());
        }
    }
    fs.writers().remove(h);
}

void sync_pool_file(Filesystem& fs, kvp::PoolId pool, bool datasync) {
    const std::string path = fs.pool(pool).path().string();
    const kvp::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd && (datasync ? ::fdatasync(fd.get()) : ::fsync(fd.get())) != 0) {
        kvp::throw_errno("fsync " + path);
    }
}

}  // namespace kvpfs
