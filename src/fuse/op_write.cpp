// Writing: write edits the handle's pending content; flush (every close) and fsync commit
// it through the engine, which replaces the value atomically under the exclusive lock
// (docs/behaviour.md §5). A refused write poisons the handle: it never commits anything.

#include <cerrno>
#include <cstring>
#include <string>

#include "filesystem.hpp"

namespace kvpfs {

int commit_handle(Filesystem& fs, FileHandle& h, const char* op) {
    const bool at_flush = std::string_view(op) == "flush";
    if (at_flush ? !h.flush_dirty() : !h.dirty()) {
        return 0;
    }
    const std::string_view value = h.value_to_commit();
    const Options& o = fs.options();
    const kvp::Violation v = kvp::check_value(value, o.limits);
    if (v != kvp::Violation::none) {
        const int err = kvp::value_errno(v);
        kvp::log(kvp::LogLevel::error, std::string(op) + ": " + describe_key(h.pool(), h.key()) +
                                           ": value not stored: " + kvp::describe(v) + ": " +
                                           std::strerror(err));
        h.committed();  // judged once: a later close of a dup'ed fd does not retry it
        return err;
    }
    try {
        fs.pool(h.pool()).set(h.key(), value, o.limits);
    } catch (...) {
        h.committed();  // reported to this close()/fsync(): never stored behind its back later
        throw;
    }
    h.committed();
    trace_ok(op, h.pool(), h.key(), " committed");
    return 0;
}

void op_write(fuse_req_t req, fuse_ino_t /*ino*/, const char* buf, size_t size, off_t off,
              struct fuse_file_info* fi) {
    FileHandle& h = *handle_of(fi);
    int err = 0;
    {
        std::lock_guard lock(h.mutex());
        err = h.write(std::string_view(buf, size), static_cast<std::size_t>(off < 0 ? 0 : off));
    }
    if (err != 0) {
        const char* why = err == EFBIG    ? "value over the write limit"
                          : err == EINVAL ? "NUL byte or hole in written data"
                                          : "an earlier write on this file was refused";
        reply_error(req, "write", err,
                    describe_key(h.pool(), h.key()) + ": " + why + "; nothing will be stored");
        return;
    }
    fuse_reply_write(req, size);
}

static void commit_reply(fuse_req_t req, struct fuse_file_info* fi, const char* op) {
    FileHandle* h = handle_of(fi);
    if (h == nullptr || !h->writable()) {
        fuse_reply_err(req, 0);
        return;
    }
    guarded(req, op, [&] {
        set_request_subject(h->pool(), h->key());
        int err = 0;
        {
            std::lock_guard lock(h->mutex());
            err = commit_handle(fs_of(req), *h, op);
        }
        fuse_reply_err(req, err);
    });
}

void op_flush(fuse_req_t req, fuse_ino_t /*ino*/, struct fuse_file_info* fi) {
    commit_reply(req, fi, "flush");
}

void op_fsync(fuse_req_t req, fuse_ino_t /*ino*/, int /*datasync*/, struct fuse_file_info* fi) {
    commit_reply(req, fi, "fsync");
}

}  // namespace kvpfs
