#!/usr/bin/env bash
# The systemd unit scripts/systemd/kvpfs.service, without systemd as PID 1: its settings are
# checked, and its Exec lines are run for real the way systemd runs them (in order, "-" lines
# may fail, $MAINPID in the environment of the control processes, "$$" for "$"), with
# /var/lib/hyperv and /kvp replaced by a tmpfs pool dir and a scratch mountpoint and `kvpfs`
# found first in BUILD_DIR. Rounds: start and stop; a crash (SIGKILL) and the restart that
# Restart=on-failure makes; a start that cannot mount.
# Usage: unit_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/package/lib.sh"
unit=$src/scripts/systemd/kvpfs.service

# --- Settings ----------------------------------------------------------------------------
setting() { sed -n "s/^$1=//p" "$unit"; }
expect_eq "Type" simple "$(setting Type)"
expect_eq "Restart" on-failure "$(setting Restart)"
expect_eq "ConditionPathIsDirectory" /var/lib/hyperv "$(setting ConditionPathIsDirectory)"
check "After= hv-kvp-daemon.service" grep -Eq '^After=.*\bhv-kvp-daemon\.service\b' "$unit"
check "no hard dependency (Requires=, BindsTo=, Requisite=)" \
    bash -c "! grep -Eq '^(Requires|BindsTo|Requisite)=' '$unit'"
check "no option that gives the service its own mount namespace" bash -c \
    "! grep -Eq '^(PrivateTmp|PrivateDevices|PrivateMounts|ProtectSystem|ProtectHome|ReadOnlyPaths|ReadWritePaths|InaccessiblePaths|TemporaryFileSystem|BindPaths|MountFlags|RootDirectory)=' '$unit'"
expect_eq "WantedBy" multi-user.target "$(setting WantedBy)"
check "ExecStart mounts /var/lib/hyperv on /kvp with allow_other, in the foreground" \
    grep -Eq '^ExecStart=(/usr/bin/)?kvpfs -f -o allow_other /var/lib/hyperv /kvp$' "$unit"

# --- Running the Exec lines --------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || { say "not root: the Exec lines are not run"; finish; }
[[ -c /dev/fuse ]] || { say "no /dev/fuse: the Exec lines are not run"; finish; }
[[ -x $build/kvpfs && -x $build/kvpctl ]] || skip "build kvpfs and kvpctl first"

work=$(mktemp -d /tmp/kvpfs-unit.XXXXXX)
pool=$work/hyperv
mnt=$work/kvp
main_pid=
cleanup() {
    [[ -z $main_pid ]] || kill -KILL "$main_pid" 2>/dev/null
    umount_tree "$work"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
mkdir -p "$pool"
mount -t tmpfs -o size=4m kvpfs-unit-pool "$pool"
"$build/kvpctl" --pool-dir "$pool" init "$pool" --sample >/dev/null
host=$("$build/kvpctl" --pool-dir "$pool" get parameter HostName)

# exec_lines KEY: the unit's KEY= lines, with this test's paths.
exec_lines() {
    sed -n "s/^$1=//p" "$unit" |
        sed -e "s#/var/lib/hyperv#$pool#g" -e "s#/kvp\\b#$mnt#g" -e 's/\$\$/$/g'
}
# run_line LINE: one Exec line as systemd runs it: no shell, words split as sh splits them,
# a leading "-" ignores failure. Returns the command's status (0 for a "-" line).
run_line() {
    local line=$1 ignore=no
    if [[ $line == -* ]]; then ignore=yes; line=${line#-}; fi
    eval "set -- $line"
    PATH="$build:$PATH" "$@"
    local status=$?
    [[ $ignore == yes ]] && return 0
    return $status
}
# start: ExecStartPre lines, ExecStart in the background, ExecStartPost lines.
start() {
    local line
    while read -r line; do run_line "$line" || return 1; done < <(exec_lines ExecStartPre)
    line=$(exec_lines ExecStart)
    eval "set -- $line"
    PATH="$build:$PATH" "$@" </dev/null >>"$work/kvpfs.log" 2>&1 &
    main_pid=$!
    while read -r line; do
        MAINPID=$main_pid run_line "$line" || return 1
    done < <(exec_lines ExecStartPost)
}
# started WHAT: runs start in this shell (it must set main_pid) and reports.
started() {
    if start; then ok "$1"; else fail "$1"; fi
}
stop_post() {
    local line
    while read -r line; do MAINPID=$main_pid run_line "$line" || return 1; done \
        < <(exec_lines ExecStopPost)
}

# 1. Start: once ExecStartPost returns, /kvp is mounted (units ordered after can use it).
started "start: ExecStartPre, ExecStart, ExecStartPost succeed"
check "start: mounted when ExecStartPost returns" is_mounted "$mnt"
expect_eq "start: reads parameter/HostName" "$host" "$(cat "$mnt/parameter/HostName" 2>&1)"
check "start: allow_other" bash -c "findmnt -n -o OPTIONS --mountpoint '$mnt' | grep -q allow_other"

# 2. Stop: systemd sends SIGTERM to the main process, then runs ExecStopPost.
kill -TERM "$main_pid"
wait "$main_pid"
expect_eq "stop: kvpfs exits 0 on SIGTERM" 0 "$?"
main_pid=
check "stop: unmounted by kvpfs itself" is_not_mounted "$mnt"
check "stop: ExecStopPost succeeds" stop_post

# 3. A crash: the dead mount stays until ExecStopPost lifts it; the restart mounts again.
started "crash: started"
kill -KILL "$main_pid"
wait "$main_pid" 2>/dev/null
expect_refused "crash: dead mount left behind" 'Transport endpoint is not connected' \
    ls "$mnt/parameter"
check "crash: ExecStopPost succeeds" stop_post
check "crash: ExecStopPost lifted the dead mount" is_not_mounted "$mnt"
started "crash: restart succeeds"
expect_eq "crash: reads after the restart" "$host" "$(cat "$mnt/parameter/HostName" 2>&1)"
# Even without ExecStopPost (say, it was interrupted), ExecStartPre copes with a dead mount.
kill -KILL "$main_pid"
wait "$main_pid" 2>/dev/null
started "crash without ExecStopPost: restart succeeds"
expect_eq "crash without ExecStopPost: reads" "$host" "$(cat "$mnt/parameter/HostName" 2>&1)"
kill -TERM "$main_pid"
wait "$main_pid"
main_pid=
stop_post

# 4. A start that cannot mount (no pool dir) fails at once, not after the 10 s wait.
umount "$pool"
rmdir "$pool"
t0=$SECONDS
if start 2>/dev/null; then fail "no pool dir: start succeeded"; else ok "no pool dir: start fails"; fi
check "no pool dir: failed within 8 s, before the 10 s wait ($((SECONDS - t0)) s)" test $((SECONDS - t0)) -le 8
main_pid=
stop_post
finish
