#!/usr/bin/env bash
# How many writes to a pool file hv_kvp_daemon loses while it rewrites that pool (it
# releases its lock between rereading the file and writing it back; docs/interop.md).
# Printed, not asserted. Root and hv_kvp_daemon; uses build/ like kvp-sandbox.
#
#   tests/bench/daemon_gap.sh [RUNS] [MOUNT_OPTIONS]
#
# Each run, inside `kvp-sandbox --host`: pool 1 holds 300 records; the host changes one
# item of pool 1 in a loop (kvp-host --any-pool: the real daemon rereads and rewrites the
# whole file each time) while 9 shell writers write 50 keys each through guest/, and then
# a cloud-init-like appender (flock, O_APPEND, no fcntl lock) appends 450 records. Every
# key is counted afterwards; a control run without the host's loop comes first.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
runs=${1:-3}
mode=${2:-}
opts=()
[[ -n $mode ]] && opts=(-o "$mode")

# shellcheck disable=SC2016  # expanded inside the sandbox
inside='
set -euo pipefail
g=$KVP_MOUNT/guest
for i in $(seq 300); do echo "$i"; done | while read -r i; do kvpctl set guest "pre$i" "preloaded $i"; done
loop_pid=
if [[ $1 == loop ]]; then
    ( n=0; while [[ ! -e $KVP_POOL_DIR/../stop ]]; do
        kvp-host --any-pool modify guest HostLoop "v$((n++))" || true
      done; echo "$n" > "$KVP_POOL_DIR/../host-ops" ) &
    loop_pid=$!
    sleep 0.2
fi
failed=0
pids=()
for w in 1 2 3 4 5 6 7 8 9; do
    ( for i in $(seq 50); do echo "value $w.$i" > "$g/s$w.$i" || echo "$w.$i" >> "$KVP_POOL_DIR/../failed"; done ) &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
python3 - "$KVP_POOL_DIR/.kvp_pool_1" <<PY &
import fcntl, os, sys
from kvp_pool import record
for i in range(450):
    with open(sys.argv[1], "ab") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        rec = record(("ci%d" % i).encode(), b"event")
        f.write(rec)
        fcntl.flock(f, fcntl.LOCK_UN)
PY
wait $!
if [[ -n $loop_pid ]]; then touch "$KVP_POOL_DIR/../stop"; wait "$loop_pid"; fi
shell=$(kvpctl list guest | grep -c "^s" || true)
ci=$(kvpctl list guest | grep -c "^ci" || true)
pre=$(kvpctl list guest | grep -c "^pre" || true)
failed_writes=0
[[ -e $KVP_POOL_DIR/../failed ]] && failed_writes=$(wc -l < "$KVP_POOL_DIR/../failed")
ops=$(cat "$KVP_POOL_DIR/../host-ops" 2>/dev/null || echo 0)
echo "$1: shell keys kept $shell/450 (lost $((450 - shell)), writes that failed $failed_writes), cloud-init-like records kept $ci/450 (lost $((450 - ci))), preloaded kept $pre/300, host changes of pool 1: $ops"
'
# The inside script's Python imports the tests' own pool codec (tests/common/kvp_pool.py).
export PYTHONPATH=$top/tests/common${PYTHONPATH:+:$PYTHONPATH}
echo "daemon_gap: ${mode:-default} mode, $(nproc) CPUs, load $(cut -d" " -f1 /proc/loadavg)"
"$top/scripts/kvp-sandbox" --quiet --host "${opts[@]}" -- bash -c "$inside" control control
for ((r = 1; r <= runs; r++)); do
    "$top/scripts/kvp-sandbox" --quiet --host "${opts[@]}" -- bash -c "$inside" loop loop
done
