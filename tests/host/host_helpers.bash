# Helpers of the host tests' bats files: each test runs a script inside
# `kvp-sandbox --host` (kvpfs, kvp-host serve and the real hv_kvp_daemon on fresh pools), in
# the mount mode of this run (KVPFS_TEST_MOUNT_OPTIONS: "", "cache" or "cache=all").

# host_sandbox SCRIPT [SANDBOX_PREFIX...]: runs SCRIPT with bash -euo pipefail and the
# helpers of inside.bash; fails the test with the script's output when it fails.
host_sandbox() {
    local script=$1
    shift
    local opts=()
    [[ -n ${KVPFS_TEST_MOUNT_OPTIONS:-} ]] && opts=(-o "$KVPFS_TEST_MOUNT_OPTIONS")
    run "$@" "$KVP_SANDBOX" --quiet --host "${opts[@]}" -- \
        bash -c 'set -euo pipefail; source "$0"; cd "$(mktemp -d)"; '"$script" \
        "$BATS_TEST_DIRNAME/inside.bash"
    if [[ $status -ne 0 ]]; then
        echo "sandbox exit $status; output:"
        echo "$output"
        return 1
    fi
}
