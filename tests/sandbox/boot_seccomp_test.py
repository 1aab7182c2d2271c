#!/usr/bin/env python3
"""The real vmm booting the bundled kernel under its seccomp filters (label
"kvm"; run under tests/needs_kvm.py, so without /dev/kvm they skip with 77).

Usage: boot_seccomp_test.py VMM KERNEL DISK_IMAGE TEST_NAME

full_boot_kill   every device (virtio-blk read-write, rng, console, serial
                 to a file) and the API in kill mode: the guest's virtio
                 commands and the API calls work, vmm ends 0, no violation
violate:KIND     the test hook makes a KIND thread call getpriority: vmm
                 ends with 83 and the one line naming KIND
"""
import http.client
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

VIRTIO_CMDLINE = "sh=blk,read,1;blk,write,3,hello;blk,read,8;rng;virtio;poweroff,0"


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def api(path, method, url, body=None):
    conn = UnixHTTPConnection(str(path))
    conn.request(method, url, body=body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, (json.loads(data) if data else None)


def wait_for(path, seconds=30):
    deadline = time.monotonic() + seconds
    while not path.exists():
        check(time.monotonic() < deadline, f"{path} did not appear")
        time.sleep(0.05)


def base_command(vmm, kernel, tmp, disk, cmdline, timeout):
    return [vmm, "--kernel", kernel, "--cmdline", cmdline, "--disk", str(disk), "--rng",
            "--serial", f"file:{tmp}/serial.log", "--console", f"file:{tmp}/console.log",
            "--api-sock", f"{tmp}/api.sock", "--timeout", str(timeout), "--seccomp", "kill"]


def test_full_boot_kill(vmm, kernel, disk, tmp):
    # First the API on a guest that idles (hang), then a full virtio run.
    proc = subprocess.Popen(base_command(vmm, kernel, tmp, disk, "hang", 60),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sock = pathlib.Path(tmp) / "api.sock"
    wait_for(sock)
    status, info = api(sock, "GET", "/vm")
    check(status == 200 and "state" in info, f"GET /vm: {status} {info}")
    status, metrics = api(sock, "GET", "/metrics")
    check(status == 200 and "api" in metrics, f"GET /metrics: {status}")
    check(api(sock, "PUT", "/vm/state", '{"state": "Paused"}')[0] == 204, "pause")
    check(api(sock, "PUT", "/vm/state", '{"state": "Resumed"}')[0] == 204, "resume")
    check(api(sock, "PUT", "/actions", '{"action": "Shutdown"}')[0] == 204, "shutdown")
    _, err = proc.communicate(timeout=60)
    check(proc.returncode == 0, f"API run: expected exit 0, got {proc.returncode}: {err}")
    check("seccomp" not in err, f"API run: {err}")

    proc = subprocess.run(base_command(vmm, kernel, tmp, disk, VIRTIO_CMDLINE, 60),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    serial = (pathlib.Path(tmp) / "serial.log").read_text(errors="replace")
    check(proc.returncode == 0, f"virtio run: exit {proc.returncode}: {proc.stderr}\n{serial}")
    check("seccomp" not in proc.stderr, proc.stderr)
    check("status 0" in serial and "blk: wrote sector 3: status 0" in serial, serial)


def test_violate(vmm, kernel, disk, tmp, kind):
    env = dict(os.environ, VMM_TEST_SECCOMP_VIOLATE=kind)
    proc = subprocess.run(base_command(vmm, kernel, tmp, disk, "hang", 20), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    lines = [l for l in proc.stderr.splitlines() if l.startswith("vmm: seccomp:")]
    check(proc.returncode == 83, f"expected 83, got {proc.returncode}: {proc.stderr}")
    check(lines == [f"vmm: seccomp: the {kind} thread made a forbidden system call 140 "
                    "(getpriority); exiting with status 83"], f"lines: {lines}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    vmm, kernel, image, name = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="boot-seccomp-") as tmp:
        disk = pathlib.Path(tmp) / "disk.img"
        shutil.copyfile(image, disk)
        try:
            if name == "full_boot_kill":
                test_full_boot_kill(vmm, kernel, disk, tmp)
            elif name.startswith("violate:"):
                test_violate(vmm, kernel, disk, tmp, name.split(":", 1)[1])
            else:
                sys.exit(f"unknown test {name}")
        except Failure as failure:
            print(f"FAIL {name}: {failure}")
            sys.exit(1)
    print(f"ok {name}")
