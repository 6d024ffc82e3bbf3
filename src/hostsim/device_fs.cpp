#include "device_fs.hpp"

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "log.hpp"
#include "ranked_mutex.hpp"

namespace hostsim {

namespace {
constexpr fuse_ino_t kDeviceIno = 2;
constexpr const char* kDeviceName = "hv_kvp";
}  // namespace

struct DeviceFs::State {
    Channel& channel;
    struct fuse_session* session = nullptr;
    std::thread loop;
    std::atomic<std::uint64_t> next_handle{1};
    // The kernel's poll handle of a poller waiting for a message (one device, one opener).
    // Guards poll_handle. Taken by op_poll (alone) and by notify_pollers, which the channel
    // calls under its own lock (host_channel, ranked before); held across
    // fuse_lowlevel_notify_poll, which only writes a notification to /dev/fuse, never across
    // a reply to a request.
    kvp::RankedMutex poll_mu{kvp::LockRank::host_device_poll};
    struct fuse_pollhandle* poll_handle = nullptr;
    bool mounted = false;

    explicit State(Channel& c) : channel(c) {}

    void notify_pollers() {
        const std::lock_guard lk(poll_mu);
        if (poll_handle != nullptr) {
            fuse_lowlevel_notify_poll(poll_handle);
            fuse_pollhandle_destroy(poll_handle);
            poll_handle = nullptr;
        }
    }
};

namespace {

DeviceFs::State& state_of(fuse_req_t req) {
    return *static_cast<DeviceFs::State*>(fuse_req_userdata(req));
}

struct stat attributes(fuse_ino_t ino) {
    struct stat st {};
    st.st_ino = ino;
    st.st_uid = 0;
    st.st_gid = 0;
    if (ino == FUSE_ROOT_ID) {
        st.st_mode = S_IFDIR | 0755;
        st.st_nlink = 2;
    } else {
        st.st_mode = S_IFREG | 0600;
        st.st_nlink = 1;
    }
    return st;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (parent != FUSE_ROOT_ID || std::strcmp(name, kDeviceName) != 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct fuse_entry_param e {};
    e.ino = kDeviceIno;
    e.attr = attributes(kDeviceIno);
    e.attr_timeout = 1.0;
    e.entry_timeout = 1.0;
    fuse_reply_entry(req, &e);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* /*fi*/) {
    if (ino != FUSE_ROOT_ID && ino != kDeviceIno) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    const struct stat st = attributes(ino);
    fuse_reply_attr(req, &st, 1.0);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                struct fuse_file_info* /*fi*/) {
    if (ino != FUSE_ROOT_ID) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    std::vector<char> buf(size);
    size_t used = 0;
    const std::pair<const char*, fuse_ino_t> entries[] = {
        {".", FUSE_ROOT_ID}, {"..", FUSE_ROOT_ID}, {kDeviceName, kDeviceIno}};
    for (off_t i = off; i < 3; ++i) {
        const struct stat st = attributes(entries[i].second);
        const size_t n =
            fuse_add_direntry(req, buf.data() + used, size - used, entries[i].first, &st, i + 1);
        if (n > size - used) {
            break;
        }
        used += n;
    }
    fuse_reply_buf(req, buf.data(), used);
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
    if (ino != kDeviceIno) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    DeviceFs::State& s = state_of(req);
    const std::uint64_t handle = s.next_handle++;
    const int rc = s.channel.open(handle, fuse_req_ctx(req)->pid);
    if (rc != 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = handle;
    fi->direct_io = 1;
    fi->nonseekable = 1;
    fi->keep_cache = 0;
    if (fuse_reply_open(req, fi) != 0) {
        s.channel.release(handle);  // the opener is gone already (interrupted open)
    }
}

void on_interrupt(fuse_req_t /*req*/, void* data) {
    // Only a wake-up: the blocked read sees fuse_req_interrupted() and answers EINTR.
    static_cast<Channel*>(data)->wake();
}

void op_read(fuse_req_t req, fuse_ino_t /*ino*/, size_t size, off_t /*off*/,
             struct fuse_file_info* fi) {
    DeviceFs::State& s = state_of(req);
    fuse_req_interrupt_func(req, on_interrupt, &s.channel);
    std::vector<std::uint8_t> message;
    const int rc = s.channel.read(
        fi->fh, size, [req] { return fuse_req_interrupted(req) != 0; }, &message);
    if (rc != 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    fuse_reply_buf(req, reinterpret_cast<const char*>(message.data()), message.size());
}

void op_write(fuse_req_t req, fuse_ino_t /*ino*/, const char* buf, size_t size, off_t /*off*/,
              struct fuse_file_info* fi) {
    const std::vector<std::uint8_t> data(buf, buf + size);
    const int rc = state_of(req).channel.write(fi->fh, data);
    if (rc != 0) {
        fuse_reply_err(req, -rc);
        return;
    }
    fuse_reply_write(req, size);
}

void op_poll(fuse_req_t req, fuse_ino_t /*ino*/, struct fuse_file_info* /*fi*/,
             struct fuse_pollhandle* ph) {
    DeviceFs::State& s = state_of(req);
    if (ph != nullptr) {
        // Kept before looking, so a message queued in between still notifies it.
        const std::lock_guard lk(s.poll_mu);
        if (s.poll_handle != nullptr) {
            fuse_pollhandle_destroy(s.poll_handle);
        }
        s.poll_handle = ph;
    }
    fuse_reply_poll(req, s.channel.readable() ? (POLLIN | POLLRDNORM) : 0);
}

void op_flush(fuse_req_t req, fuse_ino_t /*ino*/, struct fuse_file_info* /*fi*/) {
    // Not a close: the daemon's popen() children close their copies at exec.
    fuse_reply_err(req, 0);
}

void op_release(fuse_req_t req, fuse_ino_t /*ino*/, struct fuse_file_info* fi) {
    state_of(req).channel.release(fi->fh);
    fuse_reply_err(req, 0);
}

const struct fuse_lowlevel_ops& operations() {
    static const struct fuse_lowlevel_ops ops = [] {
        struct fuse_lowlevel_ops o {};
        o.lookup = op_lookup;
        o.getattr = op_getattr;
        o.readdir = op_readdir;
        o.open = op_open;
        o.read = op_read;
        o.write = op_write;
        o.poll = op_poll;
        o.flush = op_flush;
        o.release = op_release;
        return o;
    }();
    return ops;
}

}  // namespace

DeviceFs::DeviceFs(Channel& channel, std::string mountpoint)
    : state_(std::make_unique<State>(channel)), mountpoint_(std::move(mountpoint)) {}

DeviceFs::~DeviceFs() {
    stop();
}

void DeviceFs::start() {
    std::vector<std::string> argv_text{"kvp-host", "-o", "fsname=kvp-host,subtype=kvp-host"};
    std::vector<char*> argv;
    argv.reserve(argv_text.size());
    for (auto& a : argv_text) {
        argv.push_back(a.data());
    }
    struct fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
    state_->session =
        fuse_session_new(&args, &operations(), sizeof(struct fuse_lowlevel_ops), state_.get());
    if (state_->session == nullptr) {
        throw std::runtime_error("cannot create the FUSE session of the device");
    }
    if (fuse_session_mount(state_->session, mountpoint_.c_str()) != 0) {
        fuse_session_destroy(state_->session);
        state_->session = nullptr;
        throw std::runtime_error("cannot mount the device's FUSE file system on " + mountpoint_);
    }
    state_->mounted = true;
    state_->channel.on_readable([s = state_.get()] { s->notify_pollers(); });
    state_->loop = std::thread([s = state_.get()] {
        struct fuse_loop_config* cfg = fuse_loop_cfg_create();
        fuse_loop_cfg_set_clone_fd(cfg, 0);
        // A blocked read and an open waiting for a release each hold a thread.
        fuse_loop_cfg_set_max_threads(cfg, 16);
        fuse_loop_cfg_set_idle_threads(cfg, 4);
        const int rc = fuse_session_loop_mt(s->session, cfg);
        fuse_loop_cfg_destroy(cfg);
        if (rc != 0 && rc != ENODEV) {
            kvp::log(kvp::LogLevel::debug, "device session loop ended: " + std::to_string(rc));
        }
    });
}

void DeviceFs::stop() {
    if (state_->session == nullptr) {
        return;
    }
    state_->channel.stop();
    state_->channel.on_readable({});
    fuse_session_exit(state_->session);
    if (state_->mounted) {
        // Detaching ends the connection once the daemon's namespace is gone; the loop's
        // threads then read ENODEV and return.
        if (::umount2(mountpoint_.c_str(), MNT_DETACH) != 0) {
            kvp::log(kvp::LogLevel::warning, "umount " + mountpoint_ + ": " + std::strerror(errno));
        }
        state_->mounted = false;
    }
    if (state_->loop.joinable()) {
        state_->loop.join();
    }
    {
        const std::lock_guard lk(state_->poll_mu);
        if (state_->poll_handle != nullptr) {
            fuse_pollhandle_destroy(state_->poll_handle);
            state_->poll_handle = nullptr;
        }
    }
    fuse_session_destroy(state_->session);
    state_->session = nullptr;
}

}  // namespace hostsim
