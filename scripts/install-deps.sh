#!/bin/sh
# Installs the Debian packages vmm needs to build and test, if any is missing.
# Used by `make run` and `make test` (README contract), and by `make fuzz`
# with its own list. Needs root for apt-get.
set -eu

PACKAGES="build-essential cmake ninja-build pkg-config linux-libc-dev libasio-dev \
libspdlog-dev libfmt-dev libgtest-dev googletest libcli11-dev nlohmann-json3-dev \
python3 qemu-system-x86 linux-image-amd64 memtest86+ zstd liblzma-dev zlib1g-dev \
clang-format clang-tidy-16 gcovr gdb acpica-tools libexpat1-dev libpng-dev libseccomp-dev \
libvncserver-dev"
# With arguments, those packages instead (`make fuzz` asks for its compiler
# and the libFuzzer runtime, which `make test` does not need).
if [ $# -gt 0 ]; then
  PACKAGES="$*"
fi

missing=""
for p in $PACKAGES; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: not root; run as root or install these packages:$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
