#pragma once
// Where kvpfs may mount (docs/behaviour.md §8): never on, inside or above POOL_DIR (that
// would hide the pool files, and kvpfs would serve its own mount), never on a directory that
// holds pool files (swapped arguments), never on or inside a kvpfs mount, and not on a dead
// FUSE mount, whose cure is named. Checked before mounting.

#include <string>

namespace kvpfs {

// The one-line reason a dead FUSE mount on `mountpoint` stops kvpfs, naming the cure.
[[nodiscard]] std::string dead_mount_reason(const std::string& mountpoint);

// Why kvpfs must not mount on `mountpoint` over `pool_dir` (both real, absolute paths), or ""
// when it may.
[[nodiscard]] std::string mountpoint_refusal(const std::string& pool_dir,
                                             const std::string& mountpoint);

// Why `device` (/dev/fuse) cannot serve a mount (missing, or not the FUSE character device:
// /dev/null bound over it in a container), naming the cure; "" when it is the device.
[[nodiscard]] std::string fuse_device_problem(const std::string& device = "/dev/fuse");

// One warning line when `pool_dir` holds none of the pool files (a mistyped directory), ""
// otherwise. The mount goes ahead either way: the first write to guest/ creates one.
[[nodiscard]] std::string pool_dir_warning(const std::string& pool_dir);

}  // namespace kvpfs
