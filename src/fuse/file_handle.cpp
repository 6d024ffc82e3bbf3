#include "file_handle.hpp"

namespace kvpfs {

FileHandle::FileHandle(kvp::PoolId pool, std::string_view value, bool raw)
    : pool_(pool),
      writable_(false),
      raw_(raw),
      content_(std::make_shared<const std::string>(value)) {}

FileHandle::FileHandle(kvp::PoolId pool, std::string key, WriteMode mode)
    : pool_(pool), writable_(true), mode_(mode) {
    state_.key = std::move(key);
}

std::string_view FileHandle::tail() const {
    return raw_ ? std::string_view() : std::string_view("\n", 1);
}

}  // namespace kvpfs
