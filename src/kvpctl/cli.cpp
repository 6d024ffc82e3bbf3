// The kvpctl command line (CLI11): global options, one subcommand per command, the exit
// codes. main.cpp only calls run().
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "error.hpp"
#include "kvpfs_version.hpp"
#include "log.hpp"

namespace kvpctl {

namespace {

constexpr const char* kPoolHelp =
    "a pool: external, guest, auto, parameter, internal, or its number 0-4 (4: internal, the "
    "daemon's own pool)";

const CLI::Validator kPoolValidator(
    [](std::string& text) -> std::string {
        if (kvp::parse_pool(text)) {
            return {};
        }
        return "unknown pool '" + text +
               "' (use external, guest, auto, parameter, internal or 0-4)";
    },
    "", "pool");

// --timeout: a finite number of seconds, 0 up to about 31 years (no wait lasts longer).
constexpr double kMaxTimeoutSeconds = 1e9;
const CLI::Validator kTimeoutValidator(
    [](std::string& text) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double seconds = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || errno != 0 ||
            !std::isfinite(seconds) || seconds < 0 || seconds > kMaxTimeoutSeconds) {
            return "bad timeout '" + text + "' (seconds from 0 to 1e9, e.g. 30 or 0.5)";
        }
        return {};
    },
    "", "timeout");

kvp::PoolId to_pool(const std::string& text) {
    return *kvp::parse_pool(text);
}

std::optional<kvp::PoolId> to_optional_pool(const std::string& text) {
    if (text.empty()) {
        return std::nullopt;
    }
    return to_pool(text);
}

// Edit distance of two short words (a typed command and a real one).
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) {
        row[j] = j;
    }
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] =
                std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

// The error for a first word that is not a command (`kvpctl sett guest a b`), naming the
// nearest command; nullopt when the command line starts with a command (or none: CLI11 says
// what is missing). Global options and their values may come first.
std::optional<std::string> unknown_command(const CLI::App& app, int argc, const char* const* argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--") {
            return std::nullopt;
        }
        if (arg.starts_with("-")) {
            // The global options that take a separate value.
            if (arg == "--pool-dir" || arg == "--lock-timeout" || arg == "--limits") {
                ++i;
            }
            continue;
        }
        std::string nearest;
        std::size_t best = 3;  // suggest only within two edits
        for (const CLI::App* command : app.get_subcommands({})) {
            const std::string& name = command->get_name();
            if (name == arg) {
                return std::nullopt;
            }
            if (const std::size_t d = edit_distance(arg, name); d < best) {
                best = d;
                nearest = name;
            }
        }
        std::string message = "unknown command \"" + std::string(arg) + "\"";
        if (!nearest.empty()) {
            message += " (did you mean \"" + nearest + "\"?)";
        }
        return message;
    }
    return std::nullopt;
}

}  // namespace

int run(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
    CLI::App app{
        "kvpctl: read, change, check and watch Hyper-V KVP pool files directly,\n"
        "under the same locks as kvpfs, hv_kvp_daemon and cloud-init.",
        "kvpctl"};
    app.set_version_flag("-V,--version", std::string("kvpctl ") + KVPFS_VERSION,
                         "Print the version and exit");
    app.require_subcommand(1);
    app.fallthrough();
    app.footer(
        "POOL is external, guest, auto, parameter, internal, or a number 0-4.\n"
        "Exit status: 0 done; 1 key absent (get, delete), problems found (check) or\n"
        "timed out (wait);\n"
        "2 bad use, or the command could not be done (the reason is on stderr).\n"
        "Run 'kvpctl COMMAND --help' for a command's arguments.");

    std::string pool_dir = kDefaultPoolDir;
    app.add_option("--pool-dir", pool_dir,
                   "The directory of the pool files (default /var/lib/hyperv, or $KVP_POOL_DIR)")
        ->envname("KVP_POOL_DIR")
        ->type_name("DIR");
    double lock_timeout_s = 10;
    app.add_option("--lock-timeout", lock_timeout_s,
                   "Seconds to wait for a pool file's lock before failing, e.g. 10 or 0.5 "
                   "(default 10)")
        ->check(CLI::Range(0.0, 86400.0))
        ->type_name("SECONDS");

    std::function<int(const Context&)> action;
    std::string pool_arg;
    std::string key;
    std::string value;
    std::string limits = "host";
    std::string value_file;
    bool raw = false;
    std::string dir;
    bool json = false;
    bool sample = false;
    bool intrinsic = false;
    constexpr const char* kIntrinsicHelp =
        "auto only: pool 2 as the host sees it, the file's records and then the intrinsic "
        "items hv_kvp_daemon computes (FullyQualifiedDomainName, NetworkAddressIPv4, OSName, "
        "...) that the file does not hold";

    auto* list = app.add_subcommand("list", "Print the keys of a pool, one per line");
    list->add_option("POOL", pool_arg, kPoolHelp)->required()->check(kPoolValidator)->type_name("");
    list->add_flag("--intrinsic", intrinsic, kIntrinsicHelp);
    list->callback([&] {
        action = [&](const Context& c) { return cmd_list(c, to_pool(pool_arg), intrinsic); };
    });

    auto* get = app.add_subcommand("get", "Print a key's value and a newline (exit 1 if absent)");
    get->add_option("POOL", pool_arg, kPoolHelp)->required()->check(kPoolValidator)->type_name("");
    get->add_option("KEY", key, "The key")->required();
    get->add_flag("--intrinsic", intrinsic, kIntrinsicHelp);
    get->callback([&] {
        action = [&](const Context& c) { return cmd_get(c, to_pool(pool_arg), key, intrinsic); };
    });

    auto* set = app.add_subcommand(
        "set", "Create or replace a key in any pool (creates the pool file if missing)");
    set->add_option("POOL", pool_arg, kPoolHelp)->required()->check(kPoolValidator)->type_name("");
    set->add_option("KEY", key, "The key")->required();
    auto* value_opt =
        set->add_option("VALUE", value, "The value, as given; '-' reads it from stdin (see --raw)");
    auto* file_opt = set->add_option("--file", value_file, "Read the value from FILE (see --raw)")
                         ->type_name("FILE");
    value_opt->excludes(file_opt);
    set->add_flag("--raw", raw,
                  "With '-' or --file: store the bytes as read. Without it, exactly one "
                  "trailing newline is dropped, as a write through the mount does");
    set->add_option("--limits", limits,
                    "Which limits the key and value must keep: host (what the host receives "
                    "intact: UTF-8, 254/1022 UTF-16 units; the default, as for the mount) or "
                    "pool (the file format's 511/2047 bytes)")
        ->check(CLI::IsMember({"pool", "host"}));
    set->callback([&] {
        if (value_opt->count() == 0 && file_opt->count() == 0) {
            throw CLI::RequiredError("VALUE or --file");
        }
        action = [&](const Context& c) {
            const kvp::Limits l = limits == "host" ? kvp::Limits::host : kvp::Limits::pool;
            if (file_opt->count() != 0) {
                return cmd_set(c, to_pool(pool_arg), key, read_value(value_file, raw), l);
            }
            if (value == "-") {
                return cmd_set(c, to_pool(pool_arg), key, read_value("-", raw), l);
            }
            return cmd_set(c, to_pool(pool_arg), key, value, l);
        };
    });

    auto* del = app.add_subcommand("delete", "Remove every record of a key (exit 1 if absent)");
    del->add_option("POOL", pool_arg, kPoolHelp)->required()->check(kPoolValidator)->type_name("");
    del->add_option("KEY", key, "The key")->required();
    del->callback(
        [&] { action = [&](const Context& c) { return cmd_delete(c, to_pool(pool_arg), key); }; });

    auto* dump = app.add_subcommand(
        "dump",
        "Print every record as it is in the file, in file order: empty keys, duplicates, "
        "unterminated fields and a partial tail included (all pools if none is named)");
    dump->add_option("POOL", pool_arg, kPoolHelp)->check(kPoolValidator)->type_name("");
    dump->add_flag("--json", json,
                   "A JSON array of objects: pool, index, offset, key, value, partial, ...");
    dump->callback([&] {
        action = [&](const Context& c) { return cmd_dump(c, to_optional_pool(pool_arg), json); };
    });

    auto* check = app.add_subcommand(
        "check",
        "Name every problem with its record index: duplicates, partial tail, fields without "
        "a NUL, bad UTF-8 (exit 1 if any; all pools if none is named)");
    check->add_option("POOL", pool_arg, kPoolHelp)->check(kPoolValidator)->type_name("");
    check->callback([&] {
        action = [&](const Context& c) { return cmd_check(c, to_optional_pool(pool_arg)); };
    });

    auto* compact = app.add_subcommand(
        "compact",
        "Drop duplicate records (keeping the first) and a partial tail; say what changed");
    compact->add_option("POOL", pool_arg, kPoolHelp)
        ->required()
        ->check(kPoolValidator)
        ->type_name("");
    compact->callback(
        [&] { action = [&](const Context& c) { return cmd_compact(c, to_pool(pool_arg)); }; });

    auto* init = app.add_subcommand(
        "init", "Create DIR and its five pool files (mode 0644), keeping existing ones");
    init->add_option("DIR", dir, "The pool directory to create")->required();
    init->add_flag("--sample", sample,
                   "Fill parameter (pool 3) with an Azure host's keys (auto, pool 2, stays "
                   "empty as on a real VM: see list/get --intrinsic)");
    init->callback([&] { action = [&](const Context& c) { return cmd_init(c, dir, sample); }; });

    auto* watch = app.add_subcommand(
        "watch",
        "Print one line per key added, changed or removed, as it happens, until SIGINT or "
        "SIGTERM (all pools if none is named)");
    watch->add_option("POOL", pool_arg, kPoolHelp)->check(kPoolValidator)->type_name("");
    watch->callback([&] {
        action = [&](const Context& c) { return cmd_watch(c, to_optional_pool(pool_arg)); };
    });

    auto* wait = app.add_subcommand(
        "wait",
        "Wait until a key exists (or has a value, or changes), then print its value and a "
        "newline; woken by inotify, it sees every writer (exit 1 on timeout; SIGINT or "
        "SIGTERM end it with 128 + the signal)");
    wait->add_option("POOL", pool_arg, kPoolHelp)->required()->check(kPoolValidator)->type_name("");
    wait->add_option("KEY", key, "The key")->required();
    WaitOptions wait_options;
    auto* wait_value =
        wait->add_option("--value", wait_options.value, "Wait until the key has exactly this value")
            ->type_name("V");
    bool wait_changed_flag = false;
    auto* wait_changed = wait->add_flag(
        "--changed", wait_changed_flag,
        "Wait until the value differs from the one the key had when the wait began (absent "
        "counts as a value: a key that appears or is removed has changed; a removal prints "
        "nothing)");
    wait_value->excludes(wait_changed);
    double wait_timeout_s = 0;
    auto* wait_timeout =
        wait->add_option("--timeout", wait_timeout_s,
                         "Give up after SECONDS (fractions allowed; 0 looks once) with exit 1 "
                         "and a message; without it, wait for ever")
            ->check(kTimeoutValidator)
            ->type_name("SECONDS");
    wait->add_flag("--verbose", wait_options.verbose,
                   "Say on stderr what is waited for, once the wait is armed (a change from "
                   "then on is seen)");
    wait->callback([&] {
        if (wait_value->count() != 0) {
            wait_options.what = WaitFor::value;
        } else if (wait_changed->count() != 0) {
            wait_options.what = WaitFor::change;
        }
        if (wait_timeout->count() != 0) {
            wait_options.timeout = std::chrono::milliseconds(
                static_cast<long long>(std::ceil(wait_timeout_s * 1000.0)));
        }
        action = [&](const Context& c) {
            return cmd_wait(c, to_pool(pool_arg), key, wait_options);
        };
    });

    // --limits before the command too (`kvpctl --limits pool set ...`): it only applies to set.
    app.add_option("--limits", limits, "As set's --limits")
        ->check(CLI::IsMember({"pool", "host"}))
        ->group("");

    if (const auto unknown = unknown_command(app, argc, argv)) {
        err << "kvpctl: " << *unknown << "\nRun 'kvpctl --help' for the commands.\n";
        return kExitBadUse;
    }
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version are "errors" with exit code 0; everything else is bad use,
        // said with kvpctl's prefix like every other error.
        if (e.get_exit_code() == 0) {
            app.exit(e, out, err);
            return kExitOk;
        }
        err << "kvpctl: " << e.what() << "\nRun 'kvpctl --help' or 'kvpctl COMMAND --help'.\n";
        return kExitBadUse;
    }

    Context ctx;
    ctx.pool_dir = pool_dir;
    ctx.lock_timeout =
        std::chrono::milliseconds(static_cast<long long>(std::llround(lock_timeout_s * 1000.0)));
    ctx.out = &out;
    ctx.err = &err;
    kvp::set_log_sink([&err](kvp::LogLevel level, const std::string& message) {
        if (level == kvp::LogLevel::debug) {
            return;
        }
        err << "kvpctl: " << (level == kvp::LogLevel::error ? "error: " : "")
            << (level == kvp::LogLevel::warning ? "warning: " : "") << message << '\n';
    });
    try {
        const int code = action(ctx);
        // What a command prints is its answer (`wait ... > /run/config.json || exit 1`): when
        // it cannot be written (a full disk, a closed pipe), the command failed.
        errno = 0;
        out.flush();
        if (!out) {
            const int saved = errno;
            err << "kvpctl: cannot write to standard output"
                << (saved != 0 ? std::string(": ") + std::strerror(saved) : std::string()) << '\n';
            return kExitBadUse;
        }
        return code;
    } catch (const kvp::Error& e) {
        out.flush();
        err << "kvpctl: " << e.what() << '\n';
    } catch (const std::exception& e) {
        out.flush();
        err << "kvpctl: " << e.what() << '\n';
    }
    return kExitBadUse;
}

}  // namespace kvpctl
