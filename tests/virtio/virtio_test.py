#!/usr/bin/env python3
"""End-to-end tests of the bundled microkernel's virtio drivers and vmmfs.

Each case boots build/guest-kernel/kernel.elf under vmm with virtio disks,
drives the guest shell with `sh=` words on the kernel command line (',' is
a space, ';' separates commands), and then checks the serial output and the
disk image on the host (docs/guest-drivers.md, "Tests").

  virtio_test.py --vmm VMM --kernel KERNEL --vmmfs VMMFS --work DIR CASE

Exit status 0 when the case passes; otherwise the reason, the serial output
and vmm's stderr are printed and the status is 1.
"""
import argparse
import os
import re
import select
import socket
import struct
import subprocess
import sys
import time

FORBID = [r"\[panic\]", r"faulted: exception", r"\[irq\] unexpected", r"killed by exception"]


class Failure(Exception):
    pass


def fnv1a(data, h=0x811C9DC5):
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def pattern_byte(p, seed):
    """What `blk fill` writes at disk offset p (guest-kernel/user/virtio.cc)."""
    return (7 * p + p // 512 + seed) & 0xFF


class Harness:
    def __init__(self, args):
        self.vmm = args.vmm
        self.kernel = args.kernel
        self.vmmfs = args.vmmfs
        self.work = os.path.join(args.work, args.case)
        os.makedirs(self.work, exist_ok=True)
        self.log = []

    def path(self, name):
        return os.path.join(self.work, name)

    def image(self, name, size, data=None):
        """A sparse image of `size` bytes, optionally starting with `data`."""
        p = self.path(name)
        with open(p, "wb") as f:
            if data:
                f.write(data)
            f.truncate(size)
        return p

    def command(self, cmdline, disks=(), rng=False, timeout=90, console=None):
        cmd = [self.vmm, "--kernel", self.kernel, "--memory", "128M", "--cmdline", cmdline,
               "--timeout", str(timeout)]
        for d in disks:
            cmd += ["--disk", d]
        if rng:
            cmd.append("--rng")
        if console:
            cmd += ["--console", console]
        return cmd

    def check(self, cmd, status, stdout, stderr, expect_status):
        out = stdout.decode("utf-8", "replace").replace("\r", "")
        self.log.append((" ".join(cmd), status, out, stderr.decode("utf-8", "replace")))
        for pat in FORBID:
            m = re.search(pat, out)
            if m:
                raise Failure(f"forbidden output {pat!r}: {m.group(0)}")
        if status != expect_status:
            raise Failure(f"vmm exited with {status}, expected {expect_status}")
        return out

    def boot(self, cmdline, disks=(), rng=False, timeout=90, expect_status=0, console=None):
        cmd = self.command(cmdline, disks, rng, timeout, console)
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout + 30)
        return self.check(cmd, proc.returncode, proc.stdout, proc.stderr, expect_status)

    def tool(self, *args, expect_status=0):
        proc = subprocess.run([self.vmmfs, *args], capture_output=True)
        if proc.returncode != expect_status:
            raise Failure(f"vmmfs {' '.join(args)}: status {proc.returncode} (expected "
                          f"{expect_status}): {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    @staticmethod
    def find(out, pattern):
        m = re.search(pattern, out, re.M)
        if not m:
            raise Failure(f"no line matches {pattern!r}")
        return m


def expect_irq_driven(out):
    m = Harness.find(out, r"^virtio: (\d+) completions: (\d+) after an IRQ, (\d+) after a "
                          r"timeout; (\d+) timeouts, (\d+) spurious wake-ups, (\d+) interrupt acks")
    total, irq, late, timeouts, _, acks = (int(x) for x in m.groups())
    if total == 0 or irq != total or late != 0 or timeouts != 0 or acks == 0:
        raise Failure(f"completions not all woken by the IRQ: {m.group(0)}")


def case_pattern(h):
    """The guest writes a pattern with multi-sector OUT requests and FLUSH; the host checks it."""
    img = h.image("pattern.img", 4 << 20)
    out = h.boot("sh=blk,fill,8,300,7;virtio;poweroff,0", [img])
    h.find(out, r"^blk: filled sectors 8\+300 seed 7: status 0, flush 0$")
    expect_irq_driven(out)
    data = open(img, "rb").read()
    if any(data[:8 * 512]):
        raise Failure("sectors 0..7 were written")
    for p in range(8 * 512, 308 * 512):
        if data[p] != pattern_byte(p, 7):
            raise Failure(f"byte {p:#x} is {data[p]:#x}, expected {pattern_byte(p, 7):#x}")
    if any(data[308 * 512:]):
        raise Failure("bytes after sector 307 were written")


def case_checksum(h):
    """The guest reads a host-made random image and prints its FNV-1a."""
    data = os.urandom(1 << 20)
    img = h.image("random.img", len(data), data)
    out = h.boot("sh=blk,read,2048;poweroff,0", [img + ",ro"])
    m = h.find(out, r"^blk: 2048 sectors of 2048 fnv1a 0x([0-9a-f]+); sector 0: ([0-9a-f]{32})$")
    if int(m.group(1), 16) != fnv1a(data):
        raise Failure(f"guest fnv1a {m.group(1)}, host {fnv1a(data):#x}")
    if m.group(2) != data[:16].hex():
        raise Failure(f"guest sector 0 {m.group(2)}, host {data[:16].hex()}")


def case_readonly(h):
    """Writes to a read-only disk complete with IOERR (status 1); the image is unchanged."""
    data = os.urandom(64 << 10)
    img = h.image("ro.img", len(data), data)
    out = h.boot("sh=blk,write,3,hello;blk,fill,0,4,1;blk,read,1;poweroff,0", [img + ",ro"])
    h.find(out, r"^\[virtio\] blk at 0xd0000000 irq 5: 128 sectors \(read-only\)$")
    h.find(out, r"^blk: wrote sector 3: status 1, flush -1$")
    h.find(out, r"^blk: filled sectors 0\+4 seed 1: status 1, flush -1$")
    h.find(out, r"^blk: 1 sectors of 128 fnv1a 0x%x;" % fnv1a(data[:512]))
    if open(img, "rb").read() != data:
        raise Failure("the read-only image changed")


def case_rng(h):
    """The entropy service returns random bytes: two reads differ, neither is all zero."""
    out = h.boot("sh=rng,32;rng,32;poweroff,0", rng=True)
    reads = re.findall(r"^\[rng\] 32 random bytes: ([0-9a-f]{64})$", out, re.M)
    if len(reads) != 2:
        raise Failure(f"expected two rng lines, got {len(reads)}")
    if reads[0] == reads[1] or "0" * 64 in reads:
        raise Failure(f"not random: {reads}")


def case_irq(h):
    """Every completion (reads, writes, flushes, rng, random reads) is woken by the IRQ."""
    img = h.image("irq.img", 2 << 20)
    out = h.boot("sh=blk,read,64;blk,fill,0,256,3;rng;blkbench,rand-read,40,4,1;"
                 "blkbench,seq-read,512,64,4;virtio;poweroff,0", [img], rng=True)
    h.find(out, r"^blkbench: rand-read 40 requests of 4 KiB, depth 1:")
    h.find(out, r"^blkbench: seq-read 8 requests of 64 KiB, depth 4:")
    expect_irq_driven(out)


def case_files(h):
    """vmmfs both ways: host put -> guest ls/cat/cksum; guest write/append/rm -> host get/ls."""
    img = h.image("fs.img", 0)
    h.tool("mkfs", img, "2M")
    host_txt = b"first line\nsecond line: vmm\n"
    big = b"".join(b"line %04d of a file larger than one IPC message\n" % i for i in range(80))
    open(h.path("host.txt"), "wb").write(host_txt)
    open(h.path("big.txt"), "wb").write(big)
    h.tool("put", img, h.path("host.txt"))
    h.tool("put", img, h.path("big.txt"))
    h.tool("put", img, h.path("host.txt"), "gone.txt")
    out = h.boot("sh=ls;cat,host.txt;cksum,big.txt;write,guest.txt,hello,from,the,guest;"
                 "append,guest.txt,line,two;rm,gone.txt;sync;ls;poweroff,0", [img])
    h.find(out, r"^\[files\] disk 0: vmmfs, 3 files, \d+ KiB free$")
    h.find(out, r"^host.txt %d fnv1a 0x%08x$" % (len(host_txt), fnv1a(host_txt)))
    h.find(out, r"^vmm> cat host.txt\nfirst line\nsecond line: vmm\nvmm> ")
    h.find(out, r"^cksum: %d bytes fnv1a 0x%08x$" % (len(big), fnv1a(big)))
    h.find(out, r"^write: 21 bytes$")
    h.find(out, r"^append: 9 bytes$")
    h.find(out, r"^rm: ok$")
    h.find(out, r"^sync: ok$")
    h.find(out, r"^ls: 3 files, \d+ KiB free of 2048 KiB$")
    got = h.tool("get", img, "guest.txt")
    if got != b"hello from the guest\nline two\n":
        raise Failure(f"vmmfs get guest.txt: {got!r}")
    h.tool("get", img, "guest.txt", h.path("guest.out"))
    if open(h.path("guest.out"), "rb").read() != got:
        raise Failure("vmmfs get to a file differs")
    h.tool("get", img, "gone.txt", expect_status=66)
    listing = h.tool("ls", img).decode()
    for name in ("host.txt", "big.txt", "guest.txt"):
        if not re.search(r"^%s " % re.escape(name), listing, re.M):
            raise Failure(f"vmmfs ls lacks {name}: {listing}")
    if "gone.txt" in listing:
        raise Failure("gone.txt still listed")


def entry_bytes(name, first, size, alloc, data_sum):
    e = struct.pack("<32sQQIII", name.encode(), first, size, alloc, data_sum, 0)
    return e + struct.pack("<I", fnv1a(e))


def case_files_hostile(h):
    """A hostile directory (overlapping extents, valid checksums) is not mounted; a file whose
    data does not match its checksum is refused by cat; the guest stays up."""
    img = h.image("bad.img", 0)
    h.tool("mkfs", img, "1M")
    open(h.path("a"), "wb").write(b"A" * 1000)
    h.tool("put", img, h.path("a"))
    h.tool("put", img, h.path("a"), "b")
    with open(img, "r+b") as f:
        f.seek(512 + 64)
        f.write(entry_bytes("b", 10, 1000, 2, fnv1a(b"A" * 1000)))  # a is at 9..10
    h.tool("ls", img, expect_status=65)
    out = h.boot("sh=ls;cat,a;poweroff,0", [img])
    h.find(out, r"^\[files\] disk 0: not mounted: directory entry 1: extents overlap$")
    h.find(out, r"^ls: no file system$")
    h.find(out, r"^cat: no file system$")

    img2 = h.image("baddata.img", 0)
    h.tool("mkfs", img2, "1M")
    h.tool("put", img2, h.path("a"))
    with open(img2, "r+b") as f:
        f.seek(9 * 512 + 500)
        f.write(b"B")
    out = h.boot("sh=cat,a;cksum,a;ls;poweroff,0", [img2])
    h.find(out, r"^cat: checksum mismatch \(corrupt file\)$")
    h.find(out, r"^cksum: checksum mismatch \(corrupt file\)$")
    h.find(out, r"^a 1000 fnv1a 0x")

    img3 = h.image("notfs.img", 1 << 20, os.urandom(4096))
    out = h.boot("sh=ls;poweroff,0", [img3])
    h.find(out, r"^\[files\] disk 0: not mounted: bad magic")


def case_tool_cli(h):
    """The vmmfs command line: usage errors, exit statuses, messages (no VM)."""
    def run(*args, status, err=None, stdin=None):
        proc = subprocess.run([h.vmmfs, *args], capture_output=True, input=stdin)
        if proc.returncode != status:
            raise Failure(f"vmmfs {' '.join(args)}: status {proc.returncode}, expected {status}: "
                          f"{proc.stderr.decode(errors='replace')}")
        if err and not re.search(err, proc.stderr.decode(errors="replace")):
            raise Failure(f"vmmfs {' '.join(args)}: stderr lacks {err!r}: {proc.stderr!r}")
        return proc.stdout
    img = h.path("cli.img")
    run(status=64, err="usage: vmmfs mkfs")
    run("frobnicate", status=64, err="unknown command 'frobnicate'")
    run("mkfs", img, status=64, err="mkfs takes IMAGE SIZE")
    run("mkfs", img, "1000", status=64, err="multiple of 512")
    run("mkfs", img, "12Q", status=64, err="unknown suffix")
    run("ls", h.path("missing.img"), status=66, err="missing.img: No such file")
    run("mkfs", img, "64K", status=0)
    if os.path.getsize(img) != 65536:
        raise Failure("mkfs 64K did not make a 64 KiB image")
    run("put", img, h.path("no-such-host-file"), status=66, err="no-such-host-file")
    open(h.path("f.bin"), "wb").write(bytes(range(256)) * 4)
    run("put", img, h.path("f.bin"), "bad/name", status=64, err="file name 'bad/name'")
    run("put", img, h.path("f.bin"), status=0)
    if run("get", img, "f.bin", status=0) != bytes(range(256)) * 4:
        raise Failure("get to stdout differs")
    run("get", img, "nope", status=66, err="no file 'nope'")
    run("get", img, "f.bin", h.path("no-dir/out"), status=73)
    open(h.path("big.bin"), "wb").write(b"x" * 65536)
    run("put", img, h.path("big.bin"), status=73, err="no free extent")
    if not re.search(rb"^f.bin 1024 fnv1a 0x[0-9a-f]{8}\n1 files, ", run("ls", img, status=0), re.M):
        raise Failure("ls output")
    run("rm", img, "f.bin", status=0)
    run("rm", img, "f.bin", status=66)
    with open(img, "r+b") as f:
        f.write(b"XXXX")
    run("ls", img, status=65, err="bad magic")


def case_console_file(h):
    """The guest writes a line to the virtio console; the host finds it in --console file:PATH."""
    path = h.path("console.out")
    if os.path.exists(path):
        os.unlink(path)  # the file backend appends
    text = "hello from the virtio console"
    out = h.boot("sh=vcon,write,%s;vcon;poweroff,0" % text.replace(" ", ","),
                 console="file:" + path)
    h.find(out, r"^\[virtio\] console at 0xd0000000 irq 5: 16 receive buffers of 128 bytes$")
    h.find(out, r"^vcon: wrote %d bytes$" % (len(text) + 1))
    h.find(out, r"^vcon: 0 bytes in, %d bytes out, 0 buffered \(0 ring-full stalls\); \d+ "
                r"interrupts, 0 bad used entries, 0 transmit timeouts$" % (len(text) + 1))
    got = open(path, "rb").read()
    if got != (text + "\n").encode():
        raise Failure(f"console file holds {got!r}")


class PipeReader:
    """wait_for() on a pipe (vmm's stdout, i.e. COM1 with --serial stdio)."""

    def __init__(self, pipe, deadline):
        self.fd = pipe.fileno()
        self.deadline = deadline
        self.data = b""
        self.seen = 0

    def wait_for(self, pattern):
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.data, self.seen)
            if m:
                self.seen = m.end()
                return m
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"serial: no {pattern!r} in {self.data[-400:]!r}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    raise Failure(f"serial closed before {pattern!r}: {self.data[-400:]!r}")
                self.data += chunk


class ConsoleClient:
    """A client of vmm's --console socket:PATH (the backlog first, then live output)."""

    def __init__(self, path, proc, deadline):
        self.deadline = deadline
        # Readiness: vmm listens on the socket before it starts the guest. The file appears
        # at bind(), a moment before listen(): a refused connect is retried.
        while True:
            if proc.poll() is not None:
                raise Failure(f"vmm ended with {proc.returncode} before serving {path}")
            if time.monotonic() > deadline:
                raise Failure(f"cannot connect to the console socket {path}")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                time.sleep(0.02)
        self.data = b""
        self.seen = 0  # wait_for() looks from here on

    def wait_for(self, pattern):
        """Reads until `pattern` (bytes regex) matches output after the last match."""
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.data, self.seen)
            if m:
                self.seen = m.end()
                return m
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"virtio console: no {pattern!r} in {self.data[-400:]!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise Failure(f"virtio console closed before {pattern!r}: {self.data[-400:]!r}")
            self.data += chunk

    def send(self, data):
        self.sock.sendall(data)


def case_console_shell(h):
    """vconsole=shell: a shell on the virtio console, driven through --console socket:PATH.
    A command's output comes back; a 10000-byte paste (more than the receive buffers and the
    driver's input ring hold) arrives whole; every byte value and an overlong line do no harm;
    poweroff typed there ends vmm."""
    sock = h.path("console.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    cmd = h.command("vconsole=shell", console="socket:" + sock, timeout=90)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        c = ConsoleClient(sock, proc, time.monotonic() + 90)
        c.wait_for(rb"\[shell\] ready on the virtio console, type help\r\nvmm> ")
        c.send(b"echo over virtio\r")
        c.wait_for(rb"echo over virtio\r\nover virtio\r\nvmm> ")
        paste = bytes(0x20 + (i * 7 + i // 95) % 95 for i in range(10000))
        c.send(b"sum 10000\r")
        c.wait_for(rb"sum 10000\r\n")
        c.send(paste)
        m = c.wait_for(rb"sum: (\d+) bytes fnv1a 0x([0-9a-f]{8}) in \d+ ms\r\nvmm> ")
        if int(m.group(1)) != len(paste) or int(m.group(2), 16) != fnv1a(paste):
            raise Failure(f"guest {m.group(0)!r}, host {len(paste)} bytes fnv1a {fnv1a(paste):#x}")
        # Every byte value, a line far longer than the shell's, then a real command.
        c.send(bytes(range(256)) * 4 + b"x" * 3000 + b"\x15echo still here\r")
        c.wait_for(rb"\r\nstill here\r\nvmm> ")
        c.send(b"vcon\r")
        m = c.wait_for(rb"vcon: \d+ bytes in, \d+ bytes out, 0 buffered \((\d+) ring-full stalls\); "
                       rb"\d+ interrupts, 0 bad used entries, 0 transmit timeouts")
        print(f"virtio.console_shell: {m.group(0).decode()}")
        # 7000 bytes typed at host speed into a shell that echoes each one: the 4 KiB ring
        # fills, so the stall/restart path (and that nothing was lost across it) was exercised.
        if int(m.group(1)) == 0:
            raise Failure("the input ring never filled: the flow-control path was not exercised")
        c.send(b"poweroff 5\r")
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    out = h.check(cmd, proc.returncode, stdout, stderr, 5)
    h.find(out, r"\[init\] started shell \(virtio console\)$")
    h.find(out, r"\[shell\] running on the virtio console too$")  # may follow "vmm> "
    h.find(out, r"^\[shell\] ready, type help")  # the COM1 shell is still there


def case_console_read(h):
    """The COM1 shell and the virtio console: bytes a socket client sends are held by the
    driver until `vcon read` shows them; `vcon write` reaches the client."""
    sock = h.path("console.sock")
    if os.path.exists(sock):
        os.unlink(sock)
    cmd = h.command("", console="socket:" + sock, timeout=90)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    stdout = b""
    try:
        deadline = time.monotonic() + 90
        serial = PipeReader(proc.stdout, deadline)
        c = ConsoleClient(sock, proc, deadline)
        serial.wait_for(rb"\[virtio\] ready, 1 devices")
        serial.wait_for(rb"\[shell\] ready, type help")

        def com1(line):
            proc.stdin.write(line + b"\r")
            proc.stdin.flush()

        c.send(b"from host\n")
        # Readiness, not a sleep: ask the driver until it has the 10 bytes.
        while True:
            com1(b"vcon")
            m = serial.wait_for(rb"vcon: (\d+) bytes in, [^\r\n]*\r\n")
            if int(m.group(1)) >= 10:
                break
        com1(b"vcon read")
        serial.wait_for(rb"\r\nvcon: read 10 bytes: from host\.\r\n")
        com1(b"vcon read")
        serial.wait_for(rb"\r\nvcon: read 0 bytes: \r\n")
        com1(b"vcon write back to the host")
        serial.wait_for(rb"\r\nvcon: wrote 17 bytes\r\n")
        c.wait_for(rb"^back to the host\n")
        com1(b"poweroff 0")
        rest, stderr = proc.communicate(timeout=60)
        stdout = serial.data + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    h.check(cmd, proc.returncode, stdout, stderr, 0)


def case_console_stdio(h):
    """--console stdio --serial file:PATH, vconsole=shell: input piped in before the guest's
    driver is even up is kept (by vmm's queue, then the driver's buffers) and runs as typed."""
    com1 = h.path("com1.log")
    if os.path.exists(com1):
        os.unlink(com1)
    cmd = h.command("vconsole=shell", console="stdio", timeout=60) + ["--serial", "file:" + com1]
    proc = subprocess.run(cmd, input=b"echo typed ahead\rpoweroff 3\r", capture_output=True,
                          timeout=90)
    out = h.check(cmd, proc.returncode, open(com1, "rb").read(), proc.stderr, 3)
    h.find(out, r"\[shell\] running on the virtio console too$")
    h.find(out, r"\[kernel\] power off by shell pid 7, status 3$")  # may follow "vmm> "
    vcon = proc.stdout.decode("utf-8", "replace")
    if not re.search(r"vmm> echo typed ahead\r\ntyped ahead\r\nvmm> poweroff 3\r\n", vcon):
        raise Failure(f"virtio console output (stdout): {vcon!r}")


CASES = {
    "pattern": case_pattern,
    "checksum": case_checksum,
    "readonly": case_readonly,
    "rng": case_rng,
    "irq": case_irq,
    "files": case_files,
    "files_hostile": case_files_hostile,
    "console_file": case_console_file,
    "console_shell": case_console_shell,
    "console_read": case_console_read,
    "console_stdio": case_console_stdio,
    "tool_cli": case_tool_cli,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vmm", required=True)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--vmmfs", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    args = ap.parse_args()
    h = Harness(args)
    try:
        CASES[args.case](h)
    except (Failure, subprocess.TimeoutExpired, OSError) as e:
        print(f"FAIL virtio.{args.case}: {e}")
        for cmd, status, out, err in h.log[-1:]:
            print(f"--- {cmd}\n--- status {status}; serial output:\n{out}\n--- stderr:\n{err}")
        return 1
    print(f"PASS virtio.{args.case} ({len(h.log)} boots)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
