#pragma once
// The KVP driver's side of the channel between the host and hv_kvp_daemon: the device's
// one opener, the daemon's registration, the one undelivered message, and the host's one
// transaction at a time with its timeout. The FUSE file (device_fs) and the host's
// requests (the control socket) both come here; nothing in here knows about FUSE.

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kvp_message.hpp"
#include "ranked_mutex.hpp"

namespace hostsim {

struct HostReply {
    std::uint32_t status = 0;  // what the host's status field holds
    KvpMessage message;        // the host's buffer as the driver left it
    std::string note;          // why the driver answered on its own, if it did
};

struct ChannelStatus {
    bool open = false;
    bool registered = false;
    bool pending = false;  // a message the daemon has not read yet
    pid_t opener = 0;
    std::size_t daemon_message_size = 0;  // of the daemon's registration write
    std::uint64_t registrations = 0;
    std::uint64_t transactions = 0;
    std::uint64_t timeouts = 0;
    std::uint64_t late_replies = 0;
};

class Channel {
  public:
    Channel() = default;
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;
    Channel(Channel&&) = delete;
    Channel& operator=(Channel&&) = delete;
    ~Channel() = default;

    // --- the daemon's side: the device file -------------------------------------------
    // 0 or -EBUSY. A close-then-reopen by the same process (or after the opener died) waits
    // for the earlier handle's release, which FUSE delivers after close() has returned.
    int open(std::uint64_t handle, pid_t pid);
    void release(std::uint64_t handle);
    // Blocks until a message is queued; -EINTR when `interrupted` says so, -EINVAL when
    // `size` cannot hold the message (it stays queued).
    int read(std::uint64_t handle, std::size_t size, const std::function<bool()>& interrupted,
             std::vector<std::uint8_t>* out);
    // 0 or -errno: -EINVAL for a short write, a failed registration or a reply nobody waits
    // for (the host gave up on it), as the driver answers.
    int write(std::uint64_t handle, const std::vector<std::uint8_t>& data);
    [[nodiscard]] bool readable();
    // Called (with the channel's lock held) whenever a message is queued for the daemon.
    void on_readable(std::function<void()> notify);
    // Wakes blocked reads (an interrupt arrived, or the server stops).
    void wake();
    void stop();

    // --- the host's side ---------------------------------------------------------------
    // One transaction; callers queue in arrival order, as the host keeps at most one
    // request outstanding. `abandoned`, asked when the caller's turn has come, says that
    // the caller has gone meanwhile: the request is then not sent.
    HostReply transact(const KvpMessage& request, std::chrono::milliseconds timeout,
                       const std::function<bool()>& abandoned = {});
    [[nodiscard]] ChannelStatus status();

  private:
    enum class State { closed, opened, ready, request_queued };
    void reset_locked(const std::string& why);
    void queue_locked(KvpMessage message);

    // Guards the device's state and the transaction in flight (everything down to counters_).
    // Taken by the device's FUSE threads (open, read, write, release) and by a transaction
    // after its turn came (queue_mu_ is let go before). on_readable's callback runs under it
    // and takes DeviceFs's poll lock (ranked after it); logging under it is fine. Never held
    // across a FUSE reply; read() and transact() wait on cv_, letting it go.
    kvp::RankedMutex mu_{kvp::LockRank::host_channel};
    std::condition_variable_any cv_;
    State state_ = State::closed;
    std::optional<std::uint64_t> holder_;
    pid_t holder_pid_ = 0;
    std::optional<KvpMessage> outmsg_;
    // The host's transaction in flight: its buffer, and the answer once there is one.
    std::optional<KvpMessage> request_;
    std::optional<HostReply> answer_;
    std::uint64_t transaction_id_ = 0;
    std::function<void()> notify_;
    bool stopping_ = false;
    ChannelStatus counters_;

    // The host's queue: tickets served in order.
    // Guards the tickets only; held for a counter, never across the transaction. Taken alone
    // (a transaction lets it go before it takes mu_; its NextTicket retakes it after mu_ is
    // released).
    kvp::RankedMutex queue_mu_{kvp::LockRank::host_channel_queue};
    std::condition_variable_any queue_cv_;
    std::uint64_t next_ticket_ = 0;
    std::uint64_t serving_ = 0;
};

}  // namespace hostsim
