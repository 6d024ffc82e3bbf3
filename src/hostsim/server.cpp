#include "server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <poll.h>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "channel.hpp"
#include "device_fs.hpp"
#include "guest_daemon.hpp"
#include "log.hpp"
#include "ranked_mutex.hpp"
#include "syslog_sink.hpp"
#include "wire.hpp"

namespace hostsim {
namespace {

std::string describe_exit(int status) {
    if (WIFSIGNALED(status)) {
        return std::string("killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
               ::sigabbrev_np(WTERMSIG(status)) + ")";
    }
    return "exited with status " + std::to_string(WEXITSTATUS(status));
}

// The daemon process: started by the server, reaped by its main thread.
class DaemonSupervisor {
  public:
    explicit DaemonSupervisor(GuestDaemonSetup setup) : setup_(std::move(setup)) {}

    // Returns an empty string or why it did not start.
    std::string start() {
        const std::lock_guard lk(mu_);
        if (pid_ > 0) {
            return "hv_kvp_daemon is already running (pid " + std::to_string(pid_) + ")";
        }
        try {
            pid_ = start_guest_daemon(setup_);
        } catch (const std::exception& e) {
            return e.what();
        }
        ++starts_;
        kvp::log(kvp::LogLevel::info,
                 "started " + setup_.program + " -n (pid " + std::to_string(pid_) + ")");
        return {};
    }

    void signal(int sig) {
        const std::lock_guard lk(mu_);
        if (pid_ > 0) {
            ::kill(pid_, sig);
        }
    }

    // Reaps whatever child ended; call on SIGCHLD.
    void reap() {
        for (;;) {
            int status = 0;
            const pid_t pid = ::waitpid(-1, &status, WNOHANG);
            if (pid <= 0) {
                return;
            }
            const std::lock_guard lk(mu_);
            if (pid == pid_) {
                pid_ = 0;
                last_exit_ = describe_exit(status);
                kvp::log(kvp::LogLevel::info,
                         "hv_kvp_daemon (pid " + std::to_string(pid) + ") " + last_exit_);
            }
        }
    }

    // SIGTERM, then SIGKILL; waits for the end.
    void stop() {
        pid_t pid = 0;
        {
            const std::lock_guard lk(mu_);
            pid = pid_;
        }
        if (pid <= 0) {
            return;
        }
        ::kill(pid, SIGTERM);
        ::kill(pid, SIGCONT);  // a stopped daemon must be able to die
        for (int i = 0; i < 500; ++i) {
            int status = 0;
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                const std::lock_guard lk(mu_);
                pid_ = 0;
                last_exit_ = describe_exit(status);
                return;
            }
            if (i == 300) {
                ::kill(pid, SIGKILL);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }

    nlohmann::json status() {
        const std::lock_guard lk(mu_);
        return {{"daemon_pid", pid_},
                {"daemon_running", pid_ > 0},
                {"daemon_starts", starts_},
                {"daemon_last_exit", last_exit_},
                {"daemon_program", setup_.program}};
    }

  private:
    GuestDaemonSetup setup_;
    // Guards pid_, starts_ and last_exit_. Taken by the control connections' threads (start,
    // stop, status) and by the main thread (reap on SIGCHLD, stop), each alone; held across
    // the fork of the daemon and kill(), never across a wait for it (stop() polls without it).
    kvp::RankedMutex mu_{kvp::LockRank::host_daemon};
    pid_t pid_ = 0;
    std::uint64_t starts_ = 0;
    std::string last_exit_;
};

// Why a request is refused before anything is sent (empty when it may go).
std::string refusal(const KvpMessage& m) {
    if (m.pool() >= KVP_POOL_COUNT) {
        return "pool " + std::to_string(m.pool()) +
               " does not exist (0-4): hv_kvp_daemon does not check the pool number and would "
               "crash on it, so kvp-host never sends it";
    }
    switch (m.operation()) {
        case KVP_OP_GET:
        case KVP_OP_SET:
        case KVP_OP_DELETE:
        case KVP_OP_ENUMERATE:
            return {};
        case KVP_OP_GET_IP_INFO:
        case KVP_OP_SET_IP_INFO:
            return "KVP_OP_GET_IP_INFO and KVP_OP_SET_IP_INFO are not simulated: the daemon "
                   "would read or rewrite this machine's network configuration";
        default:
            return "unknown KVP operation " + std::to_string(m.operation());
    }
}

class ControlServer {
  public:
    ControlServer(std::string path, Channel& channel, DaemonSupervisor& daemon,
                  std::chrono::milliseconds timeout, nlohmann::json identity)
        : path_(std::move(path)),
          channel_(channel),
          daemon_(daemon),
          timeout_(timeout),
          identity_(std::move(identity)) {
        listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!listen_) {
            throw std::runtime_error("cannot make the control socket " + path_ + ": " +
                                     std::strerror(errno));
        }
        const struct sockaddr_un addr = unix_address(path_);
        ::unlink(path_.c_str());
        const mode_t old = ::umask(077);  // root's verbs only
        const int rc = ::bind(listen_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        ::umask(old);
        if (rc != 0 || ::listen(listen_.get(), 64) != 0) {
            throw std::runtime_error("cannot listen on " + path_ + ": " + std::strerror(errno));
        }
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;
    ControlServer(ControlServer&&) = delete;
    ControlServer& operator=(ControlServer&&) = delete;
    ~ControlServer() { stop(); }

    void stop() {
        if (stop_.exchange(true)) {
            return;
        }
        if (acceptor_.joinable()) {
            acceptor_.join();
        }
        ::unlink(path_.c_str());
        std::unique_lock lk(mu_);
        // A connection waits for its client's next line, which may never come: shut them
        // down so that their threads end. A transaction in flight ends with the channel
        // (stopped before this).
        for (const int fd : connections_) {
            ::shutdown(fd, SHUT_RDWR);
        }
        if (!cv_.wait_for(lk, std::chrono::seconds(10), [&] { return active_ == 0; })) {
            // Their threads still use this object: never destroy it under them.
            kvp::log(kvp::LogLevel::error, "connections did not end; exiting");
            std::_Exit(1);
        }
    }

  private:
    void accept_loop() {
        while (!stop_) {
            struct pollfd pfd {
                listen_.get(), POLLIN, 0
            };
            if (::poll(&pfd, 1, 200) <= 0) {
                continue;
            }
            kvp::UniqueFd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (!conn) {
                continue;
            }
            const int raw = conn.get();
            {
                const std::lock_guard lk(mu_);
                ++active_;
                connections_.insert(raw);
            }
            // One thread a connection; their transactions queue inside the channel.
            std::thread([this, raw, fd = std::move(conn)]() mutable {
                LineSocket socket(std::move(fd));
                serve_connection(socket);
                const std::lock_guard lk(mu_);
                // Forgotten before the descriptor closes, so stop() never shuts down a
                // number that was reused.
                connections_.erase(raw);
                socket = LineSocket(kvp::UniqueFd());
                --active_;
                cv_.notify_all();
            }).detach();
        }
    }

    void serve_connection(LineSocket& conn) {
        while (!stop_) {
            // A client may sit idle between requests (e.g. a list paused by a pipe); the
            // read ends when it closes.
            const auto line = conn.read_line();
            if (!line) {
                return;
            }
            nlohmann::json answer;
            try {
                answer = handle(nlohmann::json::parse(*line), conn.fd());
            } catch (const std::exception& e) {
                answer = {{"error", std::string("bad request: ") + e.what()}};
            }
            if (!conn.write_line(dump_json(answer))) {
                return;
            }
        }
    }

    nlohmann::json handle(const nlohmann::json& request, int conn_fd) {
        const std::string verb = request.at("verb").get<std::string>();
        if (verb == "transact") {
            const auto bytes = from_hex(request.at("message").get<std::string>());
            if (!bytes || bytes->size() != kMessageSize) {
                return {{"error", "the message is not a " + std::to_string(kMessageSize) +
                                      "-byte hv_kvp_msg"}};
            }
            const KvpMessage message(*bytes);
            if (const std::string why = refusal(message); !why.empty()) {
                return {{"error", why}, {"refused", true}};
            }
            std::chrono::milliseconds timeout = timeout_;
            if (request.contains("timeout_ms") && request["timeout_ms"].get<long long>() > 0) {
                timeout = std::chrono::milliseconds(request["timeout_ms"].get<long long>());
            }
            // A client killed while its request waited for its turn hung up: the request
            // is not sent (its answer would reach nobody, and it would still change the
            // pool).
            const auto hung_up = [conn_fd] {
                struct pollfd pfd {
                    conn_fd, POLLRDHUP, 0
                };
                return ::poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP)) != 0;
            };
            const HostReply reply = channel_.transact(message, timeout, hung_up);
            return {{"status", reply.status},
                    {"message", to_hex(reply.message.bytes())},
                    {"note", reply.note}};
        }
        if (verb == "status") {
            const ChannelStatus s = channel_.status();
            nlohmann::json out = identity_;
            out.update(daemon_.status());
            out.update({{"registered", s.registered},
                        {"pending", s.pending},
                        {"device_open", s.open},
                        {"device_opener", s.opener},
                        {"message_size", kMessageSize},
                        {"daemon_message_size", s.daemon_message_size},
                        {"registrations", s.registrations},
                        {"transactions", s.transactions},
                        {"timeouts", s.timeouts},
                        {"late_replies", s.late_replies}});
            return out;
        }
        if (verb == "daemon") {
            const std::string action = request.at("action").get<std::string>();
            if (action == "start") {
                const std::string why = daemon_.start();
                return why.empty() ? nlohmann::json{{"ok", true}} : nlohmann::json{{"error", why}};
            }
            if (action == "stop") {
                daemon_.signal(SIGTERM);
                return {{"ok", true}};
            }
            return {{"error", "unknown daemon action '" + action + "' (start or stop)"}};
        }
        return {{"error", "unknown verb '" + verb + "'"}};
    }

    std::string path_;
    Channel& channel_;
    DaemonSupervisor& daemon_;
    std::chrono::milliseconds timeout_;
    nlohmann::json identity_;
    kvp::UniqueFd listen_;
    std::atomic<bool> stop_{false};
    std::thread acceptor_;
    // Guards active_ and connections_. Taken by the acceptor and each connection's thread for
    // a counter and a set, and by stop(), which waits on cv_ for the connections to end (it
    // lets the lock go while waiting). Never held across a request: the channel and the
    // daemon supervisor are taken without it.
    kvp::RankedMutex mu_{kvp::LockRank::host_server};
    std::condition_variable_any cv_;
    int active_ = 0;
    std::set<int> connections_;  // the open connections' descriptors
};

bool socket_is_live(const std::string& path) {
    try {
        (void)connect_server(path);
        return true;
    } catch (const std::exception&) {
        return false;
    }
}

}  // namespace

int serve(ServeOptions o) {
    namespace fs = std::filesystem;
    if (::geteuid() != 0) {
        std::cerr << "kvp-host serve: needs root (it mounts a FUSE file system and gives "
                     "hv_kvp_daemon a mount namespace of its own)\n";
        return 2;
    }
    std::error_code ec;
    if (o.pool_dir.empty() || !fs::is_directory(o.pool_dir, ec)) {
        std::cerr << "kvp-host serve: the pool directory '" << o.pool_dir
                  << "' is not a directory\n";
        return 2;
    }
    o.pool_dir = fs::canonical(o.pool_dir).string();
    if (o.start_daemon && ::access(o.daemon_program.c_str(), X_OK) != 0) {
        std::cerr << "kvp-host serve: no hv_kvp_daemon at " << o.daemon_program
                  << " (install the package hyperv-daemons, or name it with --daemon)\n";
        return 3;
    }
    if (o.state_dir.empty()) {
        o.state_dir = kDefaultStateDir;
    }
    fs::create_directories(o.state_dir, ec);
    if (ec) {
        std::cerr << "kvp-host serve: cannot create " << o.state_dir << ": " << ec.message()
                  << "\n";
        return 2;
    }
    o.state_dir = fs::canonical(o.state_dir).string();
    if (o.socket_path.empty()) {
        o.socket_path = o.state_dir + "/socket";
    }
    if (o.log_file.empty()) {
        o.log_file = o.state_dir + "/daemon.log";
    }
    // One server a state directory: a second one would mount its device over the first's
    // and take over (and at its end remove) the syslog socket the first's daemon binds.
    const kvp::UniqueFd state_lock(
        ::open((o.state_dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!state_lock) {
        std::cerr << "kvp-host serve: cannot create " << o.state_dir
                  << "/lock: " << std::strerror(errno) << "\n";
        return 2;
    }
    if (::flock(state_lock.get(), LOCK_EX | LOCK_NB) != 0) {
        std::cerr << "kvp-host serve: the state directory " << o.state_dir
                  << " is in use by another kvp-host serve (give this one its own --state-dir)\n";
        return 2;
    }
    if (socket_is_live(o.socket_path)) {
        std::cerr << "kvp-host serve: another kvp-host serve answers on " << o.socket_path << "\n";
        return 2;
    }
    const std::string dev_dir = o.state_dir + "/dev";
    const std::string stage_dir = o.state_dir + "/ns-dev";
    const std::string syslog_socket = o.state_dir + "/syslog.sock";
    // A server that was killed could not unmount its device: its FUSE mount is left dead
    // (ENOTCONN). Nobody else serves this state directory (the lock), so it can go.
    for (int i = 0; i < 16; ++i) {
        struct stat st {};
        if (::stat(dev_dir.c_str(), &st) == 0 || errno != ENOTCONN) {
            break;
        }
        if (::umount2(dev_dir.c_str(), MNT_DETACH) != 0) {
            std::cerr << "kvp-host serve: " << dev_dir
                      << " is the dead mount of a server that was killed, and unmounting it "
                         "failed: "
                      << std::strerror(errno) << "\n";
            return 2;
        }
        std::cerr << "kvp-host serve: unmounted the dead device of an earlier server at " << dev_dir
                  << "\n";
    }
    for (const std::string& d : {dev_dir, stage_dir}) {
        fs::create_directories(d, ec);
        if (ec) {
            std::cerr << "kvp-host serve: cannot create " << d << ": " << ec.message() << "\n";
            return 2;
        }
    }

    // Every thread started from here on inherits the mask; the main thread sigwait()s.
    sigset_t signals;
    sigemptyset(&signals);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) {
        sigaddset(&signals, sig);
    }
    ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    try {
        SyslogSink sink(syslog_socket, o.log_file);
        kvp::set_log_sink([&sink](kvp::LogLevel level, const std::string& line) {
            if (level == kvp::LogLevel::debug) {
                return;
            }
            std::fprintf(stderr, "kvp-host: %s\n", line.c_str());
            sink.note(line);
        });
        Channel channel;
        DeviceFs device(channel, dev_dir);
        device.start();
        DaemonSupervisor daemon({o.daemon_program, o.pool_dir, device.device_path(), syslog_socket,
                                 stage_dir, o.log_file});
        const nlohmann::json identity{{"pool_dir", o.pool_dir},
                                      {"socket", o.socket_path},
                                      {"log", o.log_file},
                                      {"device", device.device_path()},
                                      {"timeout_ms", o.timeout.count()},
                                      {"server_pid", ::getpid()}};
        ControlServer control(o.socket_path, channel, daemon, o.timeout, identity);
        if (o.start_daemon) {
            if (const std::string why = daemon.start(); !why.empty()) {
                kvp::log(kvp::LogLevel::error, why);
            }
        }
        kvp::log(kvp::LogLevel::info, "serving " + o.pool_dir + " on " + o.socket_path +
                                          " (device " + device.device_path() + ", log " +
                                          o.log_file + ")");
        for (;;) {
            int sig = 0;
            if (::sigwait(&signals, &sig) != 0) {
                continue;
            }
            if (sig == SIGCHLD) {
                daemon.reap();
                continue;
            }
            kvp::log(kvp::LogLevel::info, std::string("stopping (") + ::sigabbrev_np(sig) + ")");
            break;
        }
        daemon.stop();
        device.stop();
        control.stop();
        kvp::log(kvp::LogLevel::info, "stopped");
        kvp::set_log_sink(nullptr);
    } catch (const std::exception& e) {
        std::cerr << "kvp-host serve: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

}  // namespace hostsim
