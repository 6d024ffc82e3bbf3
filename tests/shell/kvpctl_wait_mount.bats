#!/usr/bin/env bats
# kvpctl wait on the pool directory, satisfied by writes through a kvpfs mount over it (root
# and /dev/fuse). Needs KVPCTL and KVPFS.

load kvpfs_helpers
load kvpctl_wait_helpers

setup() {
    : "${KVPCTL:?set KVPCTL to the kvpctl binary}"
    kvpfs_setup
    start_kvpfs
}

teardown() {
    wait_cleanup
    kvpfs_teardown
}

@test "wait is satisfied by a write through the mount" {
    wait_start --pool-dir "$POOL" guest Status
    echo Ready >"$MNT/guest/Status"
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = Ready ]
}

@test "wait --value and --changed follow writes through the mount" {
    echo Booting >"$MNT/guest/Status"
    wait_start --pool-dir "$POOL" guest Status --value Done
    echo Working >"$MNT/guest/Status"
    sleep 0.3
    wait_running
    echo Done >"$MNT/guest/Status"
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [ "$WAIT_STDOUT" = Done ]

    wait_start --pool-dir "$POOL" guest Status --changed
    rm "$MNT/guest/Status"
    wait_finish
    [ "$WAIT_STATUS" -eq 0 ]
    [[ $WAIT_STDERR == *'key "Status" was removed'* ]]
}
