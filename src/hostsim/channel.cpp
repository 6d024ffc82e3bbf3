#include "channel.hpp"

#include <cerrno>
#include <fstream>
#include <string>

#include "driver.hpp"
#include "log.hpp"

namespace hostsim {
namespace {

// How long an open waits for the release of a handle its own opener closed (FUSE sends
// RELEASE after close() has returned); generous, as a loaded machine may be slow.
constexpr std::chrono::seconds kReleaseWait{10};
// Blocked reads look at their interrupt flag at least this often (an interrupt also wakes
// them at once; this only bounds a wake-up lost in between).
constexpr std::chrono::milliseconds kReadSlice{100};

// A process that exited (or is a zombie) still holds nothing: its release is on its way.
bool alive(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) {
        return false;
    }
    const auto close_paren = line.rfind(')');
    return close_paren == std::string::npos || close_paren + 2 >= line.size() ||
           line[close_paren + 2] != 'Z';
}

}  // namespace

int Channel::open(std::uint64_t handle, pid_t pid) {
    std::unique_lock lk(mu_);
    if (holder_) {
        if (holder_pid_ != pid && alive(holder_pid_)) {
            kvp::log(kvp::LogLevel::warning, "device open by pid " + std::to_string(pid) +
                                                 " refused: pid " + std::to_string(holder_pid_) +
                                                 " has it open (EBUSY)");
            return -EBUSY;
        }
        cv_.wait_for(lk, kReleaseWait, [&] { return !holder_ || stopping_; });
        if (holder_) {
            return -EBUSY;
        }
    }
    holder_ = handle;
    holder_pid_ = pid;
    state_ = State::opened;
    outmsg_.reset();
    kvp::log(kvp::LogLevel::info, "device opened by pid " + std::to_string(pid));
    return 0;
}

void Channel::release(std::uint64_t handle) {
    const std::lock_guard lk(mu_);
    if (holder_ != handle) {
        return;
    }
    kvp::log(kvp::LogLevel::info, "device closed by pid " + std::to_string(holder_pid_) +
                                      ": a new registration is needed");
    holder_.reset();
    holder_pid_ = 0;
    reset_locked("the daemon closed the device during the request");
    state_ = State::closed;
    cv_.notify_all();
}

void Channel::reset_locked(const std::string& why) {
    outmsg_.reset();
    if (request_ && !answer_) {
        answer_ = HostReply{HV_E_FAIL, *request_, why};
    }
}

int Channel::read(std::uint64_t handle, std::size_t size, const std::function<bool()>& interrupted,
                  std::vector<std::uint8_t>* out) {
    std::unique_lock lk(mu_);
    for (;;) {
        if (holder_ != handle) {
            return -EBADF;
        }
        if (outmsg_) {
            if (size < outmsg_->bytes().size()) {
                return -EINVAL;
            }
            *out = outmsg_->bytes();
            outmsg_.reset();
            return 0;
        }
        if (stopping_) {
            return -ENODEV;
        }
        if (interrupted()) {
            return -EINTR;
        }
        cv_.wait_for(lk, kReadSlice);
    }
}

int Channel::write(std::uint64_t handle, const std::vector<std::uint8_t>& data) {
    const std::lock_guard lk(mu_);
    if (holder_ != handle) {
        return -EBADF;
    }
    if (data.size() < kMessageSize) {
        kvp::log(kvp::LogLevel::error, "the daemon wrote " + std::to_string(data.size()) +
                                           " bytes; a message is " + std::to_string(kMessageSize) +
                                           " (EINVAL)");
        return -EINVAL;
    }
    const KvpMessage message(data);
    if (state_ == State::opened) {
        if (message.operation() != KVP_OP_REGISTER1) {
            kvp::log(kvp::LogLevel::error, "incompatible daemon: it registered with operation " +
                                               std::to_string(message.operation()) + ", not " +
                                               std::to_string(KVP_OP_REGISTER1) + " (EINVAL)");
            return -EINVAL;
        }
        if (data.size() != kMessageSize) {
            // The daemon was built with another struct hv_kvp_msg than this program.
            kvp::log(kvp::LogLevel::error,
                     "hv_kvp_daemon's messages are " + std::to_string(data.size()) +
                         " bytes, this driver's struct hv_kvp_msg is " +
                         std::to_string(kMessageSize) + ": refusing its registration (EINVAL)");
            return -EINVAL;
        }
        counters_.daemon_message_size = data.size();
        ++counters_.registrations;
        state_ = State::ready;
        queue_locked(driver_registration(message.operation()));
        kvp::log(kvp::LogLevel::info, "hv_kvp_daemon (pid " + std::to_string(holder_pid_) +
                                          ") registered; answered with version " +
                                          std::string(kDriverVersion));
        return 0;
    }
    if (state_ != State::request_queued || !request_ || answer_) {
        // The host stopped waiting (timeout): the driver has nobody to give this to.
        ++counters_.late_replies;
        kvp::log(kvp::LogLevel::warning,
                 "the daemon answered a request the host no longer waits for (EINVAL)");
        return -EINVAL;
    }
    HostReply reply{0, *request_, {}};
    reply.status = driver_respond(&reply.message, &message, message.u32(offset::kError));
    answer_ = std::move(reply);
    state_ = State::ready;
    cv_.notify_all();
    return 0;
}

bool Channel::readable() {
    const std::lock_guard lk(mu_);
    return outmsg_.has_value();
}

void Channel::on_readable(std::function<void()> notify) {
    const std::lock_guard lk(mu_);
    notify_ = std::move(notify);
}

void Channel::wake() {
    cv_.notify_all();
}

void Channel::stop() {
    const std::lock_guard lk(mu_);
    stopping_ = true;
    reset_locked("kvp-host is stopping");
    cv_.notify_all();
}

void Channel::queue_locked(KvpMessage message) {
    outmsg_ = std::move(message);
    cv_.notify_all();
    if (notify_) {
        notify_();
    }
}

HostReply Channel::transact(const KvpMessage& request, std::chrono::milliseconds timeout,
                            const std::function<bool()>& abandoned) {
    std::unique_lock queue_lk(queue_mu_);
    const std::uint64_t ticket = next_ticket_++;
    queue_cv_.wait(queue_lk, [&] { return serving_ == ticket; });
    queue_lk.unlock();
    struct NextTicket {
        Channel* self;
        explicit NextTicket(Channel* c) : self(c) {}
        NextTicket(const NextTicket&) = delete;
        NextTicket& operator=(const NextTicket&) = delete;
        NextTicket(NextTicket&&) = delete;
        NextTicket& operator=(NextTicket&&) = delete;
        ~NextTicket() {
            const std::lock_guard lk(self->queue_mu_);
            ++self->serving_;
            self->queue_cv_.notify_all();
        }
    } next(this);

    if (abandoned && abandoned()) {
        // Its host process died while it waited: a request nobody made any more.
        return {HV_E_FAIL, request, "the caller went away before its turn: not sent"};
    }
    std::unique_lock lk(mu_);
    ++counters_.transactions;
    // A dead opener's RELEASE may still be on its way through FUSE; the real driver has
    // released the device by the time the daemon's exit completes.
    if (stopping_) {
        return {HV_E_FAIL, request, "kvp-host is stopping: the request reached no daemon"};
    }
    const bool opener_gone = holder_ && !alive(holder_pid_);
    if ((state_ != State::ready && state_ != State::request_queued) || opener_gone) {
        return {HV_E_FAIL, request,
                "no hv_kvp_daemon is registered: the request reached no daemon"};
    }
    if (outmsg_) {
        // The daemon has not read the last message (it is stopped or slow): the driver
        // cannot queue a second one and fails the request at once.
        return {HV_E_FAIL, request, "the daemon has not read the previous message yet"};
    }
    request_ = request;
    answer_.reset();
    state_ = State::request_queued;
    queue_locked(driver_to_daemon(request));
    const bool answered = cv_.wait_for(lk, timeout, [&] { return answer_.has_value(); });
    request_.reset();
    if (answered) {
        HostReply reply = std::move(*answer_);
        answer_.reset();
        return reply;
    }
    ++counters_.timeouts;
    if (state_ == State::request_queued) {
        state_ = State::ready;  // the message stays queued if the daemon has not read it
    }
    const auto ms = timeout.count();
    const std::string seconds =
        std::to_string(ms / 1000) + (ms % 1000 != 0 ? "." + std::to_string(ms % 1000 / 100) : "");
    return {HV_E_FAIL, request,
            "the daemon did not answer within " + seconds + " s (the driver's timeout)"};
}

ChannelStatus Channel::status() {
    const std::lock_guard lk(mu_);
    ChannelStatus s = counters_;
    s.open = holder_.has_value();
    s.opener = holder_pid_;
    s.pending = outmsg_.has_value();
    s.registered = state_ == State::ready || state_ == State::request_queued;
    return s;
}

}  // namespace hostsim
