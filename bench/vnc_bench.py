#!/usr/bin/env python3
"""What the live view costs the host while the guest runs: CPU time of
vmm-vnc (docs/framebuffer.md, "Live view (VNC)") with no client, with one
idle client, and with one client while the screen changes.

vmm-vnc is started the way vmm starts it (the framebuffer's memfd, a
listening Unix socket and a SOCK_SEQPACKET key socket), on a
1024x768 framebuffer this script owns, so no KVM is needed. The client
behaves like vncviewer: after the first full frame it keeps one incremental
FramebufferUpdateRequest outstanding, sending the next as soon as an update
arrives. "changing" rewrites 16 rows of the screen every 30 ms. The figure is
vmm-vnc's utime+stime over the window (from /proc/PID/stat), as a share of
one core: on a host with fewer free cores than vCPUs + 1 it is what the
guest loses; the guest's own instructions per second with and without a
client need KVM (bench/boot_bench.py's machine).

Usage: bench/vnc_bench.py [--vnc build/vmm/vmm-vnc] [--seconds 10] [--runs 3]
It is a benchmark, not a test.
"""
import argparse
import mmap
import os
import socket
import statistics
import struct
import subprocess
import tempfile
import threading
import time

WIDTH, HEIGHT = 1024, 768
PITCH = WIDTH * 4


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Client:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.updates = 0
        self.stop = False

    def read(self, n):
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return bytes(data)

    def handshake(self):
        self.read(12)
        self.sock.sendall(b"RFB 003.008\n")
        self.read(self.read(1)[0])
        self.sock.sendall(b"\x01")
        self.read(4)
        self.sock.sendall(b"\x01")
        self.read(20)
        self.read(struct.unpack(">I", self.read(4))[0])
        # Raw, 32 bpp: what costs the server least per pixel sent.
        self.sock.sendall(struct.pack(">BxHi", 2, 1, 0))

    def request(self, incremental):
        self.sock.sendall(struct.pack(">BBHHHH", 3, incremental, 0, 0, WIDTH, HEIGHT))

    def run(self):
        try:
            self.request(0)
            while not self.stop:
                _, count = struct.unpack(">BxH", self.read(4))
                for _ in range(count):
                    _, _, w, h, _ = struct.unpack(">HHHHi", self.read(12))
                    self.read(w * h * 4)
                self.updates += 1
                self.request(1)
        except (EOFError, OSError):
            pass  # vmm-vnc ended at the end of the window


def measure(vnc, seconds, clients, changing):
    fd = os.memfd_create("bench-framebuffer")
    os.ftruncate(fd, PITCH * HEIGHT)
    pixels = mmap.mmap(fd, PITCH * HEIGHT)
    pixels[:] = bytes(range(256)) * (PITCH * HEIGHT // 256)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "vnc.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(8)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        proc = subprocess.Popen(
            [vnc, "--framebuffer-fd", str(fd), "--width", str(WIDTH), "--height", str(HEIGHT),
             "--pitch", str(PITCH), "--listen-fd", str(listener.fileno()), "--keys-fd",
             str(theirs.fileno()), "--log-level", "warn"],
            pass_fds=(fd, listener.fileno(), theirs.fileno()))
        ours.recv(8)  # ready
        workers = []
        for _ in range(clients):
            client = Client(path)
            client.handshake()
            thread = threading.Thread(target=client.run, daemon=True)
            thread.start()
            workers.append(client)
        time.sleep(0.5)  # the first full frames
        start_cpu, start = cpu_seconds(proc.pid), time.monotonic()
        row = 0
        while time.monotonic() - start < seconds:
            if changing:
                for y in range(row, row + 16):
                    offset = (y % HEIGHT) * PITCH
                    pixels[offset:offset + PITCH] = os.urandom(PITCH)
                row += 16
            time.sleep(0.03)
        cpu = cpu_seconds(proc.pid) - start_cpu
        elapsed = time.monotonic() - start
        updates = sum(c.updates for c in workers)
        for c in workers:
            c.stop = True
        ours.close()
        proc.wait(timeout=10)
        return cpu / elapsed * 100, updates / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--vnc", default="build/vmm/vmm-vnc")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"vmm-vnc, {WIDTH}x{HEIGHT}, {args.seconds:g} s windows, median of {args.runs} runs")
    for name, clients, changing in (("no client", 0, False), ("one idle client", 1, False),
                                    ("one client, screen changing", 1, True)):
        results = [measure(args.vnc, args.seconds, clients, changing) for _ in range(args.runs)]
        cpu = statistics.median(r[0] for r in results)
        rate = statistics.median(r[1] for r in results)
        print(f"{name:32s} {cpu:6.2f}% of one core   {rate:7.1f} updates/s")


if __name__ == "__main__":
    main()
