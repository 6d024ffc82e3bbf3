# Helpers of the real-engine container tests (engine_docker_test.sh, engine_podman_test.sh;
# sourced after lib.sh). One scenario, docs/containers.md's recipes, played by any engine
# whose command line speaks docker's dialect: the caller defines
#   ctr ARGS...        the engine's client (`docker -H …` or `podman --root …`)
#   ctr_run_flags=()   flags every `ctr run` needs on this machine
# and calls engine_scenario.
# shellcheck shell=bash disable=SC2154  # failures (lib.sh), ctr_run_flags (the caller)

# engines_need PACKAGE:COMMAND...: installs with apt-get the packages whose command is
# missing; skips (exit 77) saying why when that is impossible. Waits for the dpkg lock
# rather than failing next to another test that holds it.
engines_need() {
    local want=() pc
    for pc in "$@"; do
        command -v "${pc#*:}" >/dev/null 2>&1 || want+=("${pc%%:*}")
    done
    ((${#want[@]})) || return 0
    command -v apt-get >/dev/null || skip "no apt-get to install ${want[*]}"
    local log
    log=$(mktemp)
    say "installing ${want[*]} with apt-get"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "${want[@]}" >"$log" 2>&1; then
        tail -n 5 "$log" >&2
        rm -f "$log"
        echo "cannot install ${want[*]} with apt-get (see above)" >&2
        skip "cannot install ${want[*]} with apt-get"
    fi
    rm -f "$log"
    for pc in "$@"; do
        command -v "${pc#*:}" >/dev/null 2>&1 || {
            echo "${pc%%:*} installed, yet no ${pc#*:} on PATH" >&2
            skip "${pc%%:*} installed, yet no ${pc#*:} on PATH"
        }
    done
}

# image_tree DIR BUILD_DIR: a root file system of busybox-static plus kvpfs and kvpctl with
# the host's libraries they link (at the same paths), the set-uid fusermount3 (as an image
# with the fuse3 package has it: libfuse's fallback when kvpfs cannot mount itself), and a
# nobody user (65534).
image_tree() {
    local dir=$1 build=$2 lib
    mkdir -p "$dir"/{bin,usr/bin,etc,proc,sys,dev,tmp,kvp,run/kvpfs,var/lib/hyperv}
    chmod 1777 "$dir/tmp"
    cp "$(command -v busybox)" "$dir/bin/busybox"
    local applet
    for applet in $("$dir/bin/busybox" --list); do
        [[ -e $dir/bin/$applet ]] || ln -s busybox "$dir/bin/$applet"
    done
    cp "$build/kvpfs" "$build/kvpctl" "$dir/usr/bin/"
    cp -p "$(command -v fusermount3)" "$dir/usr/bin/"
    while read -r lib; do
        mkdir -p "$dir$(dirname "$lib")"
        cp -L "$lib" "$dir$lib"
    done < <(ldd "$build/kvpfs" "$build/kvpctl" "$dir/usr/bin/fusermount3" "$dir/bin/busybox" 2>/dev/null |
        awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(/ { print $1 }' | sort -u)
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        >"$dir/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
}

# in_ctr NAME CMD...: runs a shell command line in container NAME as its root.
in_ctr() { local n=$1; shift; ctr exec "$n" sh -c "$*"; }
# as_nobody NAME CMD...: the same as user 65534 (`exec --user`).
as_nobody() { local n=$1; shift; ctr exec --user 65534:65534 "$n" sh -c "$*"; }

# A host daemon at SHARE/NAME: kvpfs -f with OPTIONS, its PID in daemon_pid[NAME].
declare -A daemon_pid=()
start_daemon() {
    local name=$1 opts=$2
    mkdir -p "$share/$name"
    "$build/kvpfs" -f -o "$opts" "$pool" "$share/$name" 2>>"$work/kvpfs-$name.log" &
    daemon_pid[$name]=$!
    wait_until 30 is_mounted "$share/$name"
}
stop_daemons() {
    local name
    for name in "${!daemon_pid[@]}"; do
        kill -TERM "${daemon_pid[$name]}" 2>/dev/null || continue
        wait_until 30 pid_gone "${daemon_pid[$name]}" || kill -KILL "${daemon_pid[$name]}" 2>/dev/null
    done
}

# kvpfs_mounts_under DIR: the kvpfs mounts of this mount namespace at or below DIR.
kvpfs_mounts_under() {
    awk -v d="$1" '($5 == d || index($5, d "/") == 1) && / - fuse\.kvpfs / { print $5 }' \
        /proc/self/mountinfo
}
kvpctl() { "$build/kvpctl" --pool-dir "$pool" "$@"; }
dev_of() { stat -c %d "$1" 2>/dev/null; }

# engine_scenario IMAGE: docs/containers.md's recipes with this engine. Needs $work, $build,
# $pool (the tmpfs pool directory with sample data) and $share (a shared mount, empty).
engine_scenario() {
    local image=$1 hn out status
    hn=$(kvpctl get parameter HostName)
    local rerr="Permission denied"

    say "--- (a) kvpfs on the VM; -v SHARE:/run/kvpfs:rslave and -v SHARE/kvp-rw:/kvp"
    start_daemon kvp-rw allow_other,rw || fail "host: kvpfs -o allow_other did not mount"
    ctr run -d --name consumer "${ctr_run_flags[@]}" \
        -v "$share:/run/kvpfs:rslave" -v "$share/kvp-rw:/kvp" \
        "$image" sleep 3600 >/dev/null || fail "run the consumer container"
    # The engines' default propagation of a bind, rprivate, for contrast.
    ctr run -d --name private "${ctr_run_flags[@]}" -v "$share:/run/kvpfs" \
        "$image" sleep 3600 >/dev/null || fail "run the container with an rprivate bind"
    expect_eq "parent bind: root reads parameter/HostName" "$hn" \
        "$(in_ctr consumer cat /run/kvpfs/kvp-rw/parameter/HostName 2>&1)"
    expect_eq "simple bind: root reads parameter/HostName" "$hn" \
        "$(in_ctr consumer cat /kvp/parameter/HostName 2>&1)"
    check "root writes guest/FromContainer" in_ctr consumer 'echo up > /kvp/guest/FromContainer'
    expect_eq "host: the container's write is in the pool file" up \
        "$(kvpctl get guest FromContainer 2>&1)"
    expect_eq "nobody reads guest/FromContainer" up \
        "$(as_nobody consumer cat /run/kvpfs/kvp-rw/guest/FromContainer 2>&1)"
    expect_refused "nobody writes guest/ (owner root, umask 022)" "$rerr" \
        as_nobody consumer 'echo x > /kvp/guest/FromNobody'
    expect_refused "root changes parameter/" "$rerr|Read-only file system" \
        in_ctr consumer 'echo x > /kvp/parameter/HostName'

    say "--- mounts made after the container started reach it through the rslave bind"
    start_daemon kvp-ro allow_other,ro || fail "host: kvpfs -o allow_other,ro did not mount"
    start_daemon kvp-nobody allow_other,uid=65534,gid=65534 ||
        fail "host: kvpfs -o allow_other,uid=65534,gid=65534 did not mount"
    check "the later -o ro mount shows in the container" wait_until 10 \
        in_ctr consumer "test \"\$(cat /run/kvpfs/kvp-ro/parameter/HostName)\" = '$hn'"
    check "the later mount does not show through an rprivate bind" \
        in_ctr private 'test -d /run/kvpfs/kvp-ro -a ! -e /run/kvpfs/kvp-ro/parameter'
    expect_refused "root writes guest/ on the -o ro mount" "Read-only file system" \
        in_ctr consumer 'echo x > /run/kvpfs/kvp-ro/guest/FromContainer'
    check "the later uid=65534 mount shows in the container" wait_until 10 \
        in_ctr consumer 'test -d /run/kvpfs/kvp-nobody/guest'
    check "nobody writes guest/ on the uid=65534 mount" \
        as_nobody consumer 'echo mine > /run/kvpfs/kvp-nobody/guest/FromNobody'
    expect_eq "host: nobody's write is in the pool file" mine \
        "$(kvpctl get guest FromNobody 2>&1)"
    expect_refused "nobody changes parameter/ on the uid=65534 mount" "$rerr" \
        as_nobody consumer 'echo x > /run/kvpfs/kvp-nobody/parameter/HostName'

    say "--- kill -9 of the host's daemon, then its restart (as kvpfs-share@.service does it)"
    local old_dev
    old_dev=$(dev_of "$share/kvp-rw/guest")
    kill -KILL "${daemon_pid[kvp-rw]}"
    wait "${daemon_pid[kvp-rw]}" 2>/dev/null || true
    unset 'daemon_pid[kvp-rw]'
    expect_refused "killed: the parent bind gives ENOTCONN" "Transport endpoint is not connected" \
        in_ctr consumer 'cat /run/kvpfs/kvp-rw/parameter/HostName'
    expect_refused "killed: the simple bind gives ENOTCONN" "Transport endpoint is not connected" \
        in_ctr consumer 'cat /kvp/parameter/HostName'
    # ExecStartPre=-fusermount3 -u -q -z: the dead mount goes, here and in the container.
    fusermount3 -u -q -z "$share/kvp-rw" || fail "host: fusermount3 -u -z of the dead mount"
    check "unmounted: the container sees the empty directory" wait_until 10 \
        in_ctr consumer 'test -d /run/kvpfs/kvp-rw -a ! -e /run/kvpfs/kvp-rw/parameter'
    expect_refused "unmounted: a read gives ENOENT" "No such file or directory" \
        in_ctr consumer 'cat /run/kvpfs/kvp-rw/parameter/HostName'
    start_daemon kvp-rw allow_other,rw || fail "host: the restarted kvpfs did not mount"
    check "restarted: a new mount (device $(dev_of "$share/kvp-rw/guest") was $old_dev)" \
        test "$(dev_of "$share/kvp-rw/guest")" != "$old_dev"
    check "restarted: the parent bind reads the new mount" wait_until 10 \
        in_ctr consumer "test \"\$(cat /run/kvpfs/kvp-rw/guest/FromContainer)\" = up"
    check "restarted: root writes guest/ through the parent bind" \
        in_ctr consumer 'echo again > /run/kvpfs/kvp-rw/guest/FromContainer'
    expect_eq "host: the write after the restart is in the pool file" again \
        "$(kvpctl get guest FromContainer 2>&1)"
    expect_refused "restarted: the simple bind stays on the dead mount" \
        "Transport endpoint is not connected" in_ctr consumer 'cat /kvp/parameter/HostName'
    ctr kill consumer private >/dev/null || fail "kill the consumer containers"
    ctr rm consumer private >/dev/null || fail "remove the consumer containers"
    stop_daemons

    say "--- (b) kvpfs inside a container: --device /dev/fuse --cap-add SYS_ADMIN"
    local daemon_flags=(--device /dev/fuse --cap-add SYS_ADMIN
        --security-opt apparmor=unconfined -v "$pool:/var/lib/hyperv")
    status=0
    out=$(ctr run --rm "${ctr_run_flags[@]}" --cap-add SYS_ADMIN \
        --security-opt apparmor=unconfined -v "$pool:/var/lib/hyperv" \
        "$image" kvpfs -f -o allow_other /var/lib/hyperv /kvp 2>&1) || status=$?
    check "without --device /dev/fuse: kvpfs fails ($status: $out)" \
        test "$status" -ne 0 -a "${out/--device \/dev\/fuse/}" != "$out"
    status=0
    out=$(ctr run --rm "${ctr_run_flags[@]}" --device /dev/fuse \
        --security-opt apparmor=unconfined -v "$pool:/var/lib/hyperv" \
        "$image" kvpfs -f -o allow_other /var/lib/hyperv /kvp 2>&1) || status=$?
    check "without --cap-add SYS_ADMIN: kvpfs fails ($status: $out)" \
        test "$status" -ne 0 -a "${out/Operation not permitted/}" != "$out"
    ctr run -d --name kvpfs "${ctr_run_flags[@]}" "${daemon_flags[@]}" \
        "$image" kvpfs -f -o allow_other /var/lib/hyperv /kvp >/dev/null ||
        fail "run the kvpfs container"
    check "kvpfs mounts /kvp in the container" wait_until 30 \
        in_ctr kvpfs "test \"\$(cat /kvp/parameter/HostName)\" = '$hn'"
    check "the container's root writes guest/FromDaemonContainer" \
        in_ctr kvpfs 'echo inside > /kvp/guest/FromDaemonContainer'
    expect_eq "host: the write is in the pool file" inside \
        "$(kvpctl get guest FromDaemonContainer 2>&1)"
    expect_eq "nobody in the container reads it" inside \
        "$(as_nobody kvpfs cat /kvp/guest/FromDaemonContainer 2>&1)"
    expect_refused "nobody in the container writes guest/" "$rerr" \
        as_nobody kvpfs 'echo x > /kvp/guest/FromDaemonContainer'
    check "host: the container's mount is not in the host's mount table" \
        test -z "$(kvpfs_mounts_under "$work")"
    ctr stop -t 20 kvpfs >/dev/null || fail "stop the kvpfs container"
    expect_eq "stop (SIGTERM): kvpfs exits 0" 0 \
        "$(ctr inspect -f '{{.State.ExitCode}}' kvpfs 2>&1)"
    ((failures == 0)) || ctr logs kvpfs 2>&1 | sed 's/^/  [kvpfs container] /'
    ctr rm -f kvpfs >/dev/null || fail "remove the kvpfs container"
}

# cgroups_note NAME...: notes which cgroups NAME (an engine's parent cgroup, such as docker
# or libpod_parent) exist in each hierarchy; cgroups_tidy removes, once the engine is gone,
# the empty ones it made since, with their empty children.
cgroups_before=()
cgroups_names=()
cgroups_note() {
    cgroups_names=("$@")
    local name
    for name in "$@"; do
        mapfile -t -O "${#cgroups_before[@]}" cgroups_before < <(cgroup_dirs "$name")
    done
}
cgroup_dirs() { find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d -name "$1" 2>/dev/null; }
cgroups_tidy() {
    local name dir
    for name in "${cgroups_names[@]}"; do
        while read -r dir; do
            [[ " ${cgroups_before[*]} " == *" $dir "* ]] && continue
            find "$dir" -depth -type d -exec rmdir {} + 2>/dev/null || true
        done < <(cgroup_dirs "$name")
    done
}

# paths_note PATH...: notes which of the PATHs (places where an engine keeps state whatever
# its options say) exist; paths_tidy removes, once the engine is gone, those it made.
paths_new=()
paths_note() {
    local p
    for p in "$@"; do [[ -e $p ]] || paths_new+=("$p"); done
}
paths_tidy() {
    local p
    for p in "${paths_new[@]}"; do rm -rf "$p"; done
}

# engine_prepare NAME: checks the machine, then makes $work (a mktemp directory), $pool (a
# tmpfs with sample pools), $share (a shared bind mount of its own, as /run is under
# systemd) and $work/image.tar (image_tree's tree). engine_cleanup undoes it all.
engine_prepare() {
    [[ $(id -u) -eq 0 ]] || skip "needs root (engines, mounts)"
    [[ -c /dev/fuse ]] || skip "no /dev/fuse"
    [[ -x $build/kvpfs && -x $build/kvpctl ]] || skip "build kvpfs and kvpctl first"
    work=$(mktemp -d "/tmp/kvpfs-$1.XXXXXX")
    chmod 755 "$work"
    pool=$work/hyperv
    share=$work/share
    mkdir -p "$pool" "$share"
    mount -t tmpfs -o size=4m,mode=0755 "kvpfs-$1-pool" "$pool"
    kvpctl init "$pool" --sample >/dev/null
    mount --bind "$share" "$share"
    mount --make-shared "$share"
    image_tree "$work/rootfs" "$build"
    tar -C "$work/rootfs" -cf "$work/image.tar" .
    rm -rf "$work/rootfs"
}
engine_cleanup() {
    stop_daemons
    cgroups_tidy
    paths_tidy
    [[ -n ${work:-} && -d $work ]] || return 0
    umount_tree "$work"
    rm -rf "$work"
}
