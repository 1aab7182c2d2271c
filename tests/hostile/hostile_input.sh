#!/bin/sh
# Hostile command-line and file input to the real vmm binary: each case must
# end with the documented exit status and a message naming the culprit, never
# with a crash (134) or a hang. Usage: hostile_input.sh VMM [KERNEL]
# (KERNEL: a bootable image, for the initrd cases, which need the kernel to load)
set -u
vmm=$1
kernel=${2:-}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0

# expect STATUS TEXT ARGS...: vmm ARGS exits with STATUS and stderr holds TEXT.
expect() {
  want=$1 text=$2
  shift 2
  timeout 20 "$vmm" "$@" >/dev/null 2>"$dir/err" </dev/null
  got=$?
  if [ "$got" -ne "$want" ] || ! grep -qF -- "$text" "$dir/err"; then
    echo "FAIL: vmm $* -> $got (want $want with '$text'):" >&2
    cat "$dir/err" >&2
    failures=$((failures + 1))
  else
    echo "ok: vmm $* -> $got"
  fi
}

truncate -s 64G "$dir/sparse.img"
printf 'not an image' >"$dir/small"

expect 65 "$dir/sparse.img" --kernel "$dir/sparse.img"
expect 65 "68719476736 bytes" --kernel "$dir/sparse.img"
expect 66 "not a regular file" --kernel /dev/zero
expect 78 "/dev/zero" --config /dev/zero
if [ -n "$kernel" ]; then
  # The initrd is refused by its size before a byte is read (issue 16 finding 4).
  expect 65 "initrd $dir/sparse.img: 68719476736 bytes is larger" --kernel "$kernel" \
    --initrd "$dir/sparse.img"
  expect 66 "initrd /dev/zero: not a regular file" --kernel "$kernel" --initrd /dev/zero
fi
truncate -s 2M "$dir/big.json"
expect 78 "$dir/big.json" --config "$dir/big.json"
printf '{"kernel": "k\\u0000x"}' >"$dir/nul.json"
expect 78 "field 'kernel'" --config "$dir/nul.json"
printf '{"kernel": "k", "timeout": 1e19}' >"$dir/timeout.json"
expect 78 "field 'timeout'" --config "$dir/timeout.json"
expect 64 "--timeout: 1e+19 is not" --kernel "$dir/small" --timeout 1e19
for t in nan inf -1 1000000001; do
  expect 64 "--timeout: $t" --kernel "$dir/small" --timeout "$t"
done
expect 64 "--boot-protocol" --kernel "$dir/small" --boot-protocol uefi
expect 64 "--cpu-template" --kernel "$dir/small" --cpu-template fast
expect 64 "--console tcp:1" --kernel "$dir/small" --console tcp:1
expect 64 "--serial pty" --kernel "$dir/small" --serial pty
expect 64 "--vnc: 'foo' is not a VNC address" --kernel "$dir/small" --vnc foo
expect 64 "--vnc: ':99999' has no display number" --kernel "$dir/small" --vnc :99999
expect 64 "--vnc: 'localhost' is not an IPv4 address" --kernel "$dir/small" --vnc localhost:1
printf '{"kernel": "k", "vnc": ":x"}' >"$dir/vnc.json"
expect 78 "field 'vnc'" --config "$dir/vnc.json"
if [ -n "$kernel" ]; then
  # Said before the guest runs (and before /dev/kvm is opened).
  expect 64 "--vnc: the guest has no framebuffer" --kernel "$kernel" --framebuffer off --vnc :1
fi

[ "$failures" -eq 0 ] || { echo "$failures case(s) failed" >&2; exit 1; }
