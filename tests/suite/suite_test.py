#!/usr/bin/env python3
"""Integration tests of `vmm suite`, run by CTest (label "suite").

Usage: suite_test.py VMM FAKE_VMM TEST_NAME

VMM is the real vmm binary (its `suite` subcommand is under test); the cases
boot FAKE_VMM (tests/suite/fake_vmm.py) through the hidden `--vmm` flag, so
these tests need no /dev/kvm and no guest kernel. Each test is one function
below; CTest runs each as its own test.
"""
import importlib.util
import json
import os
import pathlib
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zlib

HERE = pathlib.Path(__file__).resolve().parent
CASES = HERE / "cases"
DUMMY_KERNEL = CASES / "dummy-kernel.bin"


class Failure(Exception):
    pass


def check(condition, message, output=None):
    if not condition:
        if output is not None:
            message += "\n--- suite output ---\n" + output
        raise Failure(message)


def run_suite(args, out_dir, timeout=120):
    command = [VMM, "suite", "--vmm", FAKE, "--out", str(out_dir)] + [str(a) for a in args]
    start = time.monotonic()
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)
    wall = time.monotonic() - start
    output = proc.stdout + proc.stderr
    print(f"$ {' '.join(command)}\n(exit {proc.returncode}, {wall:.2f} s)")
    return proc.returncode, output, wall


def write_case(folder, name, **fields):
    fields.setdefault("kernel", str(DUMMY_KERNEL))
    fields.setdefault("timeout", 5)
    path = pathlib.Path(folder) / f"{name}.json"
    path.write_text(json.dumps(fields, indent=2))
    return path


# --- tests --------------------------------------------------------------------

def test_passing_fixtures(tmp):
    """Every verdict kind passes when vmm ends as the case expects."""
    status, output, _ = run_suite(["--jobs", "3", CASES / "pass"], tmp)
    check(status == 0, f"expected exit 0, got {status}", output)
    for name in ["banner", "noisy", "exit-code", "triple", "hang", "missing-kernel"]:
        check(f"PASS  {name}" in output, f"no PASS line for {name}", output)
    # The table has a column per boot-trace event the fake wrote.
    check("entry(0x40)" in output and "user(0x41)" in output, "phase columns missing", output)
    timings = json.loads((tmp / "banner" / "timings.json").read_text())
    check(timings["verdict"] == "PASS" and len(timings["matches"]) == 3, f"timings: {timings}")
    check("phase-0x40" in timings["boot_trace"], f"boot trace not parsed: {timings}")
    serial = (tmp / "noisy" / "serial.log").read_bytes()
    check(b"\x1b[" in serial and b"\r\n" in serial, "serial.log must keep the raw bytes")


def test_failure_report(tmp):
    """A failing case names the unmatched pattern and shows the serial tail."""
    status, output, _ = run_suite([CASES / "failing" / "failing.json"], tmp)
    check(status == 1, f"expected exit 1, got {status}", output)
    check("expect pattern 2 of 3 'never printed' never matched" in output,
          "the report does not name the unmatched pattern", output)
    check("serial (last 40 of 54 lines)" in output, "no serial tail header", output)
    check("  | line 50" in output and "  | line 11" in output,
          "the serial tail misses the last lines", output)
    check("  | line 10\n" not in output, "the serial tail is longer than 40 lines", output)
    check("  ! vmm: register dump would be here" in output, "vmm's stderr not shown", output)
    check(f"artifacts: {tmp / 'failing'}" in output, "no artifact path", output)
    serial = (tmp / "failing" / "serial.log").read_text()
    check(serial.count("\n") == 54, "serial.log is not the full serial output")
    timings = json.loads((tmp / "failing" / "timings.json").read_text())
    check(timings["verdict"] == "FAIL" and "never printed" in timings["reasons"][0],
          f"timings.json: {timings}")


def test_wrong_exit_is_reported(tmp):
    write_case(tmp / "cases", "wrong-exit", cmdline="say=hi exit=5", result="exit:0",
               expect=["hi"])
    status, output, _ = run_suite([tmp / "cases"], tmp / "out")
    check(status == 1, f"expected exit 1, got {status}", output)
    check("expected exit:0, got exit:5 (vmm exit status 5)" in output, "wrong exit", output)


def test_crash_is_one_case_only(tmp):
    """A vmm that dies of a signal fails its case; the others still pass."""
    write_case(tmp / "cases", "crash", cmdline="say=before crash", expect=["before"])
    write_case(tmp / "cases", "fine", cmdline="say=ok", expect=["ok"])
    status, output, _ = run_suite(["--jobs", "2", tmp / "cases"], tmp / "out")
    check(status == 1, f"expected exit 1, got {status}", output)
    check("vmm died of signal 11" in output, "signal not reported", output)
    check("PASS  fine" in output, "the other case did not pass", output)


def test_forbidden_pattern_stops_the_case_early(tmp):
    write_case(tmp / "cases", "forbid", cmdline="say=booting panic exit=0",
               forbid=["panic|BUG|Oops"], timeout=30)
    status, output, wall = run_suite([tmp / "cases"], tmp / "out")
    check(status == 1, f"expected exit 1, got {status}", output)
    check("forbidden pattern 'panic|BUG|Oops' matched at line 2: [panic] something broke"
          in output, "forbid hit not reported", output)
    check(wall < 10, f"the case was not stopped early ({wall:.1f} s)", output)


def test_watchdog_kills_a_hung_vmm(tmp):
    write_case(tmp / "cases", "stuck", cmdline="say=stuck ignore-timeout", result="timeout",
               timeout=1)
    status, output, wall = run_suite(["--watchdog-margin", "1", tmp / "cases"], tmp / "out")
    check(status == 1, f"expected exit 1, got {status}", output)
    check("killed by the suite watchdog" in output, "watchdog not reported", output)
    check(wall < 10, f"the watchdog did not fire in time ({wall:.1f} s)", output)


def test_malformed_case_is_its_own_error(tmp):
    status, output, _ = run_suite([CASES / "malformed"], tmp)
    check(status == 1, f"expected exit 1, got {status}", output)
    check("bad-cpus.json: field 'cpus': must be an integer 1..254" in output,
          "the error does not name file and field", output)
    check("PASS  good" in output, "the good case did not run", output)
    check("ERROR bad-cpus" in output, "the malformed case is not an ERROR", output)


def test_jobs_overlap(tmp):
    """8 cases of 1 s each with --jobs 4 run 4 at a time."""
    for n in range(8):
        write_case(tmp / "cases", f"sleep-{n}", cmdline="say=zzz sleep=1", expect=["zzz"])
    status, output, wall = run_suite(["--jobs", "4", tmp / "cases"], tmp / "out")
    check(status == 0, f"expected exit 0, got {status}", output)
    intervals = []
    for n in range(8):
        t = json.loads((tmp / "out" / f"sleep-{n}" / "timings.json").read_text())
        intervals.append((t["start_ms"], t["end_ms"]))
    # Largest number of runs alive at one instant.
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals],
                    key=lambda x: (x[0], x[1]))
    alive = peak = 0
    for _, delta in events:
        alive += delta
        peak = max(peak, alive)
    print(f"wall {wall:.2f} s, peak concurrency {peak}")
    check(peak == 4, f"expected 4 runs at once, saw at most {peak}", output)
    check(wall < 6, f"8 x 1 s with --jobs 4 took {wall:.2f} s (serial would be 8 s)", output)


def test_junit_parses(tmp):
    write_case(tmp / "cases", "good", cmdline="ansi say=green_<&>_text exit=0",
               expect=["green <&> text"])
    write_case(tmp / "cases", "bad", cmdline="say=nope exit=0", expect=["yes"])
    (tmp / "cases" / "broken.json").write_text("{ not json")
    junit = tmp / "junit.xml"
    status, output, _ = run_suite(["--junit", junit, tmp / "cases"], tmp / "out")
    check(status == 1, f"expected exit 1, got {status}", output)
    root = ET.parse(junit).getroot()  # raises on malformed XML
    check(root.tag == "testsuites", f"root is {root.tag}")
    suite = root.find("testsuite")
    check(suite is not None, "no <testsuite>")
    check((suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1"),
          f"counts: {suite.attrib}")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    check(set(cases) == {"good", "bad", "broken"}, f"testcases: {sorted(cases)}")
    check(cases["good"].find("failure") is None, "good has a failure")
    failure = cases["bad"].find("failure")
    check(failure is not None and "'yes' never matched" in failure.get("message"),
          "bad has no failure naming the pattern")
    error = cases["broken"].find("error")
    check(error is not None and "not valid JSON" in error.get("message"), "broken has no error")
    out = cases["good"].find("system-out").text
    check("green <&> text" in out and "\x1b" not in out, f"system-out: {out!r}")
    float(suite.get("time"))


def test_input_is_typed_after_its_trigger(tmp):
    write_case(tmp / "cases", "typed", cmdline="say=prompt>_ read-input", input="hello\r\n",
               input_after="^prompt> $", expect=["^prompt> $", "^got: hello$"])
    write_case(tmp / "cases", "typed-at-prompt", cmdline="prompt read-input", input="hi\n",
               input_after="^\\$ $", expect=["^\\$ got: hi$"])
    status, output, _ = run_suite([tmp / "cases"], tmp / "out")
    check(status == 0, f"expected exit 0, got {status}", output)


def test_repeat_reports_pass_rate(tmp):
    write_case(tmp / "cases", "again", cmdline="say=boot", expect=["boot"])
    status, output, _ = run_suite(["--repeat", "5", "--jobs", "2", tmp / "cases"], tmp / "out")
    check(status == 0, f"expected exit 0, got {status}", output)
    check("pass rate" in output and "boot p95" in output, "no repeat table", output)
    check("100.0%" in output, "pass rate not 100%", output)
    for run in range(1, 6):
        check((tmp / "out" / "again" / f"{run:03}" / "timings.json").exists(),
              f"no artifacts for run {run}")


def test_filter_and_tag_select_cases(tmp):
    status, output, _ = run_suite(["--filter", "b*", "--list", CASES / "pass"], tmp)
    check(status == 0 and "banner" in output and "noisy" not in output,
          "--filter did not select", output)
    status, output, _ = run_suite(["--tag", "smoke", CASES / "pass"], tmp)
    check(status == 0 and "PASS  banner" in output and "noisy" not in output,
          "--tag did not select", output)
    status, output, _ = run_suite(["--filter", "nothing*", CASES / "pass"], tmp)
    check(status == 64 and "no case selected" in output, "empty selection must fail", output)



def test_shards_hold_every_case_once(tmp):
    """--shard 1/3, 2/3, 3/3 run every selected case exactly once, the same way
    --list --json reports it; times recorded in --out balance the split."""
    cases = tmp / "cases"
    for i in range(7):
        write_case(cases, f"c{i}", cmdline="say=hello exit=0", result="exit:0",
                   expect=["hello"])
    status, output, _ = run_suite(["--list", "--json", cases], tmp / "out")
    check(status == 0, f"--list --json: exit {status}", output)
    everything = [c["name"] for c in json.loads(output[:output.rindex("}") + 1])["cases"]]
    check(sorted(everything) == [f"c{i}" for i in range(7)], f"listed {everything}", output)

    def shard_names(args, out):
        status, output, _ = run_suite(["--list", "--json", "--shard"] + args + [cases], out)
        check(status == 0, f"--shard {args}: exit {status}", output)
        doc = json.loads(output[output.index("{"):output.rindex("}") + 1])
        return [c["name"] for c in doc["cases"]]

    # Each shard on its own machine, from the same (here: no) records, as a CI
    # matrix runs them: what it lists is what it runs.
    ran = []
    for index in (1, 2, 3):
        out = tmp / f"machine{index}"
        listed = sorted(shard_names([f"{index}/3"], out))
        status, output, _ = run_suite(["--shard", f"{index}/3", "--jobs", "2", cases], out)
        check(status == 0, f"shard {index}/3: exit {status}", output)
        names = sorted(line.split()[1] for line in output.splitlines()
                       if line.startswith("PASS  "))
        check(names == listed, f"shard {index} ran {names} but lists {listed}", output)
        ran += names
    check(sorted(ran) == sorted(everything), f"shards ran {sorted(ran)}, expected {everything}")
    # Without records: round robin by name, 3 + 2 + 2.
    sizes = [len(shard_names([f"{i}/3"], tmp / "empty")) for i in (1, 2, 3)]
    check(sizes == [3, 2, 2], f"by-name shard sizes {sizes}")
    # With records (an unsharded run writes timings.json for every case), one
    # case recorded as long takes a shard alone.
    status, output, _ = run_suite(["--jobs", "2", cases], tmp / "out")
    check(status == 0, f"unsharded run: exit {status}", output)
    t = tmp / "out" / "c4" / "timings.json"
    timings = json.loads(t.read_text())
    timings["wall_ms"] = 1e6
    t.write_text(json.dumps(timings))
    check(shard_names(["1/3"], tmp / "out") == ["c4"], "the long case does not have shard 1 alone")
    # More shards than cases: an empty shard succeeds and says so.
    status, output, _ = run_suite(["--shard", "9/9", cases], tmp / "out")
    check(status == 0 and "shard 9/9: 0 of 7" in output, f"empty shard: exit {status}", output)
    for bad in ("0/3", "4/3", "x", "1/0"):
        status, output, _ = run_suite(["--shard", bad, cases], tmp / "out")
        check(status == 64 and f"'{bad}'" in output, f"--shard {bad}: exit {status}", output)
    status, output, _ = run_suite(["--json", cases], tmp / "out")
    check(status == 64 and "--json only goes with --list" in output, "--json alone", output)


def test_merge_joins_shard_reports(tmp):
    """`vmm suite merge` of the shards' JUnit files counts what the unsharded
    run counts; overlapping shards, non-XML and missing files are errors."""
    cases = tmp / "cases"
    for i in range(5):
        write_case(cases, f"m{i}", cmdline="say=hello exit=0", result="exit:0", expect=["hello"])
    write_case(cases, "m-fails", cmdline="say=hello exit=0", result="exit:0",
               expect=["never printed"])
    status, output, _ = run_suite(["--junit", tmp / "all.xml", cases], tmp / "whole")
    check(status == 1, f"unsharded: exit {status}", output)
    parts = []
    for index in (1, 2, 3):
        part = tmp / f"part{index}.xml"
        run_suite(["--shard", f"{index}/3", "--junit", part, cases], tmp / f"out{index}")
        parts.append(part)

    def merge(args):
        command = [VMM, "suite", "merge"] + [str(a) for a in args]
        proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=60)
        return proc.returncode, proc.stdout + proc.stderr

    status, output = merge(parts + ["--junit", tmp / "merged.xml"])
    check(status == 0, f"merge: exit {status}", output)
    whole = ET.parse(tmp / "all.xml").getroot().find("testsuite")
    merged = ET.parse(tmp / "merged.xml").getroot().find("testsuite")
    for key in ("tests", "failures", "errors", "skipped"):
        check(whole.get(key) == merged.get(key),
              f"{key}: unsharded {whole.get(key)}, merged {merged.get(key)}", output)
    names = sorted(c.get("name") for c in merged.findall("testcase"))
    check(names == sorted(c.get("name") for c in whole.findall("testcase")), f"cases {names}")
    failed = [c for c in merged.findall("testcase") if c.find("failure") is not None]
    check(len(failed) == 1 and failed[0].get("name") == "m-fails" and
          "never printed" in failed[0].find("failure").get("message"),
          "the failure did not survive the merge", output)

    status, output = merge([parts[0], parts[0], "--junit", tmp / "twice.xml"])
    check(status == 65 and "the shards overlap" in output, f"overlap: exit {status}", output)
    (tmp / "bad.xml").write_text("<testsuites><testsuite>")
    status, output = merge([parts[0], tmp / "bad.xml", "--junit", tmp / "x.xml"])
    check(status == 65 and "bad.xml:1: not XML" in output, f"bad XML: exit {status}", output)
    (tmp / "other.xml").write_text("<html/>")
    status, output = merge([tmp / "other.xml", "--junit", tmp / "x.xml"])
    check(status == 65 and "not a JUnit report" in output, f"not JUnit: exit {status}", output)
    status, output = merge([tmp / "missing.xml", "--junit", tmp / "x.xml"])
    check(status == 66 and "cannot read" in output, f"missing: exit {status}", output)
    status, output = merge([parts[0], "--junit", tmp / "no" / "such" / "dir.xml"])
    check(status == 73 and "cannot write" in output, f"unwritable: exit {status}", output)
    status, output = merge([parts[0]])
    check(status == 64, f"no --junit: exit {status}", output)

def test_runner_filter_reaches_the_children(tmp):
    """In kill mode (the default) the runner loads its seccomp filter before
    it spawns, the children inherit it and still run; with --seccomp off they
    inherit nothing from the runner."""
    counts = {}
    for mode in ("kill", "off"):
        folder = pathlib.Path(tmp) / mode
        folder.mkdir()
        write_case(folder, "status", cmdline="seccomp-status exit=0",
                   expect=[r"seccomp: \d filters: \d+"])
        status, output, _ = run_suite(["--seccomp", mode, folder], folder / "out")
        check(status == 0, f"--seccomp {mode}: expected exit 0, got {status}", output)
        log = (folder / "out" / "status" / "serial.log").read_text()
        found = [line for line in log.splitlines() if line.startswith("seccomp: ")]
        check(found, f"--seccomp {mode}: no seccomp line in the child's output", log)
        counts[mode] = int(found[0].rsplit(" ", 1)[1])
        if mode == "kill":
            check(found[0].startswith("seccomp: 2 "),
                  f"the child is not in seccomp filter mode: {found[0]}", log)
    check(counts["kill"] == counts["off"] + 1,
          f"expected exactly one more filter under kill than off, got {counts}")


def test_forbidden_call_in_the_runner_ends_it_with_83(tmp):
    """The test hook makes the runner call getpriority, which its filter
    forbids: status 83 and one line naming the thread and the call. With
    --seccomp off the same hook is harmless."""
    write_case(tmp, "ok", cmdline="exit=0")
    env = dict(os.environ, VMM_TEST_SECCOMP_VIOLATE="suite")
    command = [VMM, "suite", "--vmm", FAKE, "--out", str(pathlib.Path(tmp) / "out"), str(tmp)]
    proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60, env=env)
    check(proc.returncode == 83, f"expected exit 83, got {proc.returncode}", proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if l.startswith("vmm: seccomp:")]
    check(lines == ["vmm: seccomp: the suite thread made a forbidden system call 140 "
                    "(getpriority); exiting with status 83"],
          f"unexpected violation line(s): {lines}", proc.stderr)
    proc = subprocess.run(command[:2] + ["--seccomp", "off"] + command[2:],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=60, env=env)
    check(proc.returncode == 0, f"--seccomp off: expected exit 0, got {proc.returncode}",
          proc.stdout + proc.stderr)


def read_png(path):
    """Decodes an 8-bit RGB, non-interlaced PNG (what vmm and the suite write)
    with the standard library: (width, height, rows of bytes)."""
    data = pathlib.Path(path).read_bytes()
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG")
    at, idat, header = 8, b"", None
    while at < len(data):
        (length,) = struct.unpack(">I", data[at:at + 4])
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        check(zlib.crc32(kind + body) & 0xffffffff ==
              struct.unpack(">I", data[at + 8 + length:at + 12 + length])[0],
              f"{path}: bad CRC in {kind}")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    check((depth, colour_type, interlace) == (8, 2, 0), f"{path}: not 8-bit RGB: {header}")
    raw, stride, rows, prev = zlib.decompress(idat), width * 3, [], bytearray(width * 3)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 3] if i >= 3 else 0
            b, c = prev[i], prev[i - 3] if i >= 3 else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xff
            elif kind == 2:
                line[i] = (line[i] + b) & 0xff
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xff
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xff
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def pixel(image, x, y):
    return "#" + image[2][y][x * 3:x * 3 + 3].hex()


def fake_png(path, width, height, fill, pixels=()):
    """A PNG as the fake vmm draws it: `fill` everywhere, then `pixels`."""
    spec = importlib.util.spec_from_file_location("fake_vmm", FAKE)
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    data = bytearray(bytes.fromhex(fill[1:]) * (width * height))
    for x, y, rgb in pixels:
        data[(y * width + x) * 3:(y * width + x) * 3 + 3] = bytes.fromhex(rgb[1:])
    fake.write_png(str(path), width, height, data)


# The fake's screen in the screen tests: 16x8, dark blue, one red pixel at (3, 2).
SCREEN = dict(framebuffer="16x8", cmdline="say=drawn fill=#102030 pixel=3,2,#ff0000 exit=0")


def test_screen_checks_pass(tmp):
    """Probes and a reference PNG pass when the screen is as expected; the
    screenshot is kept in the artifacts, and no difference image is written."""
    cases = tmp / "cases"
    fake_png(cases / "expected.png", 16, 8, "#102030", [(3, 2, "#ff0000")])
    write_case(cases, "probes", **SCREEN,
               screen={"probes": [[3, 2, "#FF0000"], [0, 0, "#102030"], [15, 7, "#102030"]]})
    write_case(cases, "reference", **SCREEN, screen={"reference": "expected.png"})
    write_case(cases, "both", **SCREEN,
               screen={"reference": "expected.png", "probes": [[3, 2, "#ff0000"]]})
    # No "framebuffer": vmm's auto gives a kernel that asks 1024x768.
    write_case(cases, "auto", cmdline="fb fill=#00ff00 exit=0",
               screen={"probes": [[1023, 767, "#00ff00"]]})
    status, output, _ = run_suite(["--jobs", "2", cases], tmp / "out")
    check(status == 0, f"expected exit 0, got {status}", output)
    for name in ("probes", "reference", "both", "auto"):
        check(f"PASS  {name}" in output, f"no PASS line for {name}", output)
        check(not (tmp / "out" / name / "screen-diff.png").exists(), f"{name}: a diff on a pass")
    image = read_png(tmp / "out" / "probes" / "screen.png")
    check(image[:2] == (16, 8) and pixel(image, 3, 2) == "#ff0000", "screen.png is not the screen")
    command = json.loads((tmp / "out" / "probes" / "timings.json").read_text())["command"]
    check(command[command.index("--framebuffer") + 1] == "16x8" and
          command[command.index("--screenshot") + 1] == str(tmp / "out" / "probes" / "screen.png"),
          f"command: {command}")
    check("--framebuffer" not in json.loads(
        (tmp / "out" / "auto" / "timings.json").read_text())["command"], "auto got --framebuffer")


def test_wrong_pixel_fails_and_writes_both_images(tmp):
    """A wrong expected pixel fails the case; the report names the pixel, and
    the artifacts hold the actual screen and a difference image."""
    cases = tmp / "cases"
    fake_png(cases / "expected.png", 16, 8, "#102030", [(3, 2, "#ff0000"), (5, 1, "#ffffff")])
    write_case(cases, "wrong-probe", **SCREEN,
               screen={"probes": [[0, 0, "#102030"], [3, 2, "#00ff00"]]})
    write_case(cases, "wrong-reference", **SCREEN, screen={"reference": "expected.png"})
    junit = tmp / "junit.xml"
    status, output, _ = run_suite(["--junit", junit, cases], tmp / "out")
    check(status == 1, f"expected exit 1, got {status}", output)
    probe_why = "screen: probe 2 of 2: pixel (3, 2) is #ff0000, expected #00ff00"
    reference_why = ("screen: expected.png: pixel (5, 1) is #102030, the reference has #ffffff "
                     "(1 of 128 pixels differ)")
    check(f"why:       {probe_why}" in output, "the report does not name the probe", output)
    check(f"why:       {reference_why}" in output, "the report does not name the pixel", output)
    folder = tmp / "out" / "wrong-probe"
    check(f"screen:    {folder / 'screen.png'}, {folder / 'screen-diff.png'}\n" in output,
          "the report does not name the images", output)
    failures = {c.get("name"): c.find("failure") for c in ET.parse(junit).getroot().iter("testcase")}
    check(failures["wrong-probe"] is not None and
          failures["wrong-probe"].get("message") == probe_why,
          f"JUnit message: {failures['wrong-probe'] is not None and failures['wrong-probe'].attrib}")
    check(reference_why in failures["wrong-reference"].get("message"), "JUnit reference message")
    for name, x, y in (("wrong-probe", 3, 2), ("wrong-reference", 5, 1)):
        folder = tmp / "out" / name
        timings = json.loads((folder / "timings.json").read_text())
        check(timings["verdict"] == "FAIL" and timings["reasons"][0].startswith("screen: ") and
              timings["screen_images"] == ["screen.png", "screen-diff.png"],
              f"{name} timings.json: {timings['reasons']} {timings['screen_images']}")
        actual, diff = read_png(folder / "screen.png"), read_png(folder / "screen-diff.png")
        check(actual[:2] == diff[:2] == (16, 8), f"{name}: sizes {actual[:2]} {diff[:2]}")
        check(pixel(actual, 3, 2) == "#ff0000", f"{name}: screen.png is not the screen")
        check(pixel(diff, x, y) == "#ff0000", f"{name}: the difference is not marked red")
        check(pixel(diff, 0, 0) == "#04080c", f"{name}: the rest is not dimmed: {pixel(diff, 0, 0)}")


def test_bad_screen_fields_are_case_errors(tmp):
    """A corrupt or missing reference PNG and a bad probe are errors of that
    case, naming the file and the field; the other cases run."""
    cases = tmp / "cases"
    (cases / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    write_case(cases, "corrupt", **SCREEN, screen={"reference": "corrupt.png"})
    write_case(cases, "missing", **SCREEN, screen={"reference": "nowhere.png"})
    write_case(cases, "bad-colour", **SCREEN, screen={"probes": [[0, 0, "red"]]})
    write_case(cases, "outside", **SCREEN, screen={"probes": [[16, 0, "#000000"]]})
    write_case(cases, "fine", **SCREEN, screen={"probes": [[3, 2, "#ff0000"]]})
    status, output, _ = run_suite([cases], tmp / "out")
    check(status == 1, f"expected exit 1, got {status}", output)
    for name, text in (
            ("corrupt", f"corrupt.json: field 'screen.reference': {cases / 'corrupt.png'}"),
            ("missing", f"missing.json: field 'screen.reference': cannot read PNG "
                        f"{cases / 'nowhere.png'}"),
            ("bad-colour", "bad-colour.json: field 'screen.probes[0]': colour 'red' is not"),
            ("outside", "outside.json: field 'screen.probes[0]': (16, 0) is outside the 16x8 "
                        "framebuffer")):
        check(f"ERROR {name}" in output, f"{name} is not an ERROR", output)
        check(text in output, f"{name}: no error naming file and field ({text})", output)
    check("PASS  fine" in output, "the good case did not run", output)


def test_missing_screenshot_fails(tmp):
    """No framebuffer (vmm refuses --screenshot) or a vmm that ended before
    writing its screenshot fails the case with a reason saying so."""
    cases = tmp / "cases"
    write_case(cases, "no-framebuffer", cmdline="exit=0", screen={"probes": [[0, 0, "#000000"]]})
    write_case(cases, "unwritten", framebuffer="16x8", cmdline="no-screenshot exit=0",
               screen={"probes": [[0, 0, "#000000"]]})
    status, output, _ = run_suite([cases], tmp / "out")
    check(status == 1, f"expected exit 1, got {status}", output)
    check("expected exit:0, got setup-error:64" in output, "vmm's refusal not reported", output)
    check(f"screen: vmm wrote no screenshot ({tmp / 'out' / 'no-framebuffer' / 'screen.png'} is "
          "missing): did the guest have a framebuffer?" in output, "no-screenshot reason", output)
    check(f"screen: the screenshot {tmp / 'out' / 'unwritten' / 'screen.png'} is empty: vmm "
          "ended before writing it" in output, "empty screenshot reason", output)


TESTS = {name[len("test_"):]: fn for name, fn in globals().items() if name.startswith("test_")}

if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[3] not in TESTS:
        sys.exit(f"usage: {sys.argv[0]} VMM FAKE_VMM {{{'|'.join(TESTS)}}}")
    VMM, FAKE, name = sys.argv[1], sys.argv[2], sys.argv[3]
    with tempfile.TemporaryDirectory(prefix=f"suite-{name}-") as d:
        tmp = pathlib.Path(d)
        (tmp / "cases").mkdir()
        try:
            TESTS[name](tmp)
        except Failure as e:
            print(f"FAILED {name}: {e}")
            sys.exit(1)
    print(f"ok {name}")
