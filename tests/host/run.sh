#!/usr/bin/env bash
# Runs one bats file of the host tests; exit 77 (ctest: skipped) without hv_kvp_daemon.
set -uo pipefail
daemon=${KVP_HOST_DAEMON:-/usr/sbin/hv_kvp_daemon}
if [[ ! -x $daemon ]]; then
    echo "SKIP: no hv_kvp_daemon at $daemon: install the package hyperv-daemons (scripts/setup.sh does)" >&2
    exit 77
fi
if ((EUID != 0)); then
    echo "SKIP: the host tests need root (kvp-host mounts and makes mount namespaces)" >&2
    exit 77
fi
exec bats "$@"
