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
  fb             the kernel asks for a framebuffer (vmm's --framebuffer auto
                 then gives it one of 1024x768)
  fill=#rrggbb   paint the whole screen (it starts black)
  pixel=X,Y,#rrggbb  paint one pixel
  no-screenshot  end without writing the --screenshot PNG (the file stays
                 empty, as when vmm dies before writing it)

Like vmm it ends with 66 when --kernel names a missing file, and with
--boot-trace it writes "boot-trace: <event> <ms> ms" lines on stderr. With
--screenshot FILE it acts like vmm: 64 when the guest has no framebuffer
(no --framebuffer WxH and no "fb" word), else FILE is created at start and
holds the screen as an RGB PNG when it ends.
"""
import os
import signal
import struct
import sys
import time
import zlib

START = time.monotonic()


def trace(enabled, event):
    if enabled:
        ms = (time.monotonic() - START) * 1000.0
        sys.stderr.write(f"boot-trace: {event} {ms:.3f} ms\n")
        sys.stderr.flush()


def write_png(path, width, height, pixels):
    """An 8-bit RGB PNG of `pixels` (a bytearray of width * height * 3)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    stride = width * 3
    raw = b"".join(b"\0" + bytes(pixels[y * stride:(y + 1) * stride]) for y in range(height))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw)))
        f.write(chunk(b"IEND", b""))


def colour(text):
    return bytes.fromhex(text.lstrip("#"))


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
    words = args["--cmdline"].split()
    screenshot = args.get("--screenshot")
    framebuffer = args.get("--framebuffer", "auto")
    screen = None  # (width, height, pixels) when the guest has a framebuffer
    if "x" in framebuffer:
        width, height = (int(n) for n in framebuffer.split("x"))
        screen = (width, height, bytearray(width * height * 3))
    elif framebuffer == "auto" and "fb" in words:
        screen = (1024, 768, bytearray(1024 * 768 * 3))
    if screenshot is not None:
        if screen is None:
            sys.stderr.write("vmm: --screenshot: the guest has no framebuffer; "
                             "give --framebuffer WxH\n")
            return 64
        open(screenshot, "wb").close()
    trace(boot_trace, "vm-created")

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
        elif key == "fill" and screen:
            screen[2][:] = colour(value) * (screen[0] * screen[1])
        elif key == "pixel" and screen:
            x, y, rgb = value.split(",")
            at = (int(y) * screen[0] + int(x)) * 3
            screen[2][at:at + 3] = colour(rgb)
    if screenshot is not None and "no-screenshot" not in words:
        write_png(screenshot, *screen)
    trace(boot_trace, "exit")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
