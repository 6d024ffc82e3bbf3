#!/usr/bin/env bash
# The README's main job: installs what is missing (scripts/setup.sh), builds, then shows
# kvpfs at work in a throw-away sandbox (scripts/kvp-sandbox): pools holding an Azure
# host's sample data, mounted; ls and cat read them (auto/ computed from this machine),
# echo writes to guest/, and kvpctl dump shows the record that landed in the pool file. Root and /dev/fuse needed.
# BUILD_DIR (default build) picks the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build}

scripts/setup.sh
echo "demo: building in $build_dir (a few minutes the first time on 2 cores)"
cmake -S . -B "$build_dir" >/dev/null
# Only the two programs: the demo does not wait for (or depend on) the test code.
cmake --build "$build_dir" -j2 --target kvpfs kvpctl -- --no-print-directory >/dev/null
echo "demo: built $build_dir/kvpfs and $build_dir/kvpctl"

export KVPFS=$PWD/$build_dir/kvpfs KVPCTL=$PWD/$build_dir/kvpctl
export PATH=$PWD/$build_dir:$PATH
# shellcheck disable=SC2016  # expanded inside the sandbox
exec scripts/kvp-sandbox --sample -- bash -c '
set -e
shown() { printf "\n\$ %s\n" "$1"; eval "$1"; }
cd "$KVP_MOUNT"
echo "demo: kvpfs mounts the pools of $KVP_POOL_DIR on $KVP_MOUNT (here: .)"
shown "ls"
shown "ls parameter"
shown "cat parameter/VirtualMachineName parameter/HostingSystemOsMajor"
# auto/: .kvp_pool_2 is empty, as on a real VM; the ten intrinsic items are computed the
# way hv_kvp_daemon computes them for the host (docs/daemon.md, "auto/").
shown "stat -c %s \$KVP_POOL_DIR/.kvp_pool_2"
shown "ls auto"
shown "cat auto/OSName auto/OSMajorVersion auto/NetworkAddressIPv4 auto/ProcessorArchitecture"
shown "echo Ready > guest/Status"
shown "ls -l guest"
shown "cat guest/Status"
shown "kvpctl dump guest"
'
