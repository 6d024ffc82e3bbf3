# Helpers shared by the tests/package scripts (sourced, bash).
# Each test prints "ok"/"FAIL" lines, exits 0 when all pass, 1 on any failure,
# 77 (ctest SKIP_RETURN_CODE) when the machine cannot run it.

failures=0

say() { printf '%s\n' "$*"; }
skip() { say "SKIP: $*"; exit 77; }
ok() { say "ok   $*"; }
fail() { say "FAIL $*"; failures=$((failures + 1)); }

# check DESCRIPTION COMMAND...: runs COMMAND, passes when it succeeds.
check() {
    local what=$1; shift
    local out
    if out=$("$@" 2>&1); then ok "$what"; else fail "$what: $out"; fi
}

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
    if [[ $2 == "$3" ]]; then ok "$1"; else fail "$1: expected [$2], got [$3]"; fi
}

# expect_refused DESCRIPTION PATTERN COMMAND...: COMMAND must fail and its message match
# PATTERN (an extended regex, e.g. "Permission denied|Read-only file system").
expect_refused() {
    local what=$1 pattern=$2; shift 2
    local out
    if out=$("$@" 2>&1); then
        fail "$what: succeeded, should have been refused"
    elif [[ $out =~ $pattern ]]; then
        ok "$what (${BASH_REMATCH[0]})"
    else
        fail "$what: refused with [$out], expected /$pattern/"
    fi
}

# wait_until SECONDS COMMAND...: polls COMMAND every 50 ms until it succeeds, for at most
# SECONDS times KVPFS_TEST_SLACK (default 1: one setting stretches every bound on a slow machine).
wait_until() {
    local limit
    limit=$(awk -v s="$1" -v f="${KVPFS_TEST_SLACK:-1}" 'BEGIN { f = f < 1 ? 1 : f; printf "%d", s * f + 0.999 }')
    local deadline=$((SECONDS + limit)); shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}

is_mounted() { mountpoint -q "$1"; }
is_not_mounted() { ! mountpoint -q "$1"; }
# A zombie counts as gone: kill -0 succeeds on it until its parent (here often a late-reaping
# PID 1) collects it.
pid_gone() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
    stat=${stat##*) }
    [[ ${stat%% *} == Z ]]
}

# umount_tree DIR: lazily unmounts everything mounted at or below DIR, deepest first.
umount_tree() {
    local m
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done < <(awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r)
}

# pids_of_exe EXE [ARG]: PIDs whose executable is EXE (and whose command line holds ARG).
# One find over /proc (a readlink per entry started one process per process on the machine).
pids_of_exe() {
    local link p
    while read -r link; do
        p=${link#/proc/}
        p=${p%/exe}
        [[ $p =~ ^[0-9]+$ ]] || continue
        if [[ -n ${2:-} ]] && ! tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$2"; then
            continue
        fi
        printf '%s\n' "$p"
    done < <(find /proc -mindepth 2 -maxdepth 2 -name exe -lname "$1" 2>/dev/null)
}

# static_boost BUILD_DIR: the build links Boost.Filesystem statically (KVPFS_STATIC_BOOST).
static_boost() { grep -qx 'KVPFS_STATIC_BOOST:BOOL=ON' "$1/CMakeCache.txt"; }

finish() {
    if ((failures)); then
        say "$failures check(s) failed"
        exit 1
    fi
    say "all checks passed"
    exit 0
}
