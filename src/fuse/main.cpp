#include <cstdio>

#include "kvpfs_version.hpp"

int main() {
    std::puts("usage: not implemented yet (" KVPFS_VERSION ")");
    return 2;
}
