#!/bin/sh
# Counts the guest instructions of one IPC round trip (the shell's Call to
# the echo service and echo's ReplyRecv back) by single-stepping the kernel
# under QEMU TCG with gdb (docs/ipc.md, "Instructions on the path").
# Usage: count-ipc-path.sh BUILD_DIR   (needs qemu-system-x86_64, gdb, objdump)
set -eu
build=${1:-build}
kernel=$build/guest-kernel/kernel.elf
shell_elf=$build/guest-kernel/user/shell.elf
port=${PORT:-12345}
# The `syscall` of ipcbench's timed Call: the first `mov $0x2,%eax` (kSysCall)
# after an rdtsc, and the syscall that follows it.
sys=$(objdump -d --no-show-raw-insn "$shell_elf" |
  awk '/rdtsc/{f=1} f && /mov +\$0x2,%eax/{g=1} g && /syscall/{print $1; exit}' | tr -d :)
[ -n "$sys" ] || { echo "cannot find the Call in IpcBench" >&2; exit 1; }
next=$(printf '0x%x' $((0x$sys + 2)))
# Other programs link at the same addresses: the breakpoint only stops on
# the Call's registers (RAX = kSysCall, tag 0); `next` must not start an
# instruction in another program (checked below).
for prog in init namesvc echo; do  # what runs during `sh=ipcbench`
  other=$build/guest-kernel/user/$prog.elf
  if objdump -d --no-show-raw-insn "$other" | grep -q "^  ${next#0x}:"; then
    echo "warning: $next is also an instruction in $other: the count may stop there" >&2
  fi
done
script=$(mktemp)
cat > "$script" <<GDB
set pagination off
set confirm off
target remote :$port
hbreak *0x$sys if \$rax == 2 && \$rsi == 0 && \$r10 == 0
continue
continue
continue
delete
set \$n = 0
set \$kern = 0
while \$pc != $next
  stepi
  set \$n = \$n + 1
  if \$pc > 0xffff800000000000
    set \$kern = \$kern + 1
  end
end
printf "round trip (third Call of ipcbench): %d instructions, %d in the kernel, %d in user mode\n", \$n, \$kern, \$n - \$kern
kill
quit
GDB
qemu-system-x86_64 -M microvm -accel tcg -nodefaults -no-user-config -nographic \
  -serial null -device isa-debug-exit,iobase=0xf4,iosize=4 -no-reboot \
  -kernel "$kernel" -append "sh=ipcbench,5;poweroff,0" -gdb tcp::$port -S &
sleep 1
gdb -batch -x "$script" "$shell_elf" 2>/dev/null | grep '^round trip'
rm -f "$script"
