#include "mount_point.hpp"

#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "pool_directory.hpp"
#include "pool_id.hpp"

namespace kvpfs {
namespace {

// Real paths: does one hold the other? A mount on POOL_DIR or above it hides the pool files
// (kvpfs would then serve its own mount: writes vanish, -s deadlocks); one inside it hides
// part of the directory hv_kvp_daemon works in. The usual cause is swapped arguments.
std::string overlap(const std::string& pool_dir, const std::string& mountpoint) {
    auto inside = [](const std::string& inner, const std::string& outer) {
        return outer == "/" ||
               (inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
                inner[outer.size()] == '/');
    };
    const char* const usage = " (arguments swapped? usage: kvpfs [OPTIONS] [POOL_DIR] MOUNTPOINT)";
    if (pool_dir == mountpoint) {
        return "MOUNTPOINT '" + mountpoint +
               "' is POOL_DIR: a mount there would hide the pool files" + usage;
    }
    if (inside(mountpoint, pool_dir)) {
        return "MOUNTPOINT '" + mountpoint + "' is inside POOL_DIR '" + pool_dir +
               "': a mount there would hide part of the pool directory" + usage;
    }
    if (inside(pool_dir, mountpoint)) {
        return "MOUNTPOINT '" + mountpoint + "' holds POOL_DIR '" + pool_dir +
               "': a mount there would hide the pool files" + usage;
    }
    return "";
}

// /proc/self/mountinfo writes space, tab, newline and backslash of paths as \ooo.
std::string unescape_mountinfo(const std::string& field) {
    std::string out;
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 4 <= field.size()) {
            const std::string digits = field.substr(i + 1, 3);
            unsigned value = 0;
            auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + 3, value, 8);
            if (ec == std::errc() && ptr == digits.data() + 3) {
                out.push_back(static_cast<char>(value));
                i += 3;
                continue;
            }
        }
        out.push_back(field[i]);
    }
    return out;
}

// Each line of /proc/self/mountinfo, in order, as (mount point, file system type).
template <typename Visit>
void for_each_mount(Visit&& visit) {
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        std::istringstream fields(line);
        std::string id, parent, dev, root, point, word;
        fields >> id >> parent >> dev >> root >> point;
        while (fields >> word && word != "-") {
        }
        std::string fstype;
        fields >> fstype;
        visit(unescape_mountinfo(point), fstype);
    }
}

// The type of the topmost mount on `path` ("fuse.kvpfs"), or "" when nothing is mounted there.
std::string mounted_type(const std::string& path) {
    std::string type;
    for_each_mount([&](const std::string& point, const std::string& fstype) {
        if (point == path) {
            type = fstype;  // later lines are mounted on top of earlier ones
        }
    });
    return type;
}

bool is_kvpfs_type(const std::string& fstype) {
    return fstype == "fuse.kvpfs";
}

// The mount point of the mount that holds `path` (the longest mount point that is `path` or
// one of its parents), and its type.
std::pair<std::string, std::string> enclosing_mount(const std::string& path) {
    std::string best_point;
    std::string best_type;
    for_each_mount([&](const std::string& point, const std::string& fstype) {
        const bool holds = point == "/" || path == point ||
                           (path.size() > point.size() &&
                            path.compare(0, point.size(), point) == 0 && path[point.size()] == '/');
        if (holds && point.size() >= best_point.size()) {
            best_point = point;  // a later line of the same point is mounted on top
            best_type = fstype;
        }
    });
    return {best_point, best_type};
}

// The pool file names `dir` holds, "" when none.
std::string pool_file_names_in(const std::string& dir) {
    std::string names;
    for (const kvp::PoolId pool : kvp::pool_files_in(dir)) {
        if (!names.empty()) {
            names += ' ';
        }
        names += kvp::pool_file_name(pool);
    }
    return names;
}

}  // namespace

std::string dead_mount_reason(const std::string& mountpoint) {
    // What a killed FUSE daemon leaves behind; mounting again cannot work until the dead
    // mount is gone, so say how.
    return "MOUNTPOINT '" + mountpoint +
           "': a dead FUSE mount (Transport endpoint is not connected); clear it with: "
           "fusermount3 -u " +
           mountpoint;
}

std::string mountpoint_refusal(const std::string& pool_dir, const std::string& mountpoint) {
    if (std::string why = overlap(pool_dir, mountpoint); !why.empty()) {
        return why;
    }
    const std::string fstype = mounted_type(mountpoint);
    if (fstype.rfind("fuse", 0) == 0) {
        // stat may be answered from the kernel's cache of a dead mount; statfs never is.
        struct statfs sf {};
        if (::statfs(mountpoint.c_str(), &sf) != 0 && errno == ENOTCONN) {
            return dead_mount_reason(mountpoint);
        }
    }
    if (is_kvpfs_type(fstype)) {
        return "MOUNTPOINT '" + mountpoint + "' is already a kvpfs mount (" + fstype +
               "); unmount it first (fusermount3 -u " + mountpoint + ")";
    }
    if (const auto [point, type] = enclosing_mount(mountpoint); is_kvpfs_type(type)) {
        return "MOUNTPOINT '" + mountpoint + "' lies inside the kvpfs mount on '" + point +
               "': a kvpfs mount holds no directories to mount on";
    }
    if (const std::string names = pool_file_names_in(mountpoint); !names.empty()) {
        return "MOUNTPOINT '" + mountpoint + "' holds pool files (" + names +
               "): a mount there would hide them from hv_kvp_daemon and every other writer "
               "(arguments swapped? usage: kvpfs [OPTIONS] [POOL_DIR] MOUNTPOINT)";
    }
    return "";
}

std::string fuse_device_problem(const std::string& device) {
    struct stat st {};
    if (::stat(device.c_str(), &st) != 0) {
        const int err = errno;
        return device + ": " + std::strerror(err) +
               " (load the fuse module: modprobe fuse; in a container, pass the device: "
               "--device /dev/fuse)";
    }
    // The FUSE device is the character device 10:229 (Documentation/admin-guide/devices.txt).
    if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != 10 || minor(st.st_rdev) != 229) {
        const std::string what =
            S_ISCHR(st.st_mode) ? "the character device " + std::to_string(major(st.st_rdev)) +
                                      ":" + std::to_string(minor(st.st_rdev))
                                : std::string(S_ISREG(st.st_mode) ? "a regular file" : "no device");
        return device + " is not the FUSE device (the character device 10:229); it is " + what +
               " (something is bound over it? in a container, pass the host's: --device "
               "/dev/fuse)";
    }
    return "";
}

std::string pool_dir_warning(const std::string& pool_dir) {
    if (!kvp::pool_files_in(pool_dir).empty()) {
        return "";
    }
    return "POOL_DIR '" + pool_dir +
           "' holds none of the pool files .kvp_pool_0 to .kvp_pool_4 (is it the right "
           "directory?); mounting anyway";
}

}  // namespace kvpfs
