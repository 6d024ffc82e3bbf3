#include "file_handle.hpp"

#include <cerrno>
#include <cstring>

namespace kvpfs {

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

FileHandle::FileHandle(kvp::PoolId pool, std::string key, std::string_view value, bool raw)
    : pool_(pool),
      key_(std::move(key)),
      writable_(false),
      raw_(raw),
      content_(std::make_shared<const std::string>(value)) {}

FileHandle::FileHandle(kvp::PoolId pool, std::string key, std::string initial, bool append,
                       bool truncated, bool raw, kvp::Limits limits)
    : pool_(pool),
      key_(std::move(key)),
      writable_(true),
      raw_(raw),
      append_(append),
      trunc_pending_(truncated),
      limits_(limits),
      pending_(std::move(initial)) {}

std::string_view FileHandle::head() const {
    return writable_ ? std::string_view(pending_) : std::string_view(*content_);
}

std::string_view FileHandle::tail() const {
    return (writable_ || raw_) ? std::string_view() : std::string_view("\n", 1);
}

int FileHandle::write(std::string_view data, std::size_t offset) {
    if (poisoned_) {
        return EIO;  // an earlier write was refused: this handle commits nothing any more
    }
    if (std::memchr(data.data(), '\0', data.size()) != nullptr) {
        poisoned_ = true;
        return EINVAL;  // the format cannot store a NUL byte
    }
    if (append_) {
        offset = pending_.size();
    }
    if (offset > pending_.size()) {
        poisoned_ = true;
        return EINVAL;  // a hole would be NUL bytes
    }
    // Judge the length first, without building an oversized string.
    const std::size_t new_size = std::max(pending_.size(), offset + data.size());
    if (new_size > kvp::kMaxValueBytes + 1 + 4) {
        poisoned_ = true;
        return EFBIG;
    }
    pending_.replace(offset, std::min(data.size(), pending_.size() - offset), data);
    const auto v = kvp::check_value_length(stored_value(pending_, raw_), limits_);
    if (v != kvp::Violation::none) {
        poisoned_ = true;
        return kvp::value_errno(v);
    }
    dirty_ = true;
    return 0;
}

int FileHandle::truncate(std::size_t size) {
    if (poisoned_) {
        return EIO;
    }
    if (size > pending_.size()) {
        return EINVAL;  // growing would need NUL bytes the format cannot store
    }
    pending_.resize(size);
    dirty_ = true;
    return 0;
}

std::string_view FileHandle::value_to_commit() const {
    return stored_value(pending_, raw_);
}

}  // namespace kvpfs
