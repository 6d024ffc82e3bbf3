// kvpctl: the pool-file tool. Everything is in cli.cpp and the cmd_*.cpp files.
#include <csignal>
#include <iostream>

#include "commands.hpp"

int main(int argc, char** argv) {
    // Past a file size limit a write fails with EFBIG and the change is undone and reported;
    // SIGXFSZ's default action would kill kvpctl half-way instead.
    std::signal(SIGXFSZ, SIG_IGN);
    return kvpctl::run(argc, argv, std::cout, std::cerr);
}
