// kvpctl wait POOL KEY [--value V | --changed] [--timeout SECONDS] [--verbose]: returns as
// soon as the key exists (has the value V; or differs from its value when the wait began,
// absent counting as a value) and prints the value and a newline.
//
// How it wakes: the engine's ChangeWatch, armed before the first read, sleeps in poll() on
// its inotify descriptor (the pool directory, and every directory above it, so a directory
// removed or renamed and made again is followed by its path) and on the mount table, beside
// a signalfd for SIGINT and SIGTERM. After each wakeup maybe_changed() says whether the pool
// file may have changed; only then is it read again, under its shared lock, by a fresh
// PoolFile (its first look always reads the file). Where inotify can be silent (a store
// through a shared mapping, network and overlay file systems, a pool directory made again
// while there was none to watch) the file's identity, size, mtime and ctime are compared with
// the last read's once a second: one stat(). Idle, the wait costs one wakeup a second.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "change_watch.hpp"
#include "commands.hpp"
#include "error.hpp"
#include "limits.hpp"
#include "pool_file.hpp"
#include "signal_fd.hpp"

namespace kvpctl {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How often the file's metadata is compared with the last read's when no event came.
constexpr auto kMetadataLook = std::chrono::seconds(1);

// The key at one look: its value, or absent.
using State = std::optional<std::string>;

bool satisfied(const WaitOptions& options, const State& now, const State& start) {
    switch (options.what) {
        case WaitFor::exists:
            return now.has_value();
        case WaitFor::value:
            return now && *now == options.value;
        case WaitFor::change:
            return now != start;
    }
    return false;
}

std::string goal(const WaitOptions& options) {
    switch (options.what) {
        case WaitFor::exists:
            return "to exist";
        case WaitFor::value:
            return "to be " + escape(options.value, true);
        case WaitFor::change:
            return "to change";
    }
    return {};
}

std::string state_text(const State& state) {
    return state ? escape(*state, true) : std::string("absent");
}

std::string seconds_text(milliseconds ms) {
    std::ostringstream text;
    text << static_cast<double>(ms.count()) / 1000.0 << " s";
    return text.str();
}

// Refuses, as bad use, what no pool can ever hold: the wait could only time out.
void require_possible(const std::string& key, const WaitOptions& options) {
    const kvp::Violation k = kvp::check_key(key, kvp::Limits::pool);
    if (k != kvp::Violation::none) {
        throw kvp::Error(kvp::key_errno(k), "key " + escape(key, true) + ": " + kvp::describe(k) +
                                                "; no pool can hold it");
    }
    if (options.what == WaitFor::value) {
        const kvp::Violation v = kvp::check_value(options.value, kvp::Limits::pool);
        if (v != kvp::Violation::none) {
            throw kvp::Error(kvp::value_errno(v), "--value " + escape(options.value, true) + ": " +
                                                      kvp::describe(v) + "; no pool can hold it");
        }
    }
}

// The pool directory may be missing (not made yet at boot, or being replaced): that is
// waited for. Anything else in its place is bad use.
void check_pool_directory(const Context& ctx) {
    struct stat st {};
    if (::stat(ctx.pool_dir.c_str(), &st) != 0) {
        if (errno != ENOENT) {
            kvp::throw_errno("pool directory " + ctx.pool_dir.string());
        }
        *ctx.err << "kvpctl: the pool directory " << ctx.pool_dir.string()
                 << " does not exist (yet); waiting for it" << std::endl;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        kvp::throw_error(ENOTDIR, "pool directory " + ctx.pool_dir.string());
    }
}

}  // namespace

int cmd_wait(const Context& ctx, kvp::PoolId pool, const std::string& key,
             const WaitOptions& options) {
    require_possible(key, options);
    check_pool_directory(ctx);
    const auto started = Clock::now();
    std::optional<Clock::time_point> deadline;
    if (options.timeout) {
        deadline = started + *options.timeout;
    }
    const std::string what =
        std::string(kvp::pool_name(pool)) + " key " + escape(key, true) + " " + goal(options);

    SignalFd signals;
    const boost::filesystem::path path = ctx.pool_dir / kvp::pool_file_name(pool);
    // Armed before the first read: whatever changes after it is reported.
    kvp::ChangeWatch watch(path.parent_path().string(), path.filename().string());

    // Reads the key under the shared lock, waiting for the lock no longer than the wait may
    // last. The stat is taken before the read: a change after it makes the next look differ.
    bool lock_missed_deadline = false;
    const auto look = [&]() -> State {
        watch.begin_load();
        struct stat st {};
        const bool present = ::stat(path.c_str(), &st) == 0;
        milliseconds lock_wait = ctx.lock_timeout;
        if (deadline) {
            lock_wait = std::clamp(std::chrono::ceil<milliseconds>(*deadline - Clock::now()),
                                   milliseconds(0), lock_wait);
        }
        try {
            kvp::PoolFile file(path, kvp::PoolOptions{lock_wait, false});
            State state = file.get(key);
            watch.mark_loaded(present ? &st : nullptr);
            return state;
        } catch (const kvp::Error& e) {
            if (e.errno_value() == EAGAIN && deadline && Clock::now() >= *deadline) {
                lock_missed_deadline = true;
                watch.invalidate();
                return std::nullopt;
            }
            throw;
        }
    };

    const State start = look();
    State now = start;
    if (options.verbose && !lock_missed_deadline) {
        *ctx.err << "kvpctl: waiting for " << what << " (now " << state_text(now) << ")"
                 << std::endl;
    }
    auto next_metadata_look = Clock::now() + kMetadataLook;
    for (;;) {
        if (!lock_missed_deadline && satisfied(options, now, start)) {
            if (now) {
                *ctx.out << *now << '\n';
            } else {
                *ctx.err << "kvpctl: " << kvp::pool_name(pool) << ": key " << escape(key, true)
                         << " was removed" << std::endl;
            }
            return kExitOk;
        }
        const auto t = Clock::now();
        if (deadline && t >= *deadline) {
            *ctx.err << "kvpctl: timed out after " << seconds_text(*options.timeout)
                     << " waiting for " << what;
            if (lock_missed_deadline) {
                *ctx.err << " (the pool file's lock is held: " << path.string() << ")";
            } else {
                *ctx.err << " (" << (options.what == WaitFor::value ? "it is " : "still ")
                         << state_text(now) << ")";
            }
            *ctx.err << std::endl;
            return kExitNegative;
        }
        const auto until = deadline ? std::min(next_metadata_look, *deadline) : next_metadata_look;
        if (watch.wait(std::chrono::ceil<milliseconds>(until - t), signals.get())) {
            if (const int sig = signals.take(); sig != 0) {
                *ctx.err << "kvpctl: wait ended by " << ::strsignal(sig) << std::endl;
                return 128 + sig;
            }
        }
        bool again = watch.maybe_changed();
        if (Clock::now() >= next_metadata_look) {
            again = watch.metadata_differs() || again;
            next_metadata_look = Clock::now() + kMetadataLook;
        }
        if (again) {
            now = look();
        }
    }
}

}  // namespace kvpctl
