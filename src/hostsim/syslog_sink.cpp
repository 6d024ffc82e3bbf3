#include "syslog_sink.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "wire.hpp"

namespace hostsim {
namespace {

std::string timestamp() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    ::localtime_r(&t, &tm);
    std::array<char, 64> text{};
    const std::size_t n = std::strftime(text.data(), text.size(), "%F %T", &tm);
    std::snprintf(text.data() + n, text.size() - n, ".%03lld", static_cast<long long>(ms));
    return text.data();
}

// "<14>Nov 27 21:20:00 KVP: text" -> "KVP: text": the priority and syslog's own time go.
std::string strip_header(std::string message) {
    while (!message.empty() && (message.back() == '\n' || message.back() == '\0')) {
        message.pop_back();
    }
    if (!message.empty() && message[0] == '<') {
        const auto close = message.find('>');
        if (close != std::string::npos) {
            message.erase(0, close + 1);
            // "Mmm dd hh:mm:ss " is 16 characters.
            if (message.size() > 16 && message[3] == ' ' && message[6] == ' ' &&
                message[9] == ':') {
                message.erase(0, 16);
            }
        }
    }
    for (char& c : message) {
        if (c == '\n') {
            c = ' ';
        }
    }
    return message;
}

}  // namespace

SyslogSink::SyslogSink(std::string socket_path, const std::string& log_file)
    : socket_path_(std::move(socket_path)) {
    file_.reset(::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!file_) {
        throw std::runtime_error("cannot open " + log_file + ": " + std::strerror(errno));
    }
    socket_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!socket_) {
        throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    }
    const struct sockaddr_un addr = unix_address(socket_path_);
    ::unlink(socket_path_.c_str());
    if (::bind(socket_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error("bind " + socket_path_ + ": " + std::strerror(errno));
    }
    reader_ = std::thread([this] { run(); });
}

SyslogSink::~SyslogSink() {
    stop_ = true;
    if (reader_.joinable()) {
        reader_.join();
    }
    ::unlink(socket_path_.c_str());
}

void SyslogSink::note(const std::string& line) {
    append("kvp-host: " + line);
}

void SyslogSink::append(const std::string& line) {
    const std::string text = timestamp() + " " + line + "\n";
    // One write() per line, O_APPEND: lines of the reader and of note() never mix.
    (void)!::write(file_.get(), text.data(), text.size());
}

void SyslogSink::run() {
    std::array<char, 8192> buf{};
    while (!stop_) {
        struct pollfd pfd {
            socket_.get(), POLLIN, 0
        };
        // A short poll: the flag is the only way to stop a datagram reader cleanly.
        if (::poll(&pfd, 1, 200) <= 0) {
            continue;
        }
        const ssize_t n = ::recv(socket_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n > 0) {
            append(strip_header(std::string(buf.data(), static_cast<std::size_t>(n))));
        }
    }
}

}  // namespace hostsim
