// kvpctl: the pool-file tool. Everything is in cli.cpp and the cmd_*.cpp files.
#include <csignal>
#include <iostream>

#include "commands.hpp"

int main(int argc, char** argv) {
    // Past a file size limit a write fails with EFBIG and the change is undone and reported;
    // SIGXFSZ's default action would kill kvpctl half-way instead.
    std::signal(SIGXFSZ, SIG_IGN);
    const int code = kvpctl::run(argc, argv, std::cout, std::cerr);
    // `wait` ended by SIGINT or SIGTERM returns 128 + the signal (run() must return: the tests
    // call it in-process). Dying of the signal itself, everything cleaned up, tells a shell
    // running a script that the program was interrupted, so the script stops too.
    for (const int sig : {SIGINT, SIGTERM}) {
        if (code == 128 + sig) {
            std::cout.flush();
            std::signal(sig, SIG_DFL);
            std::raise(sig);
        }
    }
    return code;
}
