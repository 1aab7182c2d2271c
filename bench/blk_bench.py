#!/usr/bin/env python3
"""virtio-blk throughput of the bundled microkernel's driver, and VM exits per request.

Boots build/guest-kernel/kernel.elf under vmm with a sparse raw image
(default 256 MiB, made by this script) and the control API on a unix socket,
then types `blkbench` commands into the guest shell (docs/guest-drivers.md,
"blkbench"): sequential read, sequential write (then FLUSH), and random
4 KiB reads at queue depth 1 and 4. The benchmark runs inside the driver
process (user/virtio.cc), so it measures the driver, the kernel's IRQ path and
vmm's device, not IPC. Around every run it reads GET /metrics and reports the
exits in that window per virtqueue request: `mmio` exits are the driver's
register accesses (QueueNotify goes through an ioeventfd and is no exit to
vmm); `all` includes the console's (the shell echoes the command and prints
a result line: one port exit per byte) and the timer's. Where vmm's metrics
have per-device virtio counters, the device's notifications (QueueNotify
writes that reached it) and interrupts per request are shown too.

Usage: bench/blk_bench.py [--vmm build/vmm/vmm] [--kernel build/guest-kernel/kernel.elf]
                          [--size 256M] [--runs 5] [--seq-kib 65536] [--reads 2000]
                          [--req-kib 64] [--depth 4] [--smoke]
It is a benchmark, not a test: it asserts only that the guest answered.
--smoke: tiny sizes, one run (a quick check that the script works).
"""
import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def size_bytes(text):
    m = re.fullmatch(r"(\d+)([KMG]?)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {text!r}")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def metrics(sock_path):
    """GET /metrics over the API socket (HTTP/1.1, Connection: close)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET /metrics: {head[:80]!r}")
    return json.loads(body)


def flatten(obj, prefix=""):
    """{"exits": {"io": 3}} -> {"exits.io": 3} (numbers only)."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(flatten(v, f"{prefix}{i}."))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix[:-1]] = obj
    return out


class Guest:
    """vmm with the shell on a pipe; lines collected by a reader thread."""

    def __init__(self, vmm, kernel, image, api):
        self.api = api
        self.proc = subprocess.Popen(
            [vmm, "--kernel", kernel, "--memory", "256M", "--disk", image, "--api-sock", api,
             "--cmdline", "quiet"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                with self.cond:
                    self.lines.append(None)
                    self.cond.notify_all()
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                with self.cond:
                    self.lines.append(line.decode("utf-8", "replace").replace("\r", ""))
                    self.cond.notify_all()

    def wait_for(self, pattern, start, timeout=600):
        deadline = time.time() + timeout
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    if line is None:
                        raise RuntimeError(f"vmm ended waiting for {pattern!r}")
                    m = re.search(pattern, line)
                    if m:
                        return m, i + 1
                    i += 1
                left = deadline - time.time()
                if left <= 0:
                    raise RuntimeError(f"timeout waiting for {pattern!r}")
                self.cond.wait(left)

    def command(self, text, pattern):
        start = len(self.lines)
        self.proc.stdin.write(text.encode() + b"\r")
        self.proc.stdin.flush()
        return self.wait_for(pattern, start)[0]

    def stop(self):
        try:
            self.proc.stdin.write(b"poweroff 0\r")
            self.proc.stdin.flush()
            self.proc.wait(timeout=30)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


RESULT = (r"^blkbench: (\S+) (\d+) requests of (\d+) KiB, depth (\d+): (\d+) us, ([\d.]+) MB/s, "
          r"([\d.]+) IOPS; (\d+) virtqueue requests in (\d+) notifies")


def run_one(guest, cmd):
    before = flatten(metrics(guest.api))
    m = guest.command(cmd, RESULT + r"|^blkbench: failed|^usage: blkbench")
    after = flatten(metrics(guest.api))
    if m.lastindex is None:
        raise RuntimeError(f"{cmd}: {m.group(0)}")
    reqs = int(m.group(8))
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    # vmm's exit counters: "vm.exits_io", "vm.exits_mmio", ... (docs/api.md).
    exits = {e.group(1): v for k, v in delta.items()
             if (e := re.search(r"(?:^|\.)exits[._]([a-z_]+)$", k)) and e.group(1) != "total"}
    mmio = exits.get("mmio", 0)
    total = sum(exits.values())
    # Per-device virtio counters when vmm has them ("virtio.0.interrupts", ...).
    dev = lambda name: sum(v for k, v in delta.items() if re.fullmatch(rf"virtio\.\d+\.{name}", k))
    return {"us": int(m.group(5)), "mbs": float(m.group(6)), "iops": float(m.group(7)),
            "requests": reqs, "notifies": int(m.group(9)), "mmio_per_req": mmio / reqs,
            "exits_per_req": total / reqs, "irqs_per_req": dev("interrupts") / reqs,
            "kicks_per_req": dev("notifications") / reqs, "delta": delta}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vmm", default=os.path.join(ROOT, "build/vmm/vmm"))
    ap.add_argument("--kernel", default=os.path.join(ROOT, "build/guest-kernel/kernel.elf"))
    ap.add_argument("--size", type=size_bytes, default=size_bytes("256M"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seq-kib", type=int, default=65536, help="KiB per sequential run")
    ap.add_argument("--reads", type=int, default=2000, help="4 KiB reads per random run")
    ap.add_argument("--req-kib", type=int, default=64)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--show-metrics", action="store_true", help="print every changed counter")
    args = ap.parse_args()
    if args.smoke:
        args.size, args.runs, args.seq_kib, args.reads = 4 << 20, 1, 1024, 50
    tmp = tempfile.mkdtemp(prefix="blk_bench.")
    image = os.path.join(tmp, "disk.img")
    with open(image, "wb") as f:
        f.truncate(args.size)  # sparse
    api = os.path.join(tmp, "api.sock")
    guest = Guest(args.vmm, args.kernel, image, api)
    try:
        guest.wait_for(r"^\[shell\] ready", 0, timeout=60)
        for _ in range(100):
            if os.path.exists(api):
                break
            time.sleep(0.05)
        benches = [
            ("seq-read", f"blkbench seq-read {args.seq_kib} {args.req_kib} {args.depth}"),
            ("seq-write", f"blkbench seq-write {args.seq_kib} {args.req_kib} {args.depth}"),
            ("rand-read QD1", f"blkbench rand-read {args.reads} 4 1"),
            ("rand-read QD4", f"blkbench rand-read {args.reads} 4 4"),
        ]
        results = {name: [] for name, _ in benches}
        for _ in range(args.runs):  # interleaved: host noise hits every kind alike
            for name, cmd in benches:
                r = run_one(guest, cmd)
                results[name].append(r)
                if args.show_metrics:
                    print(name, json.dumps(r["delta"], sort_keys=True), file=sys.stderr)
        counters = guest.command("virtio", r"^virtio: .*").group(0)
    finally:
        guest.stop()
    print(f"image {args.size >> 20} MiB (sparse), {args.runs} runs, medians; "
          f"sequential {args.seq_kib} KiB in {args.req_kib} KiB requests, depth {args.depth}")
    print("| benchmark | MB/s | IOPS | us per request | mmio exits/request | all exits/request "
          "| device notifications/request | device interrupts/request |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, _ in benches:
        rs = results[name]
        med = lambda key: statistics.median(r[key] for r in rs)
        print(f"| {name} | {med('mbs'):.1f} | {med('iops'):.0f} | "
              f"{med('us') / rs[0]['requests']:.0f} | {med('mmio_per_req'):.2f} | "
              f"{med('exits_per_req'):.2f} | {med('kicks_per_req'):.2f} | "
              f"{med('irqs_per_req'):.2f} |")
    print(counters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
