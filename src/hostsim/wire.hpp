#pragma once
// The control socket's protocol between `kvp-host VERB` and `kvp-host serve`: one JSON
// object a line each way over a unix stream socket. Messages travel as hex of the host's
// struct hv_kvp_msg, so the server relays exactly what the host built.

#include <sys/un.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "unique_fd.hpp"

namespace hostsim {

// The control socket when neither --socket nor $KVP_HOST_SOCKET names one.
inline constexpr const char* kDefaultStateDir = "/run/kvp-host";
[[nodiscard]] std::string default_socket_path();

[[nodiscard]] std::string to_hex(const std::vector<std::uint8_t>& bytes);
[[nodiscard]] std::optional<std::vector<std::uint8_t>> from_hex(const std::string& text);

// A line-oriented reader of a stream socket.
class LineSocket {
  public:
    explicit LineSocket(kvp::UniqueFd fd) : fd_(std::move(fd)) {}
    // The next line without its newline; nullopt at end of stream or on an error.
    [[nodiscard]] std::optional<std::string> read_line();
    [[nodiscard]] bool write_line(const std::string& line);
    [[nodiscard]] int fd() const { return fd_.get(); }

  private:
    kvp::UniqueFd fd_;
    std::string buffer_;
};

// Connects to the server; throws std::runtime_error naming the socket and the cure.
[[nodiscard]] LineSocket connect_server(const std::string& socket_path);
// The address of the unix socket at `path`; throws when the path does not fit sun_path.
[[nodiscard]] struct sockaddr_un unix_address(const std::string& path);
// Sends one request and waits for its answer; throws std::runtime_error.
[[nodiscard]] nlohmann::json call(LineSocket& server, const nlohmann::json& request);

[[nodiscard]] std::string dump_json(const nlohmann::json& j);

}  // namespace hostsim
