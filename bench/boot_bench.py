#!/usr/bin/env python3
"""Boot benchmark: vmm vs QEMU microvm on the same guest, side by side.

Boots the bundled kernel with `exit=0` N times with vmm and N times with
`qemu-system-x86_64 -M microvm -enable-kvm`, interleaved (vmm, qemu, vmm, ...)
so both see the same machine noise, and prints medians of

  - exec -> first serial byte (the guest's first byte on stdout)
  - exec -> exit (process end)
  - peak RSS of the process (VmHWM from /proc/PID/status, polled every
    millisecond until the process ends: wait4's ru_maxrss would count the
    benchmark's own Python pages, which the child had before it exec'd)
  - for vmm, peak RSS minus guest RAM the guest touched (vmm logs both at
    --log-level info; QEMU gives no such split)

Usage: bench/boot_bench.py [--runs 20] [--vmm build/vmm/vmm]
                           [--kernel build/guest-kernel/kernel.elf] [--markdown]
It is a benchmark, not a test: it asserts nothing. Results: docs/benchmarks.md.
"""
import argparse
import os
import re
import select
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(argv, env=None):
    """Runs argv; returns (ms to first stdout byte, ms to exit, maxrss KiB, status, stderr)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    first = None
    hwm = 0
    err = b""
    fds = {proc.stdout.fileno(): "out", proc.stderr.fileno(): "err"}
    while fds:
        hwm = max(hwm, read_hwm(proc.pid))
        ready, _, _ = select.select(list(fds), [], [], 0.001)
        if not ready:
            if time.perf_counter() - start > 30:
                proc.kill()
                break
            continue
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                del fds[fd]
                continue
            if fds[fd] == "out" and first is None:
                first = (time.perf_counter() - start) * 1000
            if fds[fd] == "err":
                err += data
    _, status, usage = os.wait4(proc.pid, 0)
    end = (time.perf_counter() - start) * 1000
    return first, end, hwm, os.waitstatus_to_exitcode(status), err.decode(errors="replace")


def read_hwm(pid):
    """VmHWM of a live process in KiB, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--vmm", default=os.path.join(ROOT, "build/vmm/vmm"))
    parser.add_argument("--kernel", default=os.path.join(ROOT, "build/guest-kernel/kernel.elf"))
    parser.add_argument("--qemu", default="qemu-system-x86_64")
    parser.add_argument("--memory", default="128M")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()

    vmm_cmd = [args.vmm, "--kernel", args.kernel, "--cmdline", "exit=0", "--memory", args.memory,
               "--log-level", "info"]
    qemu_cmd = [args.qemu, "-M", "microvm", "-enable-kvm", "-m", args.memory, "-nodefaults",
                "-no-user-config", "-nographic", "-serial", "stdio", "-device",
                "isa-debug-exit,iobase=0xf4,iosize=4", "-no-reboot", "-kernel", args.kernel,
                "-append", "exit=0"]
    results = {"vmm": [], "qemu": []}
    for i in range(args.runs):
        for name, cmd, ok in (("vmm", vmm_cmd, 0), ("qemu", qemu_cmd, 1)):
            first, end, rss, status, err = run(cmd)
            guest = None
            m = re.search(r"guest RAM resident (\d+) KiB", err)
            if m:
                guest = int(m.group(1))
            if status != ok:
                print(f"warning: {name} run {i} exited {status}: {err.strip()[-200:]}",
                      file=sys.stderr)
            results[name].append((first, end, rss, guest))

    def col(name, k):
        return median([r[k] for r in results[name]])

    vmm_overhead = median([r[2] - r[3] for r in results["vmm"] if r[3] is not None])
    rows = [
        ("exec -> first serial byte (ms)", col("vmm", 0), col("qemu", 0)),
        ("exec -> exit (ms)", col("vmm", 1), col("qemu", 1)),
        ("peak RSS (KiB)", col("vmm", 2), col("qemu", 2)),
    ]
    if args.markdown:
        print(f"| median of {args.runs} | vmm | QEMU microvm | QEMU / vmm |")
        print("| --- | ---: | ---: | ---: |")
        for label, v, q in rows:
            print(f"| {label} | {v:.1f} | {q:.1f} | {q / v:.1f}x |")
        print(f"| vmm peak RSS minus guest RAM touched (KiB) | {vmm_overhead:.0f} | | |")
    else:
        print(f"{'median of ' + str(args.runs):38} {'vmm':>10} {'qemu':>10} {'qemu/vmm':>9}")
        for label, v, q in rows:
            print(f"{label:38} {v:10.1f} {q:10.1f} {q / v:8.1f}x")
        print(f"{'vmm peak RSS - guest RAM touched (KiB)':38} {vmm_overhead:10.0f}")


if __name__ == "__main__":
    main()
