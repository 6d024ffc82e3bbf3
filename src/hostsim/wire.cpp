#include "wire.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace hostsim {

std::string default_socket_path() {
    const char* env = std::getenv("KVP_HOST_SOCKET");
    if (env != nullptr && *env != '\0') {
        return env;
    }
    return std::string(kDefaultStateDir) + "/socket";
}

std::string to_hex(const std::vector<std::uint8_t>& bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const std::uint8_t b : bytes) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 0xFU]);
    }
    return out;
}

std::optional<std::vector<std::uint8_t>> from_hex(const std::string& text) {
    if (text.size() % 2 != 0) {
        return std::nullopt;
    }
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        return -1;
    };
    std::vector<std::uint8_t> out(text.size() / 2);
    for (std::size_t i = 0; i < out.size(); ++i) {
        const int hi = digit(text[2 * i]);
        const int lo = digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return out;
}

std::optional<std::string> LineSocket::read_line() {
    for (;;) {
        const auto nl = buffer_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            return line;
        }
        std::array<char, 16384> chunk{};
        const ssize_t n = ::read(fd_.get(), chunk.data(), chunk.size());
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return std::nullopt;
        }
        buffer_.append(chunk.data(), static_cast<std::size_t>(n));
    }
}

bool LineSocket::write_line(const std::string& line) {
    const std::string data = line + "\n";
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::send(fd_.get(), data.data() + done, data.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

struct sockaddr_un unix_address(const std::string& path) {
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        throw std::runtime_error("socket path too long (" + std::to_string(path.size()) +
                                 " bytes, at most " + std::to_string(sizeof addr.sun_path - 1) +
                                 "): " + path);
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

LineSocket connect_server(const std::string& socket_path) {
    kvp::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    }
    const struct sockaddr_un addr = unix_address(socket_path);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error("cannot reach kvp-host serve at " + socket_path + ": " +
                                 std::strerror(errno) +
                                 " (start it with 'kvp-host serve', or name its socket with "
                                 "--socket or $KVP_HOST_SOCKET)");
    }
    return LineSocket(std::move(fd));
}

nlohmann::json call(LineSocket& server, const nlohmann::json& request) {
    if (!server.write_line(dump_json(request))) {
        throw std::runtime_error("the kvp-host server closed the connection");
    }
    const auto line = server.read_line();
    if (!line) {
        throw std::runtime_error("the kvp-host server ended without an answer");
    }
    return nlohmann::json::parse(*line);
}

std::string dump_json(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace hostsim
