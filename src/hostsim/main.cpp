// kvp-host: a Hyper-V host for a guest without Hyper-V. `serve` emulates the KVP driver's
// device and runs the real hv_kvp_daemon on it; the other verbs are the host's requests.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "host_verbs.hpp"
#include "kvpfs_version.hpp"
#include "server.hpp"
#include "wire.hpp"

namespace {

constexpr const char* kPoolHelp = "external (0), guest (1), auto (2), parameter (3), internal (4)";

int run(int argc, char** argv);

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "kvp-host: " << e.what() << "\n";
    } catch (...) {
        std::cerr << "kvp-host: unexpected failure\n";
    }
    return 2;
}

namespace {

int run(int argc, char** argv) {
    CLI::App app{
        "kvp-host: act as the Hyper-V host of this guest's KVP pools.\n"
        "'kvp-host serve' runs the real hv_kvp_daemon on a simulated KVP device; the other\n"
        "commands send the host's requests to it, as a Hyper-V host would.",
        "kvp-host"};
    app.set_version_flag("-V,--version", std::string("kvp-host ") + KVPFS_VERSION);
    app.require_subcommand(1);
    app.fallthrough();
    app.footer(
        "POOL is a name or a number: " + std::string(kPoolHelp) +
        ".\n"
        "The host adds, modifies and removes items in external and parameter; it reads guest\n"
        "and auto by enumerating them. Every command needs root.\n"
        "Exit status: 0 done; 1 the host's request failed (no such item, HV_E_FAIL, the\n"
        "driver's timeout, no daemon registered); 2 bad use or no server (nothing was sent).");

    std::string socket_path = hostsim::default_socket_path();
    app.add_option(
           "--socket", socket_path,
           "The server's control socket (default $KVP_HOST_SOCKET, else /run/kvp-host/socket)")
        ->type_name("PATH");
    bool json = false;
    app.add_flag("--json", json, "Print JSON (exact strings) instead of plain lines");
    double timeout_s = 0;
    app.add_option("--timeout", timeout_s,
                   "Seconds the driver waits for the daemon's answer (default: the server's, 30 as "
                   "in Linux 6.1)")
        // The driver's wait is in whole milliseconds here; 0 would silently mean the
        // server's default.
        ->check(CLI::Range(0.001, 3600.0))
        ->type_name("SECONDS");

    bool any_pool = false;
    app.add_flag("--any-pool", any_pool,
                 "Let add, modify and remove reach guest, auto and internal too, which a Hyper-V "
                 "host never changes (for experiments)");

    hostsim::ServeOptions serve;
    auto* serve_cmd =
        app.add_subcommand("serve", "Run the simulated device and hv_kvp_daemon (foreground)");
    serve_cmd
        ->add_option("--pool-dir", serve.pool_dir,
                     "The pool files under test: the daemon's /var/lib/hyperv")
        ->required()
        ->type_name("DIR");
    serve_cmd
        ->add_option("--state-dir", serve.state_dir,
                     "Where the device is mounted and the sockets live (default /run/kvp-host)")
        ->type_name("DIR");
    serve_cmd
        ->add_option("--daemon", serve.daemon_program,
                     "The hv_kvp_daemon to run (default /usr/sbin/hv_kvp_daemon)")
        ->type_name("PATH");
    serve_cmd
        ->add_option(
            "--log", serve.log_file,
            "The daemon's syslog lines and the device's events (default STATE_DIR/daemon.log)")
        ->type_name("FILE");
    serve_cmd->add_flag(
        "--no-daemon", [&](std::int64_t) { serve.start_daemon = false; },
        "Do not start the daemon (start it with 'kvp-host daemon start')");

    std::string pool;
    std::string key;
    std::string value;
    std::string verb;
    auto add_set = [&](const char* name, const char* help) {
        auto* cmd = app.add_subcommand(name, help);
        cmd->add_option("POOL", pool, kPoolHelp)->required();
        cmd->add_option("KEY", key, "The item's name")->required();
        cmd->add_option("VALUE", value, "The item's data")->required();
        return cmd;
    };
    auto* add_cmd = add_set("add", "Add an item to external or parameter (KVP_OP_SET)");
    auto* modify_cmd = add_set("modify", "Change an item of external or parameter (KVP_OP_SET)");
    auto* remove_cmd =
        app.add_subcommand("remove", "Remove an item from external or parameter (KVP_OP_DELETE)");
    remove_cmd->add_option("POOL", pool, kPoolHelp)->required();
    remove_cmd->add_option("KEY", key, "The item's name")->required();
    auto* get_cmd =
        app.add_subcommand("get", "Print an item's data, found by enumerating the pool");
    get_cmd->add_option("POOL", pool, kPoolHelp)->required();
    get_cmd->add_option("KEY", key, "The item's name")->required();
    bool single = false;
    get_cmd->add_flag(
        "--single", single,
        "Send one KVP_OP_GET instead: it tells whether the item exists, but its value "
        "comes back empty (a quirk of the driver and daemon)");
    auto* list_cmd =
        app.add_subcommand("list", "Enumerate a pool as the host reads it (KEY<TAB>VALUE lines)");
    list_cmd->add_option("POOL", pool, kPoolHelp)->required();
    auto* status_cmd =
        app.add_subcommand("status", "Say whether a daemon is running and registered");
    double wait_s = 0;
    status_cmd
        ->add_option("--wait", wait_s,
                     "Wait up to SECONDS for a registered daemon (exit 1 if none)")
        ->type_name("SECONDS");
    auto* daemon_cmd = app.add_subcommand("daemon", "Start or stop the server's hv_kvp_daemon");
    std::string action;
    daemon_cmd->add_option("ACTION", action, "start or stop")->required();

    // CLI11 would only say "a subcommand is required" for a misspelt verb: name it.
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--socket" || arg == "--timeout") {
            ++i;
            continue;
        }
        if (arg.empty() || arg[0] == '-') {
            continue;
        }
        const std::vector<std::string> verbs{"serve", "add",  "modify", "remove",
                                             "get",   "list", "status", "daemon"};
        if (std::find(verbs.begin(), verbs.end(), arg) == verbs.end()) {
            std::cerr << "kvp-host: unknown command '" << arg
                      << "' (serve, add, modify, remove, get, list, status, daemon; see --help)\n";
            return 2;
        }
        break;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }

    const hostsim::VerbContext c{socket_path, json, timeout_s, any_pool, std::cout, std::cerr};
    if (serve_cmd->parsed()) {
        if (timeout_s > 0) {
            serve.timeout = std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000));
        }
        if (!app.get_option("--socket")->empty()) {
            serve.socket_path = socket_path;
        }
        return hostsim::serve(serve);
    }
    if (add_cmd->parsed()) {
        return hostsim::verb_set(c, "add", pool, key, value);
    }
    if (modify_cmd->parsed()) {
        return hostsim::verb_set(c, "modify", pool, key, value);
    }
    if (remove_cmd->parsed()) {
        return hostsim::verb_remove(c, pool, key);
    }
    if (get_cmd->parsed()) {
        return hostsim::verb_get(c, pool, key, single);
    }
    if (list_cmd->parsed()) {
        return hostsim::verb_list(c, pool);
    }
    if (status_cmd->parsed()) {
        return hostsim::verb_status(c, wait_s);
    }
    return hostsim::verb_daemon(c, action);
}

}  // namespace
