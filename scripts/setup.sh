#!/usr/bin/env bash
# Installs everything kvpfs needs to build, test and demo on Debian 12 (run as root).
# Idempotent: does nothing when every package is already there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libfuse3-dev fuse3 libboost-filesystem-dev  # (pulls libboost_filesystem.a: linked statically)
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev
  bats util-linux procps psmisc
  clang libclang-rt-14-dev clang-format clang-tidy
  python3 python3-pytest strace dpkg-dev fakeroot man-db lintian debootstrap
  rpm rpmlint cpio
  iproute2 coreutils
  hyperv-daemons
  rsync vim-tiny
  ccache
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# FUSE needs its device; load the module where it is not built in.
if [[ ! -c /dev/fuse ]]; then
  modprobe fuse 2>/dev/null || true
fi
[[ -c /dev/fuse ]] || echo "setup: warning: /dev/fuse is missing; mount tests will fail" >&2
echo "setup: ok"
