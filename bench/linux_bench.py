#!/usr/bin/env python3
"""Debian's vmlinux under vmm and under QEMU microvm, side by side.

Measures, per run, from exec:
  version  -- the first serial line with "Linux version"
  furthest -- the time of the last serial line printed within --budget
              seconds, and that line (how far the kernel got)
Runs are interleaved (vmm, qemu, vmm, qemu, ...) so a change in host load hits
both alike; prints medians of --runs and a Markdown table (docs/linux.md).

Same kernel, same command line, same memory, and the same CPU features as far
as QEMU's -cpu flags allow: `-cpu host` minus what vmm's `emulated` template
(vmm/cpu_template.cc) hides. QEMU enters the vmlinux through its PVH note;
vmm is measured through PVH too (and, with --vmm-protocol elf64, the 64-bit
path).

With --bzimage PATH the peers boot the bzImage instead: vmm unpacking it on
the host (--boot-protocol bzimage-unpacked), vmm running the kernel's own
decompressor (--boot-protocol bzimage), and QEMU microvm with -kernel bzImage
(its decompressor too). --until-version ends each run at the version line.

Usage: linux_bench.py --vmm build/vmm/vmm --vmlinux build-linux/tests/linux/vmlinux
                      [--runs 5] [--budget 120] [--memory 512M]
       linux_bench.py --vmm build/vmm/vmm --bzimage /boot/vmlinuz-... --until-version
This is a benchmark, not a test: on this host (a software KVM, ~0.6 us per
guest instruction) one run takes minutes.
"""
import argparse
import os
import selectors
import signal
import statistics
import subprocess
import sys
import time

CMDLINE = "console=ttyS0 earlyprintk=serial,ttyS0,115200 vmmbench=1"

# What vmm's emulated template hides, in QEMU's names (leaf 1 ECX, leaf 7,
# leaf 0xd, 0x80000001). Flags the host does not have are harmless.
QEMU_HIDDEN = [
    "sse3", "pclmulqdq", "ssse3", "fma", "cx16", "pcid", "sse4.1", "sse4.2", "movbe",
    "popcnt", "aes", "xsave", "avx", "f16c", "rdrand",
    "fsgsbase", "bmi1", "hle", "avx2", "smep", "bmi2", "erms", "invpcid", "rtm", "mpx",
    "avx512f", "avx512dq", "rdseed", "adx", "smap", "avx512ifma", "clflushopt", "clwb",
    "avx512cd", "sha-ni", "avx512bw", "avx512vl", "umip", "pku", "waitpkg",
    "avx512vbmi", "avx512vbmi2", "gfni", "vaes", "vpclmulqdq", "avx512vnni", "avx512bitalg",
    "avx512-vpopcntdq", "rdpid", "fsrm", "xsaveopt", "xsavec", "xgetbv1", "xsaves",
    "abm", "sse4a", "misalignsse", "3dnowprefetch", "xop", "fma4", "tbm", "mmxext",
    "3dnowext", "3dnow", "avx-vnni", "serialize", "movdiri", "movdir64b",
]


def vmm_command(args, kernel, protocol):
    return [args.vmm, "--kernel", kernel, "--boot-protocol", protocol, "--memory",
            args.memory, "--cmdline", CMDLINE, "--timeout", str(args.budget + 30)]


def qemu_command(args, kernel):
    cpu = "host," + ",".join(f"-{f}" for f in QEMU_HIDDEN)
    return ["qemu-system-x86_64", "-M", "microvm", "-enable-kvm", "-cpu", cpu, "-m",
            args.memory, "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", "stdio", "-kernel", kernel, "-append", CMDLINE]


def one_run(command, budget, until_version=False):
    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    version = None
    last_time, last_line = None, ""
    pending = b""
    while True:
        remaining = budget - (time.monotonic() - start)
        if remaining <= 0:
            break
        if not sel.select(timeout=min(remaining, 1.0)):
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        now = time.monotonic() - start
        for raw in lines:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            if version is None and "Linux version" in line:
                version = now
            last_time, last_line = now, line
        if until_version and version is not None:
            break
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return version, last_time, last_line


def fmt(seconds):
    return "-" if seconds is None else f"{seconds:.1f} s"


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vmm", default="build/vmm/vmm")
    parser.add_argument("--vmlinux", default="build/tests/linux/vmlinux")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--budget", type=float, default=120,
                        help="seconds each run may take (furthest point within it)")
    parser.add_argument("--memory", default="512M")
    parser.add_argument("--vmm-protocol", default="pvh", choices=["pvh", "elf64"])
    parser.add_argument("--bzimage", help="boot this bzImage instead of --vmlinux (see above)")
    parser.add_argument("--until-version", action="store_true",
                        help="end each run at the version line")
    args = parser.parse_args()
    if args.bzimage:
        peers = {"vmm (bzimage-unpacked)": vmm_command(args, args.bzimage, "bzimage-unpacked"),
                 "vmm (bzimage)": vmm_command(args, args.bzimage, "bzimage"),
                 "qemu microvm (bzImage)": qemu_command(args, args.bzimage)}
    else:
        peers = {f"vmm ({args.vmm_protocol})": vmm_command(args, args.vmlinux, args.vmm_protocol),
                 "qemu microvm": qemu_command(args, args.vmlinux)}
    results = {name: [] for name in peers}
    for run in range(args.runs):
        for name, command in peers.items():
            version, last_time, last_line = one_run(command, args.budget, args.until_version)
            results[name].append((version, last_time, last_line))
            print(f"run {run + 1} {name}: version {fmt(version)}, furthest {fmt(last_time)}: "
                  f"{last_line[:100]}", flush=True)
    print()
    print(f"| {'peer':<22} | exec → version line | exec → furthest line | furthest line (last run) |")
    print("| --- | --- | --- | --- |")
    for name, rows in results.items():
        print(f"| {name:<22} | {fmt(median([r[0] for r in rows]))} | "
              f"{fmt(median([r[1] for r in rows]))} | `{rows[-1][2][:80]}` |")
    print(f"\nmedians of {args.runs} interleaved runs, budget {args.budget:.0f} s each, "
          f"memory {args.memory}, cmdline \"{CMDLINE}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
