#include "error.hpp"

namespace kvp {

void throw_errno(const std::string& what) {
    const int saved = errno;
    throw Error(saved, what);
}

}  // namespace kvp
