#include "canonical_name.hpp"

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "ranked_mutex.hpp"

namespace kvp {

std::optional<std::string> resolve_canonical_name(const std::string& host) {
    if (host.empty()) {
        return std::nullopt;
    }
    struct addrinfo hints {};
    hints.ai_family = AF_INET;  // hv_kvp_daemon: "Get only ipv4 addrinfo."
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_CANONNAME;
    struct addrinfo* info = nullptr;
    if (::getaddrinfo(host.c_str(), nullptr, &hints, &info) != 0 || info == nullptr) {
        return std::nullopt;
    }
    std::optional<std::string> name;
    if (info->ai_canonname != nullptr && info->ai_canonname[0] != '\0') {
        name = info->ai_canonname;
    }
    ::freeaddrinfo(info);
    return name;
}

std::string current_host_name() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) {
        return {};
    }
    return buf;
}

struct CanonicalNameCache::State {
    NameResolver resolver;
    Timing timing;
    // Guards every field below. Held by callers (current, wait_for) and the lookup thread for
    // a few assignments, never across the lookup itself (run() lets it go around the
    // resolver) or a FUSE reply; taken after the pool and auto-view locks, before the log's.
    RankedMutex mutex{LockRank::canonical_name};
    std::condition_variable_any changed;  // a lookup finished, or one is wanted, or stop
    bool started = false;
    bool stop = false;
    bool busy = false;
    std::string wanted;  // the host name callers asked about last
    // The last finished lookup.
    bool looked_up = false;
    std::string host;
    std::optional<std::string> canonical;
    std::chrono::steady_clock::time_point when;

    // Under mutex: whether `wanted` needs a (new) lookup.
    [[nodiscard]] bool stale(std::chrono::steady_clock::time_point now) const {
        if (wanted.empty()) {
            return false;
        }
        if (!looked_up || host != wanted) {
            return true;
        }
        return now - when >= (canonical ? timing.refresh : timing.retry);
    }

    void run() {
        std::unique_lock lock(mutex);
        while (!stop) {
            if (!busy && stale(std::chrono::steady_clock::now())) {
                const std::string name = wanted;
                busy = true;
                lock.unlock();
                std::optional<std::string> answer;
                try {
                    answer = resolver(name);
                } catch (...) {
                    answer.reset();  // a failed lookup, retried later
                }
                lock.lock();
                busy = false;
                // A failed refresh keeps the last answer for the same host name: a
                // flaky resolver must not make the value flip.
                if (answer || host != name) {
                    canonical = std::move(answer);
                }
                looked_up = true;
                host = name;
                when = std::chrono::steady_clock::now();
                changed.notify_all();
                continue;
            }
            changed.wait(lock);
        }
    }
};

CanonicalNameCache::CanonicalNameCache(NameResolver resolver)
    : CanonicalNameCache(std::move(resolver), Timing{}) {}

CanonicalNameCache::CanonicalNameCache(NameResolver resolver, Timing timing)
    : state_(std::make_shared<State>()) {
    state_->resolver = std::move(resolver);
    state_->timing = timing;
}

CanonicalNameCache::~CanonicalNameCache() {
    std::lock_guard lock(state_->mutex);
    state_->stop = true;
    state_->changed.notify_all();
}

void CanonicalNameCache::start(const std::string& first_host) {
    {
        std::lock_guard lock(state_->mutex);
        if (state_->started) {
            return;
        }
        state_->started = true;
        if (state_->wanted.empty()) {
            state_->wanted = first_host;
        }
    }
    // The thread takes no signals: libfuse's handlers must run on a thread its loop
    // waits in, or SIGTERM would not end the session.
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    try {
        std::thread([state = state_] { state->run(); }).detach();
    } catch (...) {
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        std::lock_guard lock(state_->mutex);
        state_->started = false;  // no thread: answers stay the plain host name
        return;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

std::string CanonicalNameCache::current(const std::string& host) {
    start();
    std::lock_guard lock(state_->mutex);
    State& s = *state_;
    s.wanted = host;
    if (s.stale(std::chrono::steady_clock::now())) {
        s.changed.notify_all();
    }
    if (s.looked_up && s.host == host && s.canonical) {
        return *s.canonical;
    }
    return host;
}

std::string CanonicalNameCache::wait_for(const std::string& host, std::chrono::milliseconds limit) {
    (void)current(host);
    std::unique_lock lock(state_->mutex);
    state_->changed.wait_for(lock, limit,
                             [&] { return state_->looked_up && state_->host == host; });
    lock.unlock();
    return current(host);
}

}  // namespace kvp
