#!/usr/bin/env python3
"""`vmm --jail DIR --uid U --gid G` with the real binary (docs/security.md, "Jail").

Usage: jail_test.py VMM TEST_NAME [KERNEL]

bad_inputs         every wrong use is one line naming the flag and the
                   documented status (the root-only cases run when root)
enter_without_kvm  (root) the kernel is a FIFO, so vmm blocks in the jail
                   before it needs KVM: the jailed process has uid/gid
                   65534, no capabilities, its own namespaces, a root that
                   holds only what was bound; after the FIFO opens vmm ends
                   66 and the supervisor ends with 66; DIR is untouched
                   (vmm makes its sockets after KVM is open: see boot)
sigterm            (root) SIGTERM to the supervisor during the set-up ends
                   the jailed vmm; the supervisor ends 143 and removes a
                   socket of the jailed uid left at a socket path
no_kvm_status      (root) KERNEL loads inside the jail; KVM (a device that
                   does not exist) then fails: 69 and vmm's own line, as
                   without the jail
supervisor_hook    (root, test hook) VMM_TEST_SECCOMP_VIOLATE=supervisor: the
                   supervisor's filter ends it with 83 and the line
boot               (root, KVM) a full boot of KERNEL in a jail: API and
                   console sockets used from outside, the jailed vmm has no
                   capabilities, a read-write disk, status 0, clean up

Without root the root-only tests exit 77 (skipped), as boot does without KVM.
"""
import http.client
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

SKIP = 77
NOBODY = 65534


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


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def wait_for(predicate, what, seconds=20):
    deadline = time.monotonic() + seconds
    while not predicate():
        check(time.monotonic() < deadline, f"{what} did not happen in {seconds} s")
        time.sleep(0.02)


class Layout:
    """tmp/ (0755): jail/ (empty, root's), run/ (sockets and outputs, writable
    by the jailed uid), and the inputs."""

    def __init__(self, tmp):
        os.chmod(tmp, 0o755)
        self.tmp = tmp
        self.jail = os.path.join(tmp, "jail")
        self.run = os.path.join(tmp, "run")
        os.mkdir(self.jail, 0o755)
        os.mkdir(self.run, 0o755)
        os.chown(self.run, NOBODY, NOBODY)

    def jail_flags(self, gid=NOBODY):
        return ["--jail", self.jail, "--uid", str(NOBODY), "--gid", str(gid)]


def run_vmm(vmm, args, **kwargs):
    return subprocess.run([vmm] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=30, stdin=subprocess.DEVNULL, **kwargs)


def expect(vmm, status, text, args, **kwargs):
    proc = run_vmm(vmm, args, **kwargs)
    check(proc.returncode == status and text in proc.stderr,
          f"vmm {' '.join(args)} -> {proc.returncode} (want {status} with '{text}'): "
          f"{proc.stderr}")
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    check(len(lines) == 1, f"vmm {' '.join(args)}: expected one line, got {lines}")
    print(f"ok: vmm {' '.join(args)} -> {status}")


def test_bad_inputs(vmm, kernel):
    with tempfile.TemporaryDirectory(prefix="jail-bad-") as tmp:
        small = os.path.join(tmp, "kernel")
        with open(small, "w") as f:
            f.write("not an image")
        k = ["--kernel", small, "--serial", "none"]
        expect(vmm, 64, "needs --uid U and --gid G", k + ["--jail", tmp])
        expect(vmm, 64, "missing --gid", k + ["--jail", tmp, "--uid", "1"])
        expect(vmm, 64, "--uid only goes with --jail", k + ["--uid", "1"])
        expect(vmm, 64, "--gid only goes with --jail", k + ["--gid", "1"])
        expect(vmm, 64, "--uid 0: the jail exists to leave root behind",
               k + ["--jail", tmp, "--uid", "0", "--gid", "1"])
        expect(vmm, 64, "--gid 0:", k + ["--jail", tmp, "--uid", "1", "--gid", "0"])
        expect(vmm, 64, "--uid 'nobody': expected a number",
               k + ["--jail", tmp, "--uid", "nobody", "--gid", "1"])
        expect(vmm, 64, "--gid '4294967295'", k + ["--jail", tmp, "--uid", "1", "--gid",
                                                   "4294967295"])
        if os.geteuid() != 0:
            expect(vmm, 64, "--jail: building the jail needs root",
                   k + ["--jail", tmp, "--uid", "1", "--gid", "1"])
            print("skip: the root-only cases (not root)")
            return
        os.chmod(tmp, 0o755)
        ids = ["--uid", str(NOBODY), "--gid", str(NOBODY)]
        # Not root: the same command as an unprivileged user, with a copy of
        # vmm that user can reach (the build folder may be inside a 0700
        # folder, as a clean clone in mktemp -d is).
        public_vmm = os.path.join(tmp, "vmm")
        shutil.copy(vmm, public_vmm)
        os.chmod(public_vmm, 0o755)
        expect(public_vmm, 64, "--jail: building the jail needs root (vmm runs as uid 65534)",
               k + ["--jail", tmp] + ids, user=NOBODY, group=NOBODY)
        os.unlink(public_vmm)
        expect(vmm, 66, f"--jail {tmp}/absent", k + ["--jail", f"{tmp}/absent"] + ids)
        expect(vmm, 78, "not a directory", k + ["--jail", small] + ids)
        expect(vmm, 78, "not empty (it holds 'kernel')", k + ["--jail", tmp] + ids)
        jail = os.path.join(tmp, "jail")
        os.mkdir(jail, 0o755)
        expect(vmm, 78, "not /", k + ["--jail", "/"] + ids)
        os.chown(jail, NOBODY, NOBODY)
        expect(vmm, 78, "owned by uid 65534, not root", k + ["--jail", jail] + ids)
        os.chown(jail, 0, 0)
        os.chmod(jail, 0o777)
        expect(vmm, 78, "writable by group or others", k + ["--jail", jail] + ids)
        os.chmod(jail, 0o755)
        expect(vmm, 64, f"--api-sock {jail}/api.sock lies inside --jail {jail}",
               k + ["--jail", jail, "--api-sock", f"{jail}/api.sock"] + ids)
        expect(vmm, 66, f"--kernel {tmp}/absent.elf",
               ["--kernel", f"{tmp}/absent.elf", "--jail", jail] + ids)
        expect(vmm, 66, f"--serial {tmp}/no/serial.sock: its folder",
               ["--kernel", small, "--serial", f"socket:{tmp}/no/serial.sock", "--jail", jail]
               + ids)
        expect(vmm, 64, "--serial: binding / would pass the whole host file system",
               ["--kernel", small, "--serial", "socket:/vmm-jail-test.sock", "--jail", jail]
               + ids)
        expect(vmm, 64, "listens on TCP", k + ["--jail", jail, "--vnc", ":1"] + ids)
        expect(vmm, 64, "does not go with --jail yet",
               k + ["--jail", jail, "--vnc", f"unix:{tmp}/vnc.sock"] + ids)
        check(os.listdir(jail) == [], f"the jail directory was touched: {os.listdir(jail)}")


def start_on_fifo(vmm, layout, extra_env=None):
    fifo = os.path.join(layout.tmp, "kernel.fifo")
    os.mkfifo(fifo, 0o666)
    os.chmod(fifo, 0o666)
    serial = os.path.join(layout.run, "serial.sock")
    env = dict(os.environ, **(extra_env or {}))
    proc = subprocess.Popen(
        [vmm, "--kernel", fifo, "--serial", f"socket:{serial}", "--log-level", "debug"]
        + layout.jail_flags(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        env=env)
    return proc, fifo, serial


def jailed_child(proc):
    """The supervisor's child once it has dropped to NOBODY (None if vmm ended)."""
    result = []

    def dropped():
        if proc.poll() is not None:
            return True
        for child in children(proc.pid):
            try:
                if status_fields(child)["Uid"].split()[0] == str(NOBODY):
                    result.append(child)
                    return True
            except FileNotFoundError:
                pass
        return False

    wait_for(dropped, "the jailed vmm's privilege drop")
    if not result:  # (the message is built only then: communicate waits for the end)
        raise Failure(f"vmm ended early: {proc.communicate()}")
    return result[0]


def test_enter_without_kvm(vmm):
    with tempfile.TemporaryDirectory(prefix="jail-enter-") as tmp:
        layout = Layout(tmp)
        proc, fifo, serial = start_on_fifo(vmm, layout)
        try:
            # vmm blocks in open(2) of the FIFO, inside the jail, before KVM.
            child = jailed_child(proc)
            check(children(proc.pid) == [child], f"the supervisor has {children(proc.pid)}")
            fields = status_fields(child)
            for name in ("Uid", "Gid"):
                check(fields[name].split() == [str(NOBODY)] * 4, f"{name}: {fields[name]}")
            check(fields["Groups"] == "", f"Groups: {fields['Groups']}")
            for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                check(fields[name] == "0" * 16, f"{name}: {fields[name]}")
            check(fields["NoNewPrivs"] == "1", f"NoNewPrivs: {fields['NoNewPrivs']}")
            check(fields["NSpid"].split() == [str(child), "1"], f"NSpid: {fields['NSpid']}")
            supervisor = status_fields(proc.pid)
            check(supervisor["Uid"].split()[0] == "0", "the supervisor is root")
            for ns in ("mnt", "pid", "net", "ipc", "uts"):
                check(os.readlink(f"/proc/{child}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"),
                      f"the jailed vmm shares the {ns} namespace")
                check(os.readlink(f"/proc/{proc.pid}/ns/{ns}") ==
                      os.readlink(f"/proc/self/ns/{ns}"),
                      f"the supervisor left the host's {ns} namespace")
            root = f"/proc/{child}/root"
            top = sorted(os.listdir(root))
            first = tmp.strip("/").split("/")[0]
            kvm = {"dev"} if os.path.exists(os.environ.get("VMM_KVM_DEVICE", "/dev/kvm")) else set()
            check(top == sorted({first, "proc"} | kvm), f"the jail's root holds {top}")
            inside = sorted(os.listdir(root + tmp))
            check(inside == ["kernel.fifo", "run"], f"{tmp} inside the jail holds {inside}")
            # Let vmm read the "kernel": a FIFO is not a regular file (66).
            os.close(os.open(fifo, os.O_WRONLY))
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        check(proc.returncode == 66, f"expected 66, got {proc.returncode}: {err}")
        check(f"kernel image {fifo}: not a regular file" in err, err)
        check(f"--jail: in {layout.jail} as uid 65534 gid 65534" in err, err)
        check(os.listdir(layout.jail) == [], f"jail dir: {os.listdir(layout.jail)}")
        print("ok: jailed as 65534 with no capabilities in five namespaces; 66 passed on; clean")


def test_sigterm(vmm):
    with tempfile.TemporaryDirectory(prefix="jail-term-") as tmp:
        layout = Layout(tmp)
        # A socket the jailed uid "left behind" (vmm makes its sockets after
        # KVM is open, which this host cannot): the supervisor removes it.
        stale = os.path.join(layout.run, "serial.sock")
        leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        leftover.bind(stale)
        leftover.close()
        os.chown(stale, NOBODY, NOBODY)
        proc, fifo, serial = start_on_fifo(vmm, layout)
        try:
            jailed_child(proc)
            proc.terminate()
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        check(proc.returncode == 143, f"expected 143, got {proc.returncode}: {err}")
        check(f"removed the leftover {serial}" in err, f"no clean-up line: {err}")
        check(not os.path.exists(serial), "serial.sock left behind")
        check(os.listdir(layout.jail) == [], f"jail dir: {os.listdir(layout.jail)}")
        print("ok: SIGTERM forwarded, 143, the leftover socket removed")


def test_no_kvm_status(vmm, kernel):
    """The bundled kernel loads inside the jail; KVM then fails (a device
    that does not exist), and the supervisor ends with vmm's 69, the status
    and line vmm gives without the jail."""
    with tempfile.TemporaryDirectory(prefix="jail-nokvm-") as tmp:
        layout = Layout(tmp)
        kernel_copy = os.path.join(tmp, "kernel.elf")
        shutil.copyfile(kernel, kernel_copy)
        os.chmod(kernel_copy, 0o644)
        env = dict(os.environ, VMM_KVM_DEVICE=os.path.join(tmp, "no-kvm"))
        args = ["--kernel", kernel_copy, "--serial", f"file:{layout.run}/serial.log"]
        plain = run_vmm(vmm, args, env=env)
        jailed = run_vmm(vmm, args + layout.jail_flags() + ["--log-level", "info"], env=env)
        check(plain.returncode == 69, f"unjailed: {plain.returncode}: {plain.stderr}")
        check(jailed.returncode == 69, f"jailed: {jailed.returncode}: {jailed.stderr}")
        error = [l for l in plain.stderr.splitlines() if l.startswith("vmm: error:")]
        check(error and error[0] in jailed.stderr, f"{error} not in {jailed.stderr}")
        check(f"kernel {kernel_copy}:" in jailed.stderr, f"no kernel line: {jailed.stderr}")
        check("--jail: in" in jailed.stderr, jailed.stderr)
        check(os.listdir(layout.jail) == [], f"jail dir: {os.listdir(layout.jail)}")
        print("ok: the kernel loads in the jail; 69 passed on with vmm's own line")


def test_supervisor_hook(vmm):
    with tempfile.TemporaryDirectory(prefix="jail-hook-") as tmp:
        layout = Layout(tmp)
        proc, fifo, serial = start_on_fifo(vmm, layout, {"VMM_TEST_SECCOMP_VIOLATE": "supervisor"})
        try:
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        lines = [l for l in err.splitlines() if l.startswith("vmm: seccomp:")]
        check(proc.returncode == 83, f"expected 83, got {proc.returncode}: {err}")
        check(lines == ["vmm: seccomp: the supervisor thread made a forbidden system call 140 "
                        "(getpriority); exiting with status 83"], f"lines: {lines}")
        print("ok: the supervisor's filter holds")


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


def api(path, method, url, body=None):
    conn = UnixHTTPConnection(path)
    conn.request(method, url, body=body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, (json.loads(data) if data else None)


def test_boot(vmm, kernel, disk_image):
    with tempfile.TemporaryDirectory(prefix="jail-boot-") as tmp:
        layout = Layout(tmp)
        kernel_copy = os.path.join(tmp, "kernel.elf")
        shutil.copyfile(kernel, kernel_copy)
        os.chmod(kernel_copy, 0o644)
        disk = os.path.join(tmp, "disk.img")
        shutil.copyfile(disk_image, disk)
        os.chown(disk, NOBODY, NOBODY)
        # /dev/kvm is usually root:kvm 0660: the jailed vmm then needs the
        # kvm group as its gid (it has no supplementary groups).
        kvm = os.stat(os.environ.get("VMM_KVM_DEVICE", "/dev/kvm"))
        gid = NOBODY
        if kvm.st_mode & 0o006 != 0o006:
            check(kvm.st_gid != 0 and kvm.st_mode & 0o060 == 0o060,
                  f"/dev/kvm (mode {kvm.st_mode & 0o777:o}, gid {kvm.st_gid}) cannot be opened "
                  "by an unprivileged uid or group")
            gid = kvm.st_gid
        api_sock = os.path.join(layout.run, "api.sock")
        console = os.path.join(layout.run, "console.sock")
        command = [vmm, "--kernel", kernel_copy, "--cmdline", "hang", "--serial", "none",
                   "--console", f"socket:{console}", "--api-sock", api_sock, "--timeout", "60",
                   "--rng", "--disk", disk] + layout.jail_flags(gid)
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: os.path.exists(api_sock) or proc.poll() is not None, "api.sock", 60)
            if proc.poll() is not None:
                raise Failure(f"vmm ended early: {proc.communicate()}")
            child = children(proc.pid)[0]
            fields = status_fields(child)
            for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
                check(fields[name] == "0" * 16, f"{name}: {fields[name]}")
            check(fields["Uid"].split() == [str(NOBODY)] * 4, f"Uid: {fields['Uid']}")
            status, info = api(api_sock, "GET", "/vm")
            check(status == 200 and "state" in info, f"GET /vm: {status} {info}")
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.settimeout(10)
            client.connect(console)
            client.close()
            check(api(api_sock, "PUT", "/actions", '{"action": "Shutdown"}')[0] == 204, "shutdown")
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        check(proc.returncode == 0, f"API run: expected 0, got {proc.returncode}: {err}")
        check(not os.path.exists(api_sock) and not os.path.exists(console), "sockets left")

        serial_log = os.path.join(layout.run, "serial.log")
        cmdline = "sh=blk,read,1;blk,write,3,hello;blk,read,8;rng;virtio;poweroff,0"
        proc = subprocess.run([vmm, "--kernel", kernel_copy, "--cmdline", cmdline, "--serial",
                               f"file:{serial_log}", "--rng", "--disk", disk, "--timeout", "60"]
                              + layout.jail_flags(gid), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, timeout=120)
        with open(serial_log, errors="replace") as f:
            serial = f.read()
        check(proc.returncode == 0, f"virtio run: exit {proc.returncode}: {proc.stderr}\n{serial}")
        check("blk: wrote sector 3: status 0" in serial, serial)
        check(os.listdir(layout.jail) == [], f"jail dir: {os.listdir(layout.jail)}")
        print("ok: a jailed boot, API and console from outside, no capabilities, disk written")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    vmm, name = sys.argv[1], sys.argv[2]
    rest = sys.argv[3:]
    if name != "bad_inputs" and os.geteuid() != 0:
        print(f"SKIPPED LOUDLY: {name} builds a jail, which needs root", file=sys.stderr)
        sys.exit(SKIP)
    try:
        if name == "bad_inputs":
            test_bad_inputs(vmm, rest[0] if rest else None)
        elif name == "enter_without_kvm":
            test_enter_without_kvm(vmm)
        elif name == "sigterm":
            test_sigterm(vmm)
        elif name == "no_kvm_status":
            test_no_kvm_status(vmm, rest[0])
        elif name == "supervisor_hook":
            test_supervisor_hook(vmm)
        elif name == "boot":
            test_boot(vmm, rest[0], rest[1])
        else:
            sys.exit(f"unknown test {name}")
    except Failure as failure:
        print(f"FAIL {name}: {failure}")
        sys.exit(1)
    print(f"ok {name}")
