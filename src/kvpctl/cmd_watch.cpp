// kvpctl watch [POOL]: one line per key that is added, changed or removed, as it happens:
//   guest added Status=Ready
//   guest changed Status=Done
//   guest removed Status
// inotify on the pool directory says which pool file was written; the pool is then re-read
// through the engine (under its shared lock, so a writer's change is seen whole) and
// diffed against the last picture. Each line is flushed at once, also into a pipe.
// SIGINT and SIGTERM end it cleanly (exit 0).
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <unordered_map>

#include "commands.hpp"
#include "error.hpp"
#include "signal_fd.hpp"
#include "unique_fd.hpp"

namespace kvpctl {

namespace {

// The keys of a pool in listing order, with the value of each key's first record.
struct Picture {
    std::vector<std::string> order;
    std::unordered_map<std::string, std::string> values;
};

Picture take_picture(kvp::PoolFile& file) {
    Picture picture;
    const auto snapshot = file.snapshot();
    for (const std::size_t i : snapshot->listing()) {
        const auto& rec = snapshot->records()[i].record;
        picture.order.push_back(rec.key);
        picture.values.emplace(rec.key, rec.value);
    }
    return picture;
}

void print_changes(std::string_view pool, const Picture& before, const Picture& after,
                   std::ostream& out) {
    for (const auto& key : after.order) {
        const std::string& value = after.values.at(key);
        const auto old = before.values.find(key);
        if (old == before.values.end()) {
            out << pool << " added " << escape(key, false) << '=' << escape(value, false) << '\n';
        } else if (old->second != value) {
            out << pool << " changed " << escape(key, false) << '=' << escape(value, false) << '\n';
        }
    }
    for (const auto& key : before.order) {
        if (after.values.find(key) == after.values.end()) {
            out << pool << " removed " << escape(key, false) << '\n';
        }
    }
    out.flush();
}

}  // namespace

int cmd_watch(const Context& ctx, const std::optional<kvp::PoolId>& pool) {
    require_pool_directory(ctx);
    SignalFd signals;

    kvp::UniqueFd inotify(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
    if (!inotify) {
        kvp::throw_errno("inotify_init1");
    }
    // Every way a pool file's content can change, appear or go.
    constexpr std::uint32_t kEvents = IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE |
                                      IN_MOVED_TO | IN_MOVED_FROM | IN_ATTRIB | IN_DELETE_SELF |
                                      IN_MOVE_SELF | IN_ONLYDIR;
    if (::inotify_add_watch(inotify.get(), ctx.pool_dir.c_str(), kEvents) < 0) {
        kvp::throw_errno("inotify_add_watch " + ctx.pool_dir.string());
    }

    // The first pictures are taken after the watch is armed: no change falls in between.
    auto directory = open_pool_directory(ctx, false);
    const std::vector<kvp::PoolId> pools = selected_pools(pool);
    std::map<kvp::PoolId, Picture> pictures;
    for (const kvp::PoolId id : pools) {
        pictures[id] = take_picture(directory.pool(id));
    }
    std::string names;
    for (const kvp::PoolId id : pools) {
        names += names.empty() ? "" : ", ";
        names += kvp::pool_name(id);
    }
    // The readiness line: from here on every change is reported.
    *ctx.err << "kvpctl: watching " << names << " in " << ctx.pool_dir.string()
             << " (Ctrl-C to stop)" << std::endl;

    std::array<struct pollfd, 2> fds{{{inotify.get(), POLLIN, 0}, {signals.get(), POLLIN, 0}}};
    alignas(struct inotify_event) char buf[16 * 1024];
    for (;;) {
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            kvp::throw_errno("poll");
        }
        if (fds[1].revents != 0) {
            const int sig = signals.take();
            *ctx.err << "kvpctl: watch ended by " << (sig != 0 ? ::strsignal(sig) : "a signal")
                     << std::endl;
            return kExitOk;
        }
        if (fds[0].revents == 0) {
            continue;
        }
        std::map<kvp::PoolId, bool> touched;
        bool directory_gone = false;
        for (;;) {
            const ssize_t n = ::read(inotify.get(), buf, sizeof buf);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno == EAGAIN) {
                    break;
                }
                kvp::throw_errno("read inotify");
            }
            for (ssize_t off = 0; off < n;) {
                const auto* event = reinterpret_cast<const struct inotify_event*>(buf + off);
                off += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
                if ((event->mask & IN_Q_OVERFLOW) != 0) {
                    for (const kvp::PoolId id : pools) {
                        touched[id] = true;
                    }
                }
                if ((event->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)) !=
                    0) {
                    directory_gone = true;
                }
                if (event->len == 0) {
                    continue;
                }
                const std::string_view name(event->name);
                for (const kvp::PoolId id : pools) {
                    if (name == kvp::pool_file_name(id)) {
                        touched[id] = true;
                    }
                }
            }
        }
        for (const auto& [id, yes] : touched) {
            Picture now = take_picture(directory.pool(id));
            print_changes(kvp::pool_name(id), pictures[id], now, *ctx.out);
            pictures[id] = std::move(now);
        }
        if (directory_gone) {
            *ctx.err << "kvpctl: the pool directory " << ctx.pool_dir.string()
                     << " went away; watch ended" << std::endl;
            return kExitBadUse;
        }
    }
}

}  // namespace kvpctl
