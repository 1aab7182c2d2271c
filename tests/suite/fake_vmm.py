#!/usr/bin/env python3
"""A stand-in for vmm that the suite runner's integration tests point at
(`vmm suite --vmm tests/suite/fake_vmm.py ...`).

It takes vmm's command line, ignores what it does not need, and acts out
the words of --cmdline, in this order:

  say=TEXT       print TEXT (underscores become spaces) as one line
  lines=N        print "line 1" .. "line N"
  banner         print the bundled kernel's marker lines and banner
  split          write each byte separately, flushing (patterns split across reads)
  ansi           wrap every line in ANSI colour escapes
  crlf           end lines with CRLF
  stderr=TEXT    print TEXT on stderr
  panic          print "[panic] something broke", then keep running 30 s
  sleep=S        sleep S seconds (float) before ending
  exit=N         end with status N (default 0)
  hang           sleep until --timeout, then end with status 82
  ignore-timeout sleep for an hour, ignoring --timeout (watchdog tests)
  crash          die of SIGSEGV
  read-input     read one line from stdin and print "got: <line>"
  prompt         write "$ " without a newline
  seccomp-status print "seccomp: MODE filters: N" from /proc/self/status
                 (the filters the runner's children inherit)

Like vmm it ends with 66 when --kernel names a missing file, and with
--boot-trace it writes "boot-trace: <event> <ms> ms" lines on stderr.
"""
import os
import signal
import sys
import time

START = time.monotonic()


def trace(enabled, event):
    if enabled:
        ms = (time.monotonic() - START) * 1000.0
        sys.stderr.write(f"boot-trace: {event} {ms:.3f} ms\n")
        sys.stderr.flush()


def main(argv):
    args = {"--cmdline": "", "--timeout": "0", "--kernel": None}
    boot_trace = False
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--boot-trace":
            boot_trace = True
        elif a.startswith("--") and i + 1 < len(argv):
            args[a] = argv[i + 1]
            i += 1
        i += 1

    kernel = args["--kernel"]
    if kernel is None or not os.path.exists(kernel):
        sys.stderr.write(f"vmm: kernel image {kernel}: No such file or directory\n")
        return 66
    trace(boot_trace, "vm-created")

    words = args["--cmdline"].split()
    split = "split" in words
    ansi = "ansi" in words
    eol = "\r\n" if "crlf" in words else "\n"
    first_byte = [True]

    def out(line):
        if first_byte[0]:
            trace(boot_trace, "first-serial-byte")
            first_byte[0] = False
        text = (f"\x1b[1;32m{line}\x1b[0m" if ansi else line) + eol
        if split:
            for ch in text:
                sys.stdout.write(ch)
                sys.stdout.flush()
                time.sleep(0.001)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()

    trace(boot_trace, "phase-0x40")
    status = 0
    for word in words:
        key, _, value = word.partition("=")
        if key == "say":
            out(value.replace("_", " "))
        elif key == "lines":
            for n in range(1, int(value) + 1):
                out(f"line {n}")
        elif key == "banner":
            out("[boot] entry: 64-bit zero page")
            out(f"[boot] cmdline: {args['--cmdline']}")
            out("[mm] usable: 127 MiB")
            out("vmm guest kernel 0.1 ready")
            trace(boot_trace, "phase-0x41")
        elif key == "stderr":
            sys.stderr.write(value.replace("_", " ") + "\n")
            sys.stderr.flush()
        elif key == "panic":
            out("[panic] something broke")
            time.sleep(30)
        elif key == "sleep":
            time.sleep(float(value))
        elif key == "exit":
            status = int(value)
        elif key == "hang":
            time.sleep(float(args["--timeout"]))
            sys.stderr.write("vmm: --timeout elapsed\n")
            status = 82
        elif key == "ignore-timeout":
            time.sleep(3600)
        elif key == "prompt":
            sys.stdout.write("$ ")
            sys.stdout.flush()
        elif key == "read-input":
            out("got: " + sys.stdin.readline().rstrip("\r\n"))
        elif key == "seccomp-status":
            fields = {}
            with open("/proc/self/status") as status_file:
                for row in status_file:
                    name, _, rest = row.partition(":")
                    fields[name] = rest.strip()
            out(f"seccomp: {fields.get('Seccomp')} filters: {fields.get('Seccomp_filters')}")
        elif key == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
    trace(boot_trace, "exit")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
