#pragma once
// The FUSE file system whose one file, `hv_kvp`, stands in for the KVP driver's character
// device /dev/vmbus/hv_kvp (this kernel has no CUSE). A stream: not seekable, direct_io,
// one message per read or write; reads block until a message is queued and answer FUSE
// interrupts, and poll says readable only then. The driver's rules live in Channel.

#include <memory>
#include <string>

#include "channel.hpp"

namespace hostsim {

class DeviceFs {
  public:
    DeviceFs(Channel& channel, std::string mountpoint);
    DeviceFs(const DeviceFs&) = delete;
    DeviceFs& operator=(const DeviceFs&) = delete;
    DeviceFs(DeviceFs&&) = delete;
    DeviceFs& operator=(DeviceFs&&) = delete;
    // Unmounts and stops the session (the daemon should be gone by then).
    ~DeviceFs();

    // Mounts and starts serving on threads of its own; throws std::runtime_error.
    void start();
    void stop();
    [[nodiscard]] std::string device_path() const { return mountpoint_ + "/hv_kvp"; }

    struct State;

  private:
    std::unique_ptr<State> state_;
    std::string mountpoint_;
};

}  // namespace hostsim
