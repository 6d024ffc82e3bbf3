#include "host_verbs.hpp"

#include <chrono>
#include <cmath>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <thread>

#include "escape.hpp"
#include "kvp_message.hpp"
#include "log.hpp"
#include "wire.hpp"

namespace hostsim {
namespace {

constexpr int kDone = 0;
constexpr int kFailed = 1;
constexpr int kBadUse = 2;

// Every index the daemon could answer: far past any real pool (a pool file of this many
// records would be 2.5 GB), so a daemon that never says "end" cannot loop us forever.
constexpr std::uint32_t kMaxEnumeration = 1000000;

const char* const kPoolNames[] = {"external", "guest", "auto", "parameter", "internal"};

// A refusal before anything is sent.
struct BadUse : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::uint8_t parse_pool(const std::string& text) {
    for (int n = 0; n < 5; ++n) {
        if (text == kPoolNames[n]) {
            return static_cast<std::uint8_t>(n);
        }
    }
    if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos) {
        if (text.size() > 3 || std::stoi(text) > 4) {
            throw BadUse("pool " + text +
                         " does not exist: pools are 0-4, and hv_kvp_daemon does not check the "
                         "number (a pool of 5 or more crashes it), so kvp-host refuses it");
        }
        return static_cast<std::uint8_t>(std::stoi(text));
    }
    throw BadUse("unknown pool '" + text + "' (external, guest, auto, parameter, internal or 0-4)");
}

std::uint8_t parse_writable_pool(const std::string& text, bool any_pool) {
    const std::uint8_t pool = parse_pool(text);
    if (!any_pool && pool != KVP_POOL_EXTERNAL && pool != KVP_POOL_AUTO_EXTERNAL) {
        throw BadUse(std::string("the host adds, changes and removes items only in pool 0 "
                                 "(external) and pool 3 (parameter), not in ") +
                     kPoolNames[pool] + " (--any-pool allows it, for experiments)");
    }
    return pool;
}

Utf16 host_text(const std::string& what, const std::string& text, std::size_t max_units) {
    std::string why;
    auto units = command_line_to_utf16(text, &why);
    if (!units) {
        throw BadUse("the " + what + " holds " + why +
                     " (kvp-host's own rule: the driver would drop such a surrogate silently)");
    }
    if (units->size() > max_units) {
        throw BadUse("the " + what + " is " + std::to_string(units->size()) +
                     " UTF-16 units; the host's message holds at most " +
                     std::to_string(max_units));
    }
    return *units;
}

Utf16 host_key(const std::string& key) {
    if (key.empty()) {
        throw BadUse("an empty key: a host item always has a name");
    }
    return host_text("key", key, kHostKeyUnits);
}

struct Reply {
    std::uint32_t status = 0;
    KvpMessage message;
    std::string note;
};

class Host {
  public:
    explicit Host(const VerbContext& c) : c_(c), server_(connect_server(c.socket_path)) {}

    Reply send(const KvpMessage& request) {
        nlohmann::json req{{"verb", "transact"}, {"message", to_hex(request.bytes())}};
        if (c_.timeout_s > 0) {
            req["timeout_ms"] = static_cast<long long>(std::llround(c_.timeout_s * 1000));
        }
        const nlohmann::json answer = call(server_, req);
        if (answer.contains("error")) {
            if (answer.value("refused", false)) {
                throw BadUse(answer["error"].get<std::string>());
            }
            throw std::runtime_error(answer["error"].get<std::string>());
        }
        auto bytes = from_hex(answer.at("message").get<std::string>());
        if (!bytes) {
            throw std::runtime_error("the server's answer holds no message");
        }
        return {answer.at("status").get<std::uint32_t>(), KvpMessage(std::move(*bytes)),
                answer.value("note", std::string())};
    }

    nlohmann::json ask(const nlohmann::json& request) { return call(server_, request); }

  private:
    const VerbContext& c_;
    LineSocket server_;
};

std::string failure(const Reply& r) {
    std::string text = status_name(r.status);
    if (!r.note.empty()) {
        text += ": " + r.note;
    }
    return text;
}

// Runs a verb body, turning refusals and failures into messages and exit codes.
template <typename Body>
int guarded(const VerbContext& c, const std::string& what, Body body) {
    try {
        return body();
    } catch (const BadUse& e) {
        c.err << "kvp-host: " << what << ": " << e.what() << "\n";
        return kBadUse;
    } catch (const std::exception& e) {
        c.err << "kvp-host: " << what << ": " << e.what() << "\n";
        return kBadUse;
    }
}

struct Item {
    std::uint32_t index = 0;
    Utf16 key;
    Utf16 value;
};

nlohmann::json item_json(const Item& item) {
    return {{"index", item.index},
            {"key", utf16_to_utf8(item.key)},
            {"value", utf16_to_utf8(item.value)},
            {"key_units", item.key.size()},
            {"value_units", item.value.size()}};
}

// Enumerates as the host does: index after index until the guest answers an error.
// Returns the items and the status that ended the walk (HV_S_CONT is the normal end).
std::vector<Item> enumerate(Host& host, std::uint8_t pool, Reply* end) {
    std::vector<Item> items;
    for (std::uint32_t index = 0; index < kMaxEnumeration; ++index) {
        Reply r = host.send(host_enumerate(pool, index));
        if (r.status != HV_S_OK) {
            *end = std::move(r);
            end->note = end->note.empty() ? "at index " + std::to_string(index)
                                          : end->note + " (at index " + std::to_string(index) + ")";
            return items;
        }
        items.push_back({index, r.message.utf16(offset::kEnumKey, kKeyField),
                         r.message.utf16(offset::kEnumValue, kValueField)});
    }
    end->status = HV_S_CONT;
    return items;
}

}  // namespace

int verb_set(const VerbContext& c, const std::string& verb, const std::string& pool_text,
             const std::string& key, const std::string& value) {
    return guarded(c, verb, [&] {
        const std::uint8_t pool = parse_writable_pool(pool_text, c.any_pool);
        const Utf16 k = host_key(key);
        const Utf16 v = host_text("value", value, kHostValueUnits);
        Host host(c);
        const Reply r = host.send(host_set(pool, k, v));
        if (c.json) {
            c.out << dump_json({{"verb", verb},
                                {"pool", kPoolNames[pool]},
                                {"key", key},
                                {"status", status_name(r.status)},
                                {"note", r.note}})
                  << "\n";
        }
        if (r.status != HV_S_OK) {
            c.err << "kvp-host: " << verb << " " << kPoolNames[pool] << " " << kvp::printable(key)
                  << ": " << failure(r) << "\n";
            return kFailed;
        }
        return kDone;
    });
}

int verb_remove(const VerbContext& c, const std::string& pool_text, const std::string& key) {
    return guarded(c, "remove", [&] {
        const std::uint8_t pool = parse_writable_pool(pool_text, c.any_pool);
        const Utf16 k = host_key(key);
        Host host(c);
        const Reply r = host.send(host_delete(pool, k));
        if (c.json) {
            c.out << dump_json({{"verb", "remove"},
                                {"pool", kPoolNames[pool]},
                                {"key", key},
                                {"status", status_name(r.status)},
                                {"note", r.note}})
                  << "\n";
        }
        if (r.status == HV_S_CONT) {
            c.err << "kvp-host: remove " << kPoolNames[pool] << " " << kvp::printable(key)
                  << ": no such item (HV_S_CONT)\n";
            return kFailed;
        }
        if (r.status != HV_S_OK) {
            c.err << "kvp-host: remove " << kPoolNames[pool] << " " << kvp::printable(key) << ": "
                  << failure(r) << "\n";
            return kFailed;
        }
        return kDone;
    });
}

int verb_get(const VerbContext& c, const std::string& pool_text, const std::string& key,
             bool single) {
    return guarded(c, "get", [&] {
        const std::uint8_t pool = parse_pool(pool_text);
        const Utf16 k = host_key(key);
        Host host(c);
        if (single) {
            // One KVP_OP_GET: it says whether the key exists; the value comes back empty.
            const Reply r = host.send(host_get(pool, k));
            const Utf16 value = r.message.utf16(offset::kSetValue, kValueField);
            if (c.json) {
                c.out << dump_json({{"pool", kPoolNames[pool]},
                                    {"key", key},
                                    {"status", status_name(r.status)},
                                    {"value", utf16_to_utf8(value)},
                                    {"note", r.note}})
                      << "\n";
            } else if (r.status == HV_S_OK) {
                c.out << utf16_to_utf8(value) << "\n";
            }
            if (r.status != HV_S_OK) {
                c.err << "kvp-host: get " << kPoolNames[pool] << " " << kvp::printable(key) << ": "
                      << (r.status == HV_S_CONT ? "no such item (HV_S_CONT)" : failure(r)) << "\n";
                return kFailed;
            }
            return kDone;
        }
        Reply end;
        const std::vector<Item> items = enumerate(host, pool, &end);
        if (end.status != HV_S_CONT) {
            c.err << "kvp-host: get " << kPoolNames[pool]
                  << ": the enumeration failed: " << failure(end) << "\n";
            return kFailed;
        }
        for (const Item& item : items) {
            if (item.key == k) {
                if (c.json) {
                    nlohmann::json j = item_json(item);
                    j["pool"] = kPoolNames[pool];
                    c.out << dump_json(j) << "\n";
                } else {
                    c.out << utf16_to_utf8(item.value) << "\n";
                }
                return kDone;
            }
        }
        c.err << "kvp-host: get " << kPoolNames[pool] << " " << kvp::printable(key)
              << ": no such item in the host's enumeration\n";
        return kFailed;
    });
}

int verb_list(const VerbContext& c, const std::string& pool_text) {
    return guarded(c, "list", [&] {
        const std::uint8_t pool = parse_pool(pool_text);
        Host host(c);
        Reply end;
        const std::vector<Item> items = enumerate(host, pool, &end);
        const bool complete = end.status == HV_S_CONT;
        if (c.json) {
            nlohmann::json list = nlohmann::json::array();
            for (const Item& item : items) {
                list.push_back(item_json(item));
            }
            c.out << dump_json({{"pool", kPoolNames[pool]},
                                {"pool_number", pool},
                                {"items", list},
                                {"end", status_name(end.status)},
                                {"complete", complete},
                                {"note", end.note}})
                  << "\n";
        } else {
            for (const Item& item : items) {
                c.out << kvp::printable(utf16_to_utf8(item.key)) << "\t"
                      << kvp::printable(utf16_to_utf8(item.value)) << "\n";
            }
        }
        if (!complete) {
            c.err << "kvp-host: list " << kPoolNames[pool] << ": the enumeration ended with "
                  << failure(end) << "\n";
            return kFailed;
        }
        return kDone;
    });
}

int verb_status(const VerbContext& c, double wait_s) {
    return guarded(c, "status", [&] {
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::milliseconds(std::llround(wait_s * 1000));
        for (;;) {
            nlohmann::json s;
            try {
                Host host(c);
                s = host.ask({{"verb", "status"}});
            } catch (const std::exception&) {
                if (std::chrono::steady_clock::now() >= deadline) {
                    throw;
                }
            }
            const bool ready =
                s.is_object() && s.value("registered", false) && !s.value("pending", true);
            if (s.is_object() && (ready || std::chrono::steady_clock::now() >= deadline)) {
                if (c.json) {
                    c.out << dump_json(s) << "\n";
                } else {
                    c.out << "daemon:     "
                          << (s.value("daemon_running", false)
                                  ? "running, pid " + std::to_string(s.value("daemon_pid", 0))
                                  : "not running" +
                                        (s.value("daemon_last_exit", std::string()).empty()
                                             ? std::string()
                                             : " (" + s.value("daemon_last_exit", std::string()) +
                                                   ")"))
                          << "\n"
                          << "registered: " << (s.value("registered", false) ? "yes" : "no") << "\n"
                          << "pool dir:   " << s.value("pool_dir", std::string()) << "\n"
                          << "daemon log: " << s.value("log", std::string()) << "\n";
                }
                if (!ready && wait_s > 0) {
                    c.err << "kvp-host: status: no registered daemon within " << wait_s << " s\n";
                }
                return ready ? kDone : kFailed;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    });
}

int verb_daemon(const VerbContext& c, const std::string& action) {
    return guarded(c, "daemon " + action, [&] {
        if (action != "start" && action != "stop") {
            throw BadUse("unknown action '" + action + "' (start or stop)");
        }
        Host host(c);
        const nlohmann::json answer = host.ask({{"verb", "daemon"}, {"action", action}});
        if (answer.contains("error")) {
            c.err << "kvp-host: daemon " << action << ": " << answer["error"].get<std::string>()
                  << "\n";
            return kFailed;
        }
        return kDone;
    });
}

}  // namespace hostsim
