#include "sample_data.hpp"

namespace kvpctl {

KeyValues sample_parameter_pool() {
    // An Azure host: Windows Server (major 10, minor 0), x64 (PROCESSOR_ARCHITECTURE_AMD64
    // is 9), Datacenter edition (8), not nested. Names follow Azure's cluster naming.
    return {
        {"HostName", "BL2AAP103040417"},
        {"HostingSystemEditionId", "8"},
        {"HostingSystemNestedLevel", "0"},
        {"HostingSystemOsMajor", "10"},
        {"HostingSystemOsMinor", "0"},
        {"HostingSystemProcessorArchitecture", "9"},
        {"HostingSystemProcessorIdleStateMax", "0"},
        {"HostingSystemProcessorThrottleMax", "100"},
        {"HostingSystemProcessorThrottleMin", "100"},
        {"HostingSystemSpMajor", "0"},
        {"HostingSystemSpMinor", "0"},
        {"PhysicalHostName", "BL2AAP103040417"},
        {"PhysicalHostNameFullyQualified", "BL2AAP103040417.bl2.gbl"},
        {"VirtualMachineDynamicMemoryBalancingEnabled", "0"},
        {"VirtualMachineId", "5A3C7B9E-21D4-4F6A-9C0E-8B1F2D3E4A5B"},
        {"VirtualMachineName", "kvpfs-demo-vm"},
    };
}

}  // namespace kvpctl
