#!/usr/bin/env bash
# The README's main job: installs what is missing (scripts/setup.sh), builds, then shows
# kvpfs at work in a throw-away sandbox (scripts/kvp-sandbox): pools holding an Azure
# VM's sample data, mounted; ls and cat read them, echo writes to guest/, and kvpctl
# dump shows the record that landed in the pool file. Root and /dev/fuse needed.
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
shown "cat auto/OSName auto/ProcessorArchitecture"
shown "echo Ready > guest/Status"
shown "ls -l guest"
shown "cat guest/Status"
shown "kvpctl dump guest"
'
