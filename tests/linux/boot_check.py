#!/usr/bin/env python3
"""Boot tests of real kernels through vmm (CTest label `linux`).

Runs a command (vmm with its arguments), reads the guest's serial output on
its stdout line by line, and stops the command as soon as every pattern has
matched (order free: Linux prints its e820 map and command line in an order
that differs between boot paths). Prints, whatever the result, how far the
guest got: elapsed time to each match, the number of serial lines and the
last line seen.

Usage:
  boot_check.py extract BOOT_GLOB OUT
      extract the vmlinux from the newest bzImage matching BOOT_GLOB into OUT
      (the CTest fixture; skips work when OUT is newer than the bzImage).
  boot_check.py run [--timeout S] [--need-file F] [--expect-status N]
                    [--pattern REGEX]... -- COMMAND...
      exit 0 when all patterns matched (and, with --expect-status, the
      command ended by itself with that status), 1 otherwise, 77 (CTest's
      SKIP_RETURN_CODE) when --need-file names a file that does not exist.
"""
import argparse
import glob
import os
import re
import selectors
import signal
import subprocess
import sys
import time

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))


def extract(boot_glob, out):
    images = sorted(glob.glob(boot_glob), key=os.path.getmtime)
    if not images:
        print(f"SKIP: no kernel matches {boot_glob} (install linux-image-amd64); "
              "the Linux boot tests will skip", flush=True)
        return 0  # the dependent tests skip themselves on the missing file
    src = images[-1]
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
        print(f"{out} is up to date with {src}")
        return 0
    start = time.monotonic()
    subprocess.run([sys.executable, os.path.join(HERE, "extract_vmlinux.py"), src, out],
                   check=True)
    print(f"extracted {out} from {src} in {time.monotonic() - start:.1f} s")
    return 0


def run(args):
    for f in args.need_file or []:
        if not os.path.exists(f):
            print(f"SKIP: {f} does not exist (no /boot/vmlinuz-* on this machine?)", flush=True)
            return SKIP
    patterns = [re.compile(p) for p in args.pattern or []]
    print("command:", " ".join(args.command), flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(args.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    matched = {}
    buffers = {"out": b"", "err": b""}
    lines = 0
    last = ""
    first_byte = None
    stopped_by_us = False
    open_streams = 2
    while open_streams:
        remaining = args.timeout - (time.monotonic() - start)
        if remaining <= 0:
            break
        for key, _ in sel.select(timeout=min(remaining, 1.0)):
            chunk = os.read(key.fileobj.fileno(), 65536)
            if not chunk:
                sel.unregister(key.fileobj)
                open_streams -= 1
                continue
            if key.data == "err":
                sys.stderr.buffer.write(chunk)
                continue
            if first_byte is None:
                first_byte = time.monotonic() - start
            buffers["out"] += chunk
            *complete, buffers["out"] = buffers["out"].split(b"\n")
            for raw in complete:
                line = raw.decode("utf-8", "replace").rstrip("\r")
                lines += 1
                last = line
                print(f"serial: {line}")
                for i, p in enumerate(patterns):
                    if i not in matched and p.search(line):
                        matched[i] = time.monotonic() - start
        if len(matched) == len(patterns) and args.expect_status is None:
            stopped_by_us = True
            break
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    elapsed = time.monotonic() - start
    status = proc.returncode
    name = os.path.basename(args.command[0])  # vmm, or qemu-system-x86_64 (tests/qemu)
    print("---- how far it got ----")
    print(f"elapsed {elapsed:.1f} s, first serial byte "
          f"{'never' if first_byte is None else f'{first_byte:.1f} s'}, {lines} serial lines")
    print(f"last line: {last}")
    for i, p in enumerate(patterns):
        where = f"{matched[i]:.1f} s" if i in matched else "NOT MATCHED"
        print(f"  {where:>12}  {p.pattern}")
    ok = len(matched) == len(patterns)
    if stopped_by_us:
        print(f"all patterns matched; {name} stopped by the test")
    else:
        print(f"{name} ended with status {status}")
        if args.expect_status is not None and status != args.expect_status:
            print(f"FAIL: expected status {args.expect_status}")
            ok = False
    if not ok:
        print("FAIL")
    return 0 if ok else 1


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "extract":
        if len(sys.argv) != 4:
            sys.exit(__doc__)
        return extract(sys.argv[2], sys.argv[3])
    if len(sys.argv) < 2 or sys.argv[1] != "run":
        sys.exit(__doc__)
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--need-file", action="append")
    parser.add_argument("--expect-status", type=int)
    parser.add_argument("--pattern", action="append")
    parser.add_argument("command", nargs="+")
    return run(parser.parse_args(sys.argv[2:]))


if __name__ == "__main__":
    sys.exit(main())
