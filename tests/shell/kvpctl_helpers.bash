# Helpers of kvpctl.bats and sandbox.bats.

# The tests' own pool record writer (kvp_record).
source "${BASH_SOURCE[0]%/*}/../common/pool_record.bash"

# Appends one record (kvp_record KEY VALUE) to FILE.
kvpctl_record() {  # FILE KEY VALUE
    kvp_record "$2" "$3" >>"$1"
}

# Polls until FILE holds a line equal to TEXT (30 s at most). Prints the file on failure.
kvpctl_wait_line() {  # FILE TEXT
    local i
    for ((i = 0; i < 3000; i++)); do
        grep -qxF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.01
    done
    echo "timed out waiting for '$2' in $1:" >&2
    cat "$1" >&2
    return 1
}

# Polls until FILE contains TEXT anywhere (30 s at most).
kvpctl_wait_text() {  # FILE TEXT
    local i
    for ((i = 0; i < 3000; i++)); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.01
    done
    echo "timed out waiting for '$2' in $1:" >&2
    cat "$1" >&2
    return 1
}

# Waits for PID to end (30 s at most) and sets kvpctl_status to its exit status.
kvpctl_wait_exit() {  # PID
    local i
    for ((i = 0; i < 3000; i++)); do
        if ! kill -0 "$1" 2>/dev/null || [[ $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) == Z ]]; then
            wait "$1"
            kvpctl_status=$?
            return 0
        fi
        sleep 0.01
    done
    echo "process $1 did not end" >&2
    return 1
}
