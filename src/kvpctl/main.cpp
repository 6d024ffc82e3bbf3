// kvpctl: the pool-file tool. Everything is in cli.cpp and the cmd_*.cpp files.
#include <iostream>

#include "commands.hpp"

int main(int argc, char** argv) {
    return kvpctl::run(argc, argv, std::cout, std::cerr);
}
