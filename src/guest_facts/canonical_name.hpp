#pragma once
// The FullyQualifiedDomainName intrinsic item: the canonical name of the host name, as
// hv_kvp_daemon's kvp_get_domain_name() asks for it (getaddrinfo with AI_CANONNAME,
// AF_INET, SOCK_STREAM). A lookup can take as long as the resolver's timeouts (or hang),
// so it runs on a background thread and no caller ever waits for it: until a lookup of
// the current host name has succeeded, the answer is the plain host name.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace kvp {

// Resolves a host name to its canonical name; nullopt when the lookup fails.
using NameResolver = std::function<std::optional<std::string>(const std::string& host)>;

// getaddrinfo(host, AF_INET, SOCK_STREAM, AI_CANONNAME), as hv_kvp_daemon does.
[[nodiscard]] std::optional<std::string> resolve_canonical_name(const std::string& host);

// The host name (gethostname), "" when it cannot be read.
[[nodiscard]] std::string current_host_name();

class CanonicalNameCache {
  public:
    struct Timing {
        std::chrono::milliseconds refresh{std::chrono::seconds(60)};  // after a success
        std::chrono::milliseconds retry{std::chrono::seconds(10)};    // after a failure
    };

    explicit CanonicalNameCache(NameResolver resolver = resolve_canonical_name);
    CanonicalNameCache(NameResolver resolver, Timing timing);
    // Tells the thread to stop; does not wait for a lookup in progress (it may hang).
    ~CanonicalNameCache();
    CanonicalNameCache(const CanonicalNameCache&) = delete;
    CanonicalNameCache& operator=(const CanonicalNameCache&) = delete;
    CanonicalNameCache(CanonicalNameCache&&) = delete;
    CanonicalNameCache& operator=(CanonicalNameCache&&) = delete;

    // Starts the lookup thread (once; later calls do nothing), looking `first_host` up at
    // once when given, so the first read may already have its answer. Call it after fork():
    // kvpfs calls it when the kernel's INIT arrives, after daemonizing.
    void start(const std::string& first_host = "");
    // The canonical name of `host` from the last successful lookup of it, else `host`.
    // Never waits for a lookup: it asks the thread for one when `host` was never looked
    // up or its answer is older than the refresh (or retry) time. Starts the thread.
    [[nodiscard]] std::string current(const std::string& host);
    // current(host), after waiting at most `limit` for a first lookup of `host` to end
    // (a command-line tool that shows the value once).
    [[nodiscard]] std::string wait_for(const std::string& host, std::chrono::milliseconds limit);

  private:
    struct State;
    std::shared_ptr<State> state_;  // shared with the thread, which may outlive this
};

}  // namespace kvp
