#!/usr/bin/env bash
# Everyday tools against a kvpfs mount (docs/behaviour.md §5, §7). Each row runs one command in the
# mount as a user would type it, checks its exit status and what guest/ holds in the pool
# file afterwards, and becomes a row of the table in docs/everyday-tools.md. The test fails
# when a check fails or when the table it builds differs from the committed one, so the
# document cannot drift. After a deliberate change, refresh the table with
#   tests/shell/everyday_tools.sh --update
# (KVPFS and KVPCTL name the binaries; default build/kvpfs and build/kvpctl). Needs root,
# /dev/fuse, rsync, vim, python3.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
KVPFS=${KVPFS:-$repo/build/kvpfs}
KVPCTL=${KVPCTL:-$repo/build/kvpctl}
DOC=$repo/docs/everyday-tools.md
# The tests' own pool record writer (kvp_record KEY VALUE).
source "$repo/tests/common/pool_record.bash"
update=false
[[ ${1:-} == --update ]] && update=true

VIM=$(command -v vim || command -v vim.basic || command -v vim.nox || command -v vim.tiny || true)
for tool in rsync python3 tar "$VIM"; do
    if [[ -z $tool ]] || ! command -v "$tool" >/dev/null; then
        echo "everyday_tools: ${tool:-vim} is missing (scripts/setup.sh installs it)" >&2
        exit 1
    fi
done

BASE=$(mktemp -d /tmp/kvpfs-tools.XXXXXX)
W=$BASE/work   # files outside the mount
mkdir -p "$W"
pids=()
mounts=()
cleanup() {
    cd /
    local m
    for m in "${mounts[@]}"; do
        fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    local p
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null
    done
    umount -l "$BASE/pool" "$BASE/small" 2>/dev/null
    rm -rf "$BASE"
}
trap cleanup EXIT

# mount_kvpfs NAME TMPFS_SIZE OPTIONS...: a tmpfs pool dir $BASE/NAME with empty pool files
# and kvpfs on $BASE/NAME.mnt.
mount_kvpfs() {
    local name=$1 size=$2
    shift 2
    mkdir -p "$BASE/$name" "$BASE/$name.mnt"
    mount -t tmpfs -o "size=$size" tmpfs "$BASE/$name" || exit 1
    local n
    for n in 0 1 2 3 4; do : >"$BASE/$name/.kvp_pool_$n"; done
    "$KVPFS" -f "$@" "$BASE/$name" "$BASE/$name.mnt" 2>>"$BASE/$name.log" &
    pids+=($!)
    mounts+=("$BASE/$name.mnt")
    local i
    for ((i = 0; i < 2000; i++)); do
        [[ $(stat -f -c %T "$BASE/$name.mnt" 2>/dev/null) == fuseblk || \
            $(stat -f -c %t "$BASE/$name.mnt" 2>/dev/null) == 65735546 ]] && return 0
        sleep 0.005
    done
    echo "everyday_tools: kvpfs did not mount" >&2
    cat "$BASE/$name.log" >&2
    exit 1
}

mount_kvpfs pool 16m -o lock_timeout=1
# A pool whose file system is full: 8 records are exactly 5 pages, a new key needs a 6th.
mount_kvpfs small 20k

kv() { "$KVPCTL" --pool-dir "$BASE/$pool" "$@"; }

# The value of guest/KEY as the pool file holds it, for the table: `a\nb`, or (no key).
shown() {
    local out
    if out=$(kv get guest "$1" 2>/dev/null; echo x); then
        out=${out%x}
        out=${out%$'\n'}
        if kv list guest | grep -qxF -- "$1"; then
            out=${out//\\/\\}
            out=${out//$'\n'/\\n}
            out=${out//|/\\|}
            printf '`%s`' "$out"
            return
        fi
    fi
    printf '(no key)'
}

rows=()
failures=0

# row TOOL KEY EXPECT_STATUS EXPECT_VALUE 'COMMAND' [SETUP] [TEARDOWN]
# Runs COMMAND with bash in the mount (paths relative to it). EXPECT_VALUE: the value of
# guest/KEY afterwards (printf %b escapes), "-" for no key, "=" for a pool file byte-identical
# to before. Effects that come with release, just after close() returns, are waited for.
row() {
    local tool=$1 key=$2 want_status=$3 want=$4 cmd=$5 setup=${6:-} teardown=${7:-}
    local mnt=$BASE/$pool.mnt file=$BASE/$pool/.kvp_pool_1
    cp "$file" "$BASE/before"
    [[ -n $setup ]] && eval "$setup"
    local out status
    out=$(cd "$mnt" && W=$W bash -c "$cmd" 2>&1 </dev/null)
    status=$?
    [[ -n $teardown ]] && eval "$teardown"
    local ok=false i
    for ((i = 0; i < 500; i++)); do
        case $want in
        =) cmp -s "$file" "$BASE/before" && ok=true ;;
        -) kv list guest | grep -qxF -- "$key" || ok=true ;;
        *) [[ $(kv list guest | grep -cxF -- "$key") == 1 &&
            "$(kv get guest "$key"; echo x)" == "$(printf '%b\nx' "$want")" ]] && ok=true ;;
        esac
        $ok && break
        sleep 0.01
    done
    local msg
    msg=$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -n 1)
    msg=${msg//$BASE\/$pool.mnt\//}
    msg=${msg//$W\//}
    msg=${msg//|/\\|}
    local after
    after=$(shown "$key")
    [[ $want == = ]] && after="$after, pool byte-identical"
    if [[ $status != "$want_status" ]] || ! $ok; then
        echo "FAIL: $tool: \`$cmd\`: exit $status (want $want_status), guest/$key: $after (want $want)" >&2
        [[ -n $out ]] && printf '  output: %s\n' "$out" >&2
        failures=$((failures + 1))
    fi
    rows+=("| $tool | \`${cmd//|/\\|}\` | $status | ${msg:+\`$msg\`} | $after |")
}

# A holder of the guest pool's lock that never lets go until told (as a stuck writer).
hold_lock() {
    coproc HOLDER { python3 -c '
import fcntl, sys
f = open(sys.argv[1], "rb")
fcntl.flock(f, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()' "$BASE/$pool/.kvp_pool_1"; }
    local line
    read -r line <&"${HOLDER[0]}"
}
release_lock() {
    local pid=$HOLDER_PID
    exec {HOLDER[1]}>&-
    wait "$pid"
}

printf 'value from a file\n' >"$W/src.txt"
chmod 0644 "$W/src.txt"
head -c 1100 /dev/zero | tr '\0' a >"$W/big.txt"
printf 'tar member\n' >"$W/tarred"
chmod 0644 "$W/tarred"
tar -C "$W" -cf "$W/files.tar" tarred
{ kvp_record existing "old value" && kvp_record log first; } >"$BASE/pool/.kvp_pool_1"
for i in 0 1 2 3 4 5 6 7; do kvp_record "k$i" v; done >"$BASE/small/.kvp_pool_1"

pool=pool
row 'bash `echo >`' greeting 0 'hello' 'echo hello > guest/greeting'
row 'bash `echo >`' greeting 0 'bye' 'echo bye > guest/greeting'
row 'bash `echo >>`' log 0 'first\nsecond' 'echo second >> guest/log'
row 'bash `echo >`, too long' existing 1 = 'echo $(printf "a%.0s" {1..1100}) > guest/existing'
row 'bash `echo >>`, too long' log 1 = 'echo $(printf "a%.0s" {1..1100}) >> guest/log'
row 'bash `echo >`, refused create' newkey 1 - 'echo $(printf "a%.0s" {1..1100}) > guest/newkey'
row 'bash `printf >`, NUL byte' existing 1 = "printf 'a\\0b' > guest/existing"
row 'bash `printf >`, invalid UTF-8' existing 1 = "printf '\\xff\\xfe' > guest/existing"
row 'dash `printf >`, too long (dash names no errno)' existing 1 = 'dash -c "printf %1100s x > guest/existing"'
row 'bash `echo >`, lock held elsewhere (`-o lock_timeout=1`)' existing 1 = \
    'echo new > guest/existing' hold_lock release_lock
pool=small
row 'bash `echo >`, file system full' newkey 1 = 'echo new > guest/newkey'
row 'bash `echo >`, file system full, existing key' k0 0 'replaced' 'echo replaced > guest/k0'
pool=pool
row 'bash `: >`' greeting 0 '' ': > guest/greeting'
row 'bash `printf >`' multi 0 'line one\nline two' "printf 'line one\\nline two\\n' > guest/multi"
row 'tee' teed 0 'via tee' 'echo "via tee" | tee guest/teed >/dev/null'
row 'tee -a' teed 0 'via tee\nagain' 'echo again | tee -a guest/teed >/dev/null'
row 'cp' copied 0 'value from a file' 'cp "$W/src.txt" guest/copied'
row 'cp, too long' cpbig 1 - 'cp "$W/big.txt" guest/cpbig'
row 'cp -p' copied-p 0 'value from a file' 'cp -p "$W/src.txt" guest/copied-p'
row 'cp -a' copied-a 0 'value from a file' 'cp -a "$W/src.txt" guest/copied-a'
row 'cp out and back' back 0 'first\nsecond' 'cp guest/log "$W/log" && cp "$W/log" guest/back'
row 'install -m 644' installed 0 'value from a file' 'install -m 644 "$W/src.txt" guest/installed'
row 'install -m 600' installed600 1 'value from a file' 'install -m 600 "$W/src.txt" guest/installed600'
row 'rsync -a' synced 0 'value from a file' 'rsync -a "$W/src.txt" guest/synced'
row 'tar -x' tarred 0 'tar member' 'tar -xf "$W/files.tar" -C guest'
row 'sed -i' existing 0 'new value' 'sed -i s/old/new/ guest/existing'
row 'mv into guest/' moved 0 'value from a file' 'cp "$W/src.txt" "$W/mv.txt" && mv "$W/mv.txt" guest/moved'
row 'mv within guest/' renamed 0 'value from a file' 'mv guest/moved guest/renamed'
row 'mv out of guest/' renamed 1 'value from a file' 'mv guest/renamed external/'
row 'dd bs=1 (é split across writes)' dd 0 'café' "printf 'caf\\xc3\\xa9\\n' | dd of=guest/dd bs=1 status=none"
row 'dd bs=1, unfinished UTF-8 at close' dd 1 'x' "printf 'x\\xc3' | dd of=guest/dd bs=1 status=none"
row 'truncate -s 2' existing 0 'ne' 'truncate -s 2 guest/existing'
row 'truncate -s 100 (growing)' existing 1 = 'truncate -s 100 guest/existing'
row 'touch, new key' touched 0 '' 'touch guest/touched'
row 'touch, existing key' existing 0 = 'touch guest/existing'
row 'Python `write_text`' py 0 'from python' "python3 -c 'import pathlib; pathlib.Path(\"guest/py\").write_text(\"from python\\n\")'"
row 'Python `open("a")`' py 0 'from python\nappended' "python3 -c 'open(\"guest/py\", \"a\").write(\"appended\\n\")'"
row 'Python `os.replace` of a temp file' py 0 'replaced' "python3 -c 'import os; open(\"guest/.py.tmp\", \"w\").write(\"replaced\\n\"); os.replace(\"guest/.py.tmp\", \"guest/py\")'"
row 'Python `write_text`, too long' py 1 = "python3 -c 'import pathlib; pathlib.Path(\"guest/py\").write_text(\"a\" * 2000)'"
row 'vim -es (its swap file is refused)' vimmed 1 'edited by vim' \
    "printf 'vim\\n' > guest/vimmed && vim -es -c '%s/vim/edited by vim/' -c wq guest/vimmed"
row 'after vim -es: no swap file left' .vimmed.swp 0 - 'ls -A guest | grep -F .swp || echo "no swap file"'
row 'vim -n -es (no swap file)' vimmed 0 'edited again' \
    "vim -n -es -c '%s/edited by vim/edited again/' -c wq guest/vimmed"

{
    sed '/^<!-- table: generated by tests\/shell\/everyday_tools.sh -->$/q' "$DOC"
    echo
    echo '| Tool | Command (in the mount) | Exit | Last line the user sees | guest/KEY in the pool afterwards |'
    echo '|---|---|---|---|---|'
    printf '%s\n' "${rows[@]}"
} >"$BASE/doc.md"

if $update; then
    cp "$BASE/doc.md" "$DOC"
    echo "everyday_tools: wrote $DOC"
elif ! diff -u "$DOC" "$BASE/doc.md"; then
    echo "everyday_tools: docs/everyday-tools.md differs from what the tools do now;" \
        "check the diff, then run tests/shell/everyday_tools.sh --update" >&2
    failures=$((failures + 1))
fi
echo "everyday_tools: ${#rows[@]} rows, $failures failures"
((failures == 0))
