#!/usr/bin/env python3
"""Boot check of vmm's firmware output on an emulated CPU (CTest label `qemu`).

Runs boot_image_dump (tools/boot_image) to get exactly the guest RAM and the
boot vCPU state firmware::LoadKernel prepares, then starts QEMU (TCG, no KVM
needed) with that RAM and, in place of a BIOS, a 128 KiB ROM holding vmm's
0xe0000-0xfffff bytes plus the trampoline page (trampoline.S) at 0xff000
that loads the dumped CPU state and jumps to its RIP. The guest's serial
output is then checked as tests/linux/boot_check.py checks vmm's
(docs/testing.md, "Boot checks under QEMU").

Memory as QEMU sees it:
  [0, 0xa0000)           the dumped RAM (-device loader)
  [0xa0000, 0xe0000)     nothing (vmm writes nothing there either: checked)
  [0xe0000, 0x100000)    the ROM: vmm's ACPI tables and whatever else vmm
                         wrote there, read-only; its last 16 KiB are the
                         trampoline's (temporary PML4, PDPT, PD, code), and
                         vmm's image must be empty there (checked)
  [1 MiB, RAM)           the dumped RAM (-device loader)
No BIOS code runs, so nothing but the loader writes guest RAM.

Usage:
  qemu_boot.py --dump-tool EXE --trampoline BIN [--timeout S]
               [--expect-status N] [--pattern REGEX]... -- LOADER_ARGS...
  LOADER_ARGS are boot_image_dump's (--kernel, --initrd, --memory, ...).
Exit 0 when every pattern matched and (with --expect-status) the guest wrote
N to the exit port, 1 otherwise, 77 (CTest's SKIP_RETURN_CODE) without qemu-system-x86_64.
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "linux"))
import boot_check  # noqa: E402  (the serial pattern matcher the Linux tests use)

SKIP = 77
ROM_BASE = 0xE0000            # where QEMU's pc machine shows the BIOS ROM's last 128 KiB
ROM_SIZE = 0x20000
VGA_HOLE = (0xA0000, 0xE0000)
TRAMPOLINE = 0xFF000          # trampoline.ld
TMP_PML4, TMP_PDPT, TMP_PD = 0xFC000, 0xFD000, 0xFE000
OURS = (TMP_PML4, 0x100000)   # the ROM pages the trampoline owns
CR0_PE, CR0_PG = 1, 1 << 31
EFER_LMA = 1 << 10
PTE_P, PTE_W, PTE_PS, PTE_A, PTE_D = 1, 2, 0x80, 0x20, 0x40
ADDR_MASK = 0x000FFFFFFFFFF000

# The parameter block at the start of the trampoline page (trampoline.S P_*).
P = dict(MODE=0x00, RIP=0x08, RSP=0x10, RBP=0x18, RAX=0x20, RBX=0x28, RSI=0x30, RDI=0x38,
         CR0=0x40, CR3=0x48, CR4=0x50, EFER=0x58, TMP_CR3=0x60, ALIAS=0x68, FLAGS=0x70,
         CS=0x78, DS=0x80, ES=0x82, FS=0x84, GS=0x86, SS=0x88, LDT=0x8A, TR=0x8C,
         FS_BASE=0x90, GS_BASE=0x98, GDT=0xA0, IDT=0xB0, NMSRS=0xC0, CS64=0xC8, MSRS=0xD0)
MAX_MSRS = 16


class Unsupported(Exception):
    """The dumped state is one the trampoline cannot reproduce, or the image
    overlaps what the trampoline needs: a failure, said plainly."""


def u64(ram, at):
    return struct.unpack_from("<Q", ram, at)[0]


def walk(ram, cr3, virt):
    """Guest-physical address of `virt` under 4-level paging, or None."""
    table = cr3 & ADDR_MASK
    for level, shift in enumerate((39, 30, 21, 12)):
        at = table + ((virt >> shift) & 0x1FF) * 8
        if at + 8 > len(ram):
            return None
        entry = u64(ram, at)
        if not entry & PTE_P:
            return None
        if level in (1, 2) and entry & PTE_PS:
            size = 1 << shift
            return (entry & ADDR_MASK & ~(size - 1)) | (virt & (size - 1))
        table = entry & ADDR_MASK
    return table | (virt & 0xFFF)


def find_alias(ram, cr3, phys):
    """A virtual address the guest's page tables map to page `phys`."""
    def canonical(v):
        return v | 0xFFFF000000000000 if v & (1 << 47) else v

    def search(table, level, virt):
        for i in range(512):
            at = table + i * 8
            if at + 8 > len(ram):
                return None
            entry = u64(ram, at)
            if not entry & PTE_P:
                continue
            v = virt | (i << (39 - 9 * level))
            size = 1 << (39 - 9 * level)
            target = entry & ADDR_MASK
            if level == 3 or (level in (1, 2) and entry & PTE_PS):
                base = target & ~(size - 1)
                if base <= phys < base + size:
                    return canonical(v + (phys - base))
                continue
            found = search(target, level + 1, v)
            if found is not None:
                return found
        return None
    return search(cr3 & ADDR_MASK, 0, 0)


def descriptor(ram, cpu, selector, paging):
    """The (base, limit, type, s, dpl, present, avl, l, db, g) the CPU loads
    for `selector` from the dumped GDT."""
    gdt = cpu["gdt"]
    if (selector & ~7) + 7 > gdt["limit"]:
        raise Unsupported(f"selector {selector:#x} is outside the GDT (limit {gdt['limit']:#x})")
    virt = gdt["base"] + (selector & ~7)
    phys = walk(ram, cpu["cr3"], virt) if paging else virt
    if phys is None:
        raise Unsupported(f"the GDT at {virt:#x} is not mapped by the guest's page tables")
    d = u64(ram, phys)
    limit = (d & 0xFFFF) | ((d >> 32) & 0xF0000)
    g = (d >> 55) & 1
    if g:
        limit = (limit << 12) | 0xFFF
    return dict(base=((d >> 16) & 0xFFFFFF) | ((d >> 32) & 0xFF000000), limit=limit,
                type=(d >> 40) & 0xF, s=(d >> 44) & 1, dpl=(d >> 45) & 3,
                present=(d >> 47) & 1, avl=(d >> 52) & 1, l=(d >> 53) & 1,
                db=(d >> 54) & 1, g=g)


def check_segments(ram, cpu, long_mode):
    """What loading each dumped selector from the dumped GDT gives must be the
    segment state vmm hands KVM; returns the mismatches. In long mode only the
    fields the CPU still uses count (SDM Vol. 3A §3.4.5, §5.2.1)."""
    problems = []
    for name in ("cs", "ds", "es", "fs", "gs", "ss", "tr"):
        seg = cpu[name]
        if seg["selector"] == 0:
            continue
        got = descriptor(ram, cpu, seg["selector"], long_mode)
        fields = ["present", "s", "dpl", "type"]
        if name == "cs" and long_mode:
            fields += ["l", "db"]
        elif not long_mode or name == "tr":
            fields += ["base", "limit", "db", "g", "avl"]
        for f in fields:
            want, have = seg[f], got[f]
            if f == "type" and name != "tr":  # the CPU sets the accessed bit itself
                want, have = want | 1, have | 1
            if f == "type" and name == "tr":  # LTR marks an available TSS busy
                have |= 2
            if want != have:
                problems.append(f"{name} selector {seg['selector']:#x}: BootInfo says {f} "
                                f"{want:#x}, the GDT descriptor says {have:#x}")
    return problems


def build_rom(ram, info, trampoline):
    cpu = info["cpu"]
    if len(ram) < 0x100000 + 0x1000:
        raise Unsupported("guest RAM below 1 MiB is not supported")
    if any(ram[VGA_HOLE[0]:VGA_HOLE[1]]):
        raise Unsupported("vmm wrote into 0xa0000-0xdffff, where QEMU has no RAM")
    if any(ram[OURS[0]:OURS[1]]):
        raise Unsupported(f"vmm's image uses {OURS[0]:#x}-{OURS[1]:#x}, the trampoline's pages")
    for what in ("kernel", "initrd"):
        start, end = info[f"{what}_start"], info[f"{what}_end"]
        if start < ROM_BASE + ROM_SIZE and end > VGA_HOLE[0] and end > start:
            raise Unsupported(f"the {what} [{start:#x}, {end:#x}) overlaps 0xa0000-0xfffff")
    window = ram[ROM_BASE:ROM_BASE + ROM_SIZE]
    used = max((i for i, b in enumerate(window) if b), default=-1) + 1
    print(f"ROM window: vmm's bytes up to {ROM_BASE + used:#x}, trampoline from {OURS[0]:#x}")

    long_mode = bool(cpu["cr0"] & CR0_PG)
    if not cpu["cr0"] & CR0_PE:
        raise Unsupported("real-mode entry (CR0.PE clear) is not supported")
    problems = check_segments(ram, cpu, long_mode)
    for p in problems:
        print(f"FAIL: {p}")
    if problems:
        raise Unsupported("segment state and GDT disagree (a vmm firmware bug)")
    rflags = cpu["rflags"]
    if rflags & ~0xD5 != 0x2:
        raise Unsupported(f"RFLAGS {rflags:#x}: only CF PF AF ZF SF can be set (SAHF)")
    if len(cpu["msrs"]) > MAX_MSRS:
        raise Unsupported(f"{len(cpu['msrs'])} MSRs, the trampoline takes {MAX_MSRS}")

    rom = bytearray(window)
    page = bytearray(trampoline)
    if len(page) != 0x1000:
        raise Unsupported(f"the trampoline is {len(page)} bytes, not one page")

    def put(field, fmt, *values):
        struct.pack_into("<" + fmt, page, P[field], *values)

    alias = TRAMPOLINE
    if long_mode:
        if not cpu["cr4"] & 0x20 or not cpu["efer"] & 0x100:
            raise Unsupported("CR0.PG without CR4.PAE and EFER.LME: only 4-level long mode")
        pml4 = bytearray(ram[cpu["cr3"] & ADDR_MASK:(cpu["cr3"] & ADDR_MASK) + 0x1000])
        if u64(pml4, 0) & PTE_P:
            if walk(ram, cpu["cr3"], TRAMPOLINE) != TRAMPOLINE:
                raise Unsupported("the guest's PML4[0] is present but does not identity-map "
                                  f"{TRAMPOLINE:#x}")
        else:
            # Identity-map [0, 2 MiB) for the trampoline's first 64-bit steps.
            struct.pack_into("<Q", pml4, 0, TMP_PDPT | PTE_P | PTE_W | PTE_A)
            pdpt = bytearray(0x1000)
            struct.pack_into("<Q", pdpt, 0, TMP_PD | PTE_P | PTE_W | PTE_A)
            pd = bytearray(0x1000)
            struct.pack_into("<Q", pd, 0, PTE_P | PTE_W | PTE_PS | PTE_A | PTE_D)
            rom[TMP_PDPT - ROM_BASE:TMP_PDPT - ROM_BASE + 0x1000] = pdpt
            rom[TMP_PD - ROM_BASE:TMP_PD - ROM_BASE + 0x1000] = pd
        # The copy is read-only: QEMU's page walker retries for ever when it
        # cannot set an accessed bit, so every present entry comes with A set.
        for i in range(512):
            entry = u64(pml4, i * 8)
            if entry & PTE_P:
                struct.pack_into("<Q", pml4, i * 8, entry | PTE_A)
        rom[TMP_PML4 - ROM_BASE:TMP_PML4 - ROM_BASE + 0x1000] = pml4
        alias = find_alias(ram, cpu["cr3"], TRAMPOLINE)
        if alias is None:
            raise Unsupported(f"the guest's page tables map no address to {TRAMPOLINE:#x} "
                              "(the trampoline page): nowhere to switch CR3 from")
        print(f"trampoline page {TRAMPOLINE:#x} is virtual {alias:#x} in the guest's tables")
    put("MODE", "Q", 1 if long_mode else 0)
    for r in ("RIP", "RSP", "RBP", "RAX", "RBX", "RSI", "RDI", "CR0", "CR3", "CR4"):
        put(r, "Q", cpu[r.lower()])
    put("EFER", "Q", cpu["efer"] & ~EFER_LMA)
    put("TMP_CR3", "Q", TMP_PML4)
    put("ALIAS", "Q", alias)
    put("FLAGS", "B", rflags & 0xFF)
    struct.pack_into("<H", page, P["CS"] + 4, cpu["cs"]["selector"])
    struct.pack_into("<H", page, P["CS64"] + 4, cpu["cs"]["selector"])
    for s in ("DS", "ES", "FS", "GS", "SS", "LDT", "TR"):
        put(s, "H", cpu[s.lower()]["selector"])
    put("FS_BASE", "Q", cpu["fs"]["base"])
    put("GS_BASE", "Q", cpu["gs"]["base"])
    put("GDT", "HQ", cpu["gdt"]["limit"], cpu["gdt"]["base"])
    put("IDT", "HQ", cpu["idt"]["limit"], cpu["idt"]["base"])
    put("NMSRS", "Q", len(cpu["msrs"]))
    for i, (index, value) in enumerate(cpu["msrs"]):
        struct.pack_into("<QQ", page, P["MSRS"] + 16 * i, index, value)
    if cpu["tr"]["selector"] == 0:
        print("TR: selector 0, not loadable by LTR; the CPU keeps its reset TR "
              f"(BootInfo: base {cpu['tr']['base']:#x} limit {cpu['tr']['limit']:#x})")
    rom[TRAMPOLINE - ROM_BASE:TRAMPOLINE - ROM_BASE + 0x1000] = page
    return bytes(rom)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dump-tool", required=True)
    parser.add_argument("--trampoline", required=True)
    parser.add_argument("--qemu", default="qemu-system-x86_64")
    parser.add_argument("--timeout", type=float, default=20)
    parser.add_argument("--expect-status", type=int,
                        help="the exit-port value; without it QEMU is stopped once all matched")
    parser.add_argument("--pattern", action="append")
    parser.add_argument("--keep", help="keep the images and QEMU's -d log in this directory")
    parser.add_argument("loader_args", nargs="+")
    args = parser.parse_args()
    qemu = shutil.which(args.qemu)
    if qemu is None:
        print(f"SKIP: {args.qemu} not found (install qemu-system-x86: scripts/install-deps.sh); "
              "the QEMU boot checks do not run", flush=True)
        return SKIP
    workdir = args.keep or tempfile.mkdtemp(prefix="qemu_boot.")
    os.makedirs(workdir, exist_ok=True)
    try:
        ram_path, json_path = os.path.join(workdir, "ram.bin"), os.path.join(workdir, "boot.json")
        dump = [args.dump_tool, *args.loader_args, "--ram-out", ram_path, "--json-out", json_path]
        print("dump:", " ".join(dump), flush=True)
        status = subprocess.run(dump).returncode
        if status != 0:
            print(f"FAIL: boot_image_dump exited with {status}")
            return 1
        with open(json_path) as f:
            info = json.load(f)
        with open(ram_path, "rb") as f:
            ram = f.read()
        with open(args.trampoline, "rb") as f:
            trampoline = f.read()
        print(f"protocol {info['protocol']}: {info['description']}")
        print(f"entry rip {info['cpu']['rip']:#x} rsp {info['cpu']['rsp']:#x} "
              f"cr0 {info['cpu']['cr0']:#x} cr3 {info['cpu']['cr3']:#x} "
              f"efer {info['cpu']['efer']:#x} msrs {info['cpu']['msrs']}")
        if info["aps"]:
            print(f"note: {len(info['aps'])} AP start states not run (QEMU gets -smp 1)")
        try:
            rom = build_rom(ram, info, trampoline)
        except Unsupported as e:
            print(f"FAIL: {e}")
            return 1
        # QEMU's RAM starts zeroed: the high part is loaded up to its last
        # non-zero byte only (512 MiB of zeros cost seconds to write).
        high = ram[0x100000:].rstrip(b"\0") or b"\0"
        files = {"rom.bin": rom, "low.bin": ram[:VGA_HOLE[0]], "high.bin": high}
        for name, data in files.items():
            with open(os.path.join(workdir, name), "wb") as f:
                f.write(data)
        memory_mib = info["memory"] // (1 << 20)
        if info["memory"] % (1 << 20):
            print("FAIL: --memory must be a whole number of MiB for QEMU's -m")
            return 1
        command = [qemu, "-machine", "pc,max-ram-below-4g=3G", "-accel", "tcg", "-cpu", "max",
                   "-smp", "1", "-m", f"{memory_mib}M", "-nodefaults", "-display", "none",
                   "-monitor", "none", "-serial", "stdio", "-no-reboot",
                   "-bios", os.path.join(workdir, "rom.bin"),
                   "-device", f"loader,file={os.path.join(workdir, 'low.bin')},addr=0,force-raw=on",
                   "-device",
                   f"loader,file={os.path.join(workdir, 'high.bin')},addr=0x100000,force-raw=on",
                   "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
        if args.keep:
            command += ["-d", "int,cpu_reset,guest_errors", "-D", os.path.join(workdir, "qemu.log")]
        # isa-debug-exit ends QEMU with (value << 1) | 1; a triple fault with
        # -no-reboot ends it with 0, which no expected value maps to.
        status = None
        if args.expect_status is not None:
            status = (args.expect_status << 1) | 1
            print(f"expecting exit-port value {args.expect_status}, QEMU status {status}")
        check = argparse.Namespace(timeout=args.timeout, need_file=None, expect_status=status,
                                   pattern=args.pattern, command=command)
        return boot_check.run(check)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
