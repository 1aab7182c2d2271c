#!/usr/bin/env python3
"""The live view with the real vmm and vmm-vnc (docs/framebuffer.md, "Live
view (VNC)"), through a small RFB 3.8 client written here.

Usage: vnc_test.py VMM KBD_PROBE TEST_NAME

starts_and_cleans_up  (no KVM needed) vmm --vnc unix:PATH says where it
                      listens and starts vmm-vnc; when vmm ends (without
                      /dev/kvm: 69; with it: --timeout, 82) the socket file
                      and vmm-vnc are gone
boot_screen_and_keys  (KVM) the probe kernel draws its pattern and echoes
                      the i8042's bytes on COM1: a VNC client sees every
                      pixel of the pattern, and the keys it types arrive as
                      set 1 scancodes
"""
import os
import pathlib
import re
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time

WIDTH, HEIGHT = 160, 120


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def pattern(x, y):
    return ((x * 4) & 0xFF) << 16 | ((y * 4) & 0xFF) << 8 | ((x + y) & 0xFF)


class Rfb:
    """Just enough RFB 3.8: security None, Raw, KeyEvent."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(path)

    def read(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            check(chunk, "the VNC server closed the connection")
            data += chunk
        return data

    def handshake(self):
        check(self.read(12) == b"RFB 003.008\n", "not an RFB 3.8 server")
        self.sock.sendall(b"RFB 003.008\n")
        count = self.read(1)[0]
        types = self.read(count)
        check(1 in types, f"no security type None in {list(types)}")
        self.sock.sendall(b"\x01")
        check(struct.unpack(">I", self.read(4))[0] == 0, "security handshake failed")
        self.sock.sendall(b"\x01")  # shared
        width, height = struct.unpack(">HH", self.read(4))
        self.read(16)  # the server's pixel format
        name = self.read(struct.unpack(">I", self.read(4))[0])
        # 32 bpp, depth 24, little-endian, true colour, XRGB; Raw only.
        self.sock.sendall(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255,
                                      16, 8, 0))
        self.sock.sendall(struct.pack(">BxHi", 2, 1, 0))
        return width, height, name

    def frame(self, width, height):
        self.sock.sendall(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
        kind, count = struct.unpack(">BxH", self.read(4))
        check(kind == 0, f"message {kind}, not a FramebufferUpdate")
        pixels = {}
        for _ in range(count):
            x, y, w, h, encoding = struct.unpack(">HHHHi", self.read(12))
            check(encoding == 0, f"encoding {encoding}, not Raw")
            data = self.read(w * h * 4)
            for row in range(h):
                for col in range(w):
                    (value,) = struct.unpack_from("<I", data, (row * w + col) * 4)
                    pixels[(x + col, y + row)] = value & 0xFFFFFF
        return pixels

    def key(self, keysym, down):
        self.sock.sendall(struct.pack(">BBxxI", 4, 1 if down else 0, keysym))


def start_and_clean_up(vmm, probe, tmp):
    sock = tmp / "screen.sock"
    run = subprocess.run([vmm, "--kernel", probe, "--framebuffer", f"{WIDTH}x{HEIGHT}",
                          "--vnc", f"unix:{sock}", "--log-level", "info", "--timeout", "2",
                          "--serial", "none"],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    match = re.search(r"vnc: the live view listens on unix:(\S+) \(vmm-vnc pid (\d+)", run.stderr)
    check(match, f"no 'listens on' line:\n{run.stderr}")
    check(match.group(1) == str(sock), f"listens on {match.group(1)}, not {sock}")
    # Without KVM vmm stops at /dev/kvm (69); with it the probe waits for
    # Esc until --timeout (82).
    want = 82 if os.access("/dev/kvm", os.R_OK | os.W_OK) else 69
    check(run.returncode == want, f"status {run.returncode}, want {want}:\n{run.stderr}")
    check(not sock.exists(), f"{sock} is left behind")
    pid = int(match.group(2))
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    check(not os.path.exists(f"/proc/{pid}"), f"vmm-vnc {pid} still runs after vmm ended")
    check("seccomp" not in run.stderr, f"a seccomp line:\n{run.stderr}")


def boot_screen_and_keys(vmm, probe, tmp):
    sock = tmp / "screen.sock"
    proc = subprocess.Popen([vmm, "--kernel", probe, "--framebuffer", f"{WIDTH}x{HEIGHT}",
                             "--vnc", f"unix:{sock}", "--timeout", "120", "--serial", "stdio"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    output = b""
    try:
        deadline = time.monotonic() + 90
        while b"kbd-probe: ready" not in output:
            check(time.monotonic() < deadline, f"no ready line: {output!r}")
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 4096)
                check(chunk, f"vmm ended early: {output!r} {proc.stderr.read()!r}")
                output += chunk
        client = Rfb(str(sock))
        width, height, name = client.handshake()
        check((width, height) == (WIDTH, HEIGHT), f"screen {width}x{height}")
        check(name == b"vmm", f"desktop name {name!r}")
        pixels = client.frame(width, height)
        for y in range(HEIGHT):
            for x in range(WIDTH):
                got = pixels.get((x, y))
                check(got == pattern(x, y),
                      f"pixel ({x}, {y}) is {got!r}, the guest drew {pattern(x, y):#08x}")
        # a, Shift+A, Up, Esc: XK_a, XK_Shift_L, XK_A, XK_Up, XK_Escape.
        for keysym in (0x61,):
            client.key(keysym, True)
            client.key(keysym, False)
        client.key(0xFFE1, True)
        client.key(0x41, True)
        client.key(0x41, False)
        client.key(0xFFE1, False)
        client.key(0xFF52, True)
        client.key(0xFF52, False)
        client.key(0xFF1B, True)
        client.key(0xFF1B, False)
        rest, err = proc.communicate(timeout=60)
        output += rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = output.decode(errors="replace")
    check("1E 9E 2A 1E 9E AA E0 48 E0 C8 01 81" in text, f"keys on COM1: {text!r}")
    check("kbd-probe: done" in text, f"no done line: {text!r}")
    check(proc.returncode == 0, f"vmm ended with {proc.returncode}: {err!r}")


def main():
    vmm, probe, name = sys.argv[1:4]
    with tempfile.TemporaryDirectory(prefix="vmm-vnc-test-") as tmp:
        try:
            {"starts_and_cleans_up": start_and_clean_up,
             "boot_screen_and_keys": boot_screen_and_keys}[name](vmm, probe, pathlib.Path(tmp))
        except Failure as failure:
            print(f"FAIL: {failure}", file=sys.stderr)
            return 1
    print(f"ok: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
