#!/usr/bin/env python3
"""`vmm attach` under its own seccomp filter, with the real binary and no
KVM (label "unit"): a test serves a Unix socket as a guest console would.

Usage: attach_seccomp_test.py VMM TEST_NAME
"""
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def status_fields(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as status_file:
        for row in status_file:
            name, _, rest = row.partition(":")
            fields[name] = rest.strip()
    return fields


def serve(path, seen):
    """Accepts one client, sends a line, reads
    what the client types until it half-closes, then closes."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def run():
        conn, _ = server.accept()
        conn.sendall(b"hello from the guest\n")
        received = b""
        conn.settimeout(10)
        try:
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                received += chunk
        except socket.timeout:
            pass
        seen["received"] = received
        conn.close()
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_attach_runs_confined(vmm, tmp):
    """Kill mode (the default): the bytes go both ways, attach exits 0, and
    while it copies it is in seccomp filter mode with one filter."""
    path = pathlib.Path(tmp) / "console.sock"
    seen = {}
    thread = serve(path, seen)
    proc = subprocess.Popen([vmm, "attach", str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # Stdin stays open until the server has looked at the process: the
    # server reads until attach half-closes, which it does at stdin's end.
    proc.stdin.write(b"typed line\n")
    proc.stdin.flush()
    time.sleep(0.5)  # attach is in its copy loop by now
    status = status_fields(proc.pid)
    proc.stdin.close()
    proc.stdin = None
    out, err = proc.communicate(timeout=30)
    thread.join(10)
    check(proc.returncode == 0, f"expected exit 0, got {proc.returncode}: {err!r}")
    check(b"hello from the guest" in out, f"guest output missing: {out!r}")
    check(seen.get("received") == b"typed line\n", f"server got {seen.get('received')!r}")
    check(status.get("Seccomp") == "2", f"attach is not in filter mode: {status.get('Seccomp')}")
    check(status.get("Seccomp_filters") == "1", f"filters: {status.get('Seccomp_filters')}")


def test_attach_violation_ends_it_with_83(vmm, tmp):
    """The test hook: attach calls getpriority after connecting; its filter
    forbids it: status 83 and one line naming the thread kind and the call."""
    path = pathlib.Path(tmp) / "console.sock"
    seen = {}
    serve(path, seen)
    env = dict(os.environ, VMM_TEST_SECCOMP_VIOLATE="attach")
    proc = subprocess.run([vmm, "attach", str(path)], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=30)
    lines = [l for l in proc.stderr.decode().splitlines() if l.startswith("vmm: seccomp:")]
    check(proc.returncode == 83, f"expected exit 83, got {proc.returncode}: {proc.stderr!r}")
    check(lines == ["vmm: seccomp: the attach thread made a forbidden system call 140 "
                    "(getpriority); exiting with status 83"], f"lines: {lines}")


def test_attach_seccomp_off_ignores_the_hook(vmm, tmp):
    """--seccomp off: no filter, so the hook's getpriority simply runs."""
    path = pathlib.Path(tmp) / "console.sock"
    seen = {}
    serve(path, seen)
    env = dict(os.environ, VMM_TEST_SECCOMP_VIOLATE="attach")
    proc = subprocess.run([vmm, "attach", "--seccomp", "off", str(path)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, timeout=30)
    check(proc.returncode == 0, f"expected exit 0, got {proc.returncode}: {proc.stderr!r}")
    check(b"hello from the guest" in proc.stdout, f"guest output missing: {proc.stdout!r}")


def test_attach_bad_mode_is_a_usage_error(vmm, tmp):
    proc = subprocess.run([vmm, "attach", "--seccomp", "foo", str(pathlib.Path(tmp) / "s")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    check(proc.returncode == 64, f"expected exit 64, got {proc.returncode}")
    check(b"'foo' is not a seccomp mode" in proc.stderr, f"stderr: {proc.stderr!r}")


TESTS = {name[len("test_"):]: fn for name, fn in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in TESTS:
        sys.exit(f"usage: {sys.argv[0]} VMM {{{'|'.join(TESTS)}}}")
    with tempfile.TemporaryDirectory(prefix="attach-seccomp-") as tmp:
        try:
            TESTS[sys.argv[2]](sys.argv[1], tmp)
        except Failure as failure:
            print(f"FAIL {sys.argv[2]}: {failure}")
            sys.exit(1)
    print(f"ok {sys.argv[2]}")
