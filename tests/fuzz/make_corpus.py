#!/usr/bin/env python3
"""Writes the seed corpora (tests/fuzz/corpus/<target>/) and dictionaries
(tests/fuzz/dict/<target>.dict) of the fuzz targets: small valid inputs,
built here from the formats' definitions, that each target's harness
(tests/fuzz/*.cc) documents. Deterministic: running it again gives the same
files. Usage: tests/fuzz/make_corpus.py [OUT_DIR]   (default: tests/fuzz)
"""
import gzip
import lzma
import os
import shutil
import struct
import sys

OUT_DIR = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
corpora = {}
dicts = {}


def seed(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    if target in ("virtqueue", "insn_assist") or target.startswith("virtio_"):
        data = bytes(data).rstrip(b"\0")  # the harness zero-fills guest memory first
    corpora.setdefault(target, []).append((name, bytes(data)))


def put(buf, at, fmt, *values):
    struct.pack_into("<" + fmt, buf, at, *values)


# --- Kernel images ---------------------------------------------------------
PT_LOAD, PT_NOTE = 1, 4
PF_X, PF_W, PF_R = 1, 2, 4


def note(name, type_, desc):
    pad = lambda b: b + b"\0" * (-len(b) % 4)
    n = name.encode() + b"\0"
    return struct.pack("<III", len(n), len(desc), type_) + pad(n) + pad(desc)


def elf(is64, entry, segments, notes=b"", machine=None):
    """segments: (paddr, data, memsz, flags); a PT_NOTE holding `notes` last."""
    ehsize, phsize = (64, 56) if is64 else (52, 32)
    count = len(segments) + (1 if notes else 0)
    at = ehsize + count * phsize
    offsets = []
    for _, data, _, _ in segments:
        offsets.append(at)
        at += len(data)
    note_at = at
    out = bytearray(at + len(notes))
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1, 1]) + b"\0" * 9
    out[0:16] = ident
    machine = machine if machine is not None else (62 if is64 else 3)
    if is64:
        put(out, 16, "HHIQQQIHHHHHH", 2, machine, 1, entry, ehsize, 0, 0, ehsize, phsize, count,
            0, 0, 0)
    else:
        put(out, 16, "HHIIIIIHHHHHH", 2, machine, 1, entry, ehsize, 0, 0, ehsize, phsize, count,
            0, 0, 0)
    for i in range(count):
        if i < len(segments):
            paddr, data, memsz, flags = segments[i]
            fields = (PT_LOAD, flags, offsets[i], paddr, paddr, len(data), memsz)
            out[offsets[i]:offsets[i] + len(data)] = data
        else:
            fields = (PT_NOTE, PF_R, note_at, 0, 0, len(notes), 0)
        p = ehsize + i * phsize
        t, fl, off, va, pa, fs, ms = fields
        if is64:
            put(out, p, "IIQQQQQQ", t, fl, off, va, pa, fs, ms, 4)
        else:
            put(out, p, "IIIIIIII", t, off, va, pa, fs, ms, fl, 4)
    out[note_at:] = notes
    return bytes(out)


code = b"\x90" * 0x100 + b"\xf4" * 0x100
elf64_small = elf(True, 0x100000, [(0x100000, code, 0x1000, PF_R | PF_X)])
elf64_two = elf(True, 0x100010, [(0x100000, code, 0x2000, PF_R | PF_X),
                                 (0x200000, b"data" * 64, 0x3000, PF_R | PF_W)])
elf64_highvirt = elf(True, 0x1000000, [(0x1000000, code, 0x10000, PF_R | PF_X)])
pvh_note = note("Xen", 18, struct.pack("<I", 0x100040)) + note("GNU", 3, bytes(range(20)))
pvh = elf(False, 0x100000, [(0x100000, code, 0x2000, PF_R | PF_X)], pvh_note)
pvh_two = elf(False, 0x100000, [(0x100000, code, 0x1000, PF_R | PF_X),
                                (0x180000, b"\x11" * 0x80, 0x1000, PF_R | PF_W)],
              note("Xen", 18, struct.pack("<I", 0x100000)))


def bzimage(version=0x020F, xloadflags=0x03, pref=0x1000000, init_size=0x400000, kernel=0x2000,
            payload=b"", setup_sects=4, loadflags=0x01):
    setup = (setup_sects + 1) * 512
    kernel = max(kernel, 0x100 + len(payload))
    out = bytearray(setup + kernel)
    out[setup:] = b"\xf4" * kernel
    if payload:
        out[setup + 0x100:setup + 0x100 + len(payload)] = payload
        put(out, 0x248, "II", 0x100, len(payload))
    put(out, 0x1F1, "B", setup_sects)
    put(out, 0x1F4, "I", (kernel + 15) // 16)
    put(out, 0x1FE, "H", 0xAA55)
    put(out, 0x200, "BB", 0xEB, 0x6A)
    out[0x202:0x206] = b"HdrS"
    put(out, 0x206, "H", version)
    put(out, 0x20E, "H", 0x200)
    vs = b"6.99.0-fuzz (corpus@vmm) #1\0"
    out[0x400:0x400 + len(vs)] = vs
    put(out, 0x211, "B", loadflags)
    put(out, 0x214, "I", 0x100000)
    put(out, 0x22C, "I", 0x7FFFFFFF)
    put(out, 0x230, "I", 0x200000)
    put(out, 0x234, "B", 1)
    put(out, 0x236, "H", xloadflags)
    put(out, 0x238, "I", 0x7FF)
    put(out, 0x258, "Q", pref)
    put(out, 0x260, "I", init_size)
    return bytes(out)


def multiboot_kludge(flags_extra=0, entry=0x100020, size=0x800):
    mb = bytearray(b"\x90" * size)
    flags = (1 << 16) | (1 << 1) | flags_extra
    put(mb, 0, "III", 0x1BADB002, flags, (-(0x1BADB002 + flags)) & 0xFFFFFFFF)
    put(mb, 12, "IIIII", 0x100000, 0x100000, 0x100000 + size, 0x101000 + size, entry)
    return bytes(mb)


def multiboot_elf():
    # An ELF32 kernel with a multiboot header (flags: page-align, meminfo) in
    # its first segment: loaded by its program headers.
    hdr = struct.pack("<III", 0x1BADB002, 3, (-(0x1BADB002 + 3)) & 0xFFFFFFFF)
    return elf(False, 0x100010, [(0x100000, hdr + code, 0x2000, PF_R | PF_X)])


def mb2_header(tags, arch=0):
    body = b""
    for type_, flags, words in tags + [(0, 0, [])]:
        size = 8 + 4 * len(words)
        t = struct.pack("<HHI", type_, flags, size) + b"".join(struct.pack("<I", w) for w in words)
        body += t + b"\0" * (-len(t) % 8)
    length = 16 + len(body)
    return struct.pack("<IIII", 0xE85250D6, arch, length,
                       (-(0xE85250D6 + arch + length)) & 0xFFFFFFFF) + body


def mb2_flat(extra=()):
    image = bytearray(b"\x90" * 0x1000)
    h = mb2_header([(2, 0, [0x100000, 0x100000, 0x101000, 0x103000]), (3, 0, [0x100100])]
                   + list(extra))
    image[0:len(h)] = h
    return bytes(image)


def mb2_elf():
    h = mb2_header([(1, 0, [1, 2, 3, 4, 6, 21]), (6, 0, []), (10, 1, [0x100000, 0x1000000,
                                                                         0x1000, 0])])
    # The segment starts at file offset 84; 4 bytes of padding put the header
    # on the 8-byte boundary the spec requires.
    return elf(False, 0x100100, [(0x100000, b"\0" * 4 + h + code, 0x3000, PF_R | PF_X)])


LIMINE_COMMON = (0xc7b1dd30df4c8b88, 0x0a82e883a194f07b)
LIMINE_REVISION = (0xf9562b2d5c95a6c8, 0x6a7b384944536bdc)
LIMINE_IDS = {  # the last two words of each request ID (limine-protocol PROTOCOL.md)
    "hhdm": (0x48dcf1cb8ad2b852, 0x63984e959a98244b),
    "memmap": (0x67cf3d9d378a806f, 0xe304acdfc50c3c62),
    "mp": (0x95a67b819a1b857e, 0xa0b61b723b6a73e0),
    "module": (0x3e7e279702be32af, 0xca1c4f3bd1280cee),
    "entry": (0x13d86c035a1cd3e1, 0x2b0caa89d8f3026a),
    "stack": (0x224ef0460a8e8926, 0xe1cb0fc25f46ea3d),
    "entropy": (0x65ea80255d5682c5, 0x9117240723f493eb),
    "paging": (0x95c1a0edab0944cb, 0xa4e5cb3842f7488a),
    "file": (0xad97e90e83f1ed67, 0x31eb5d1c5ff23b69),
}


def limine(revision, requests, delimiters=False):
    """A Limine ELF64: text RX at 0xffffffff80000000, data RW after it with
    the base revision tag and `requests` [(name, [fields])]."""
    base = 0xffffffff80000000
    data = bytearray(0x800)
    at = 0
    if delimiters:
        put(data, at, "4Q", 0xf6b8f4b39de7d1ae, 0xfab91a6940fcb9cf, 0x785c6ed015d3e316,
            0x181e920a7852b9d9)
        at += 32
    put(data, at, "3Q", *LIMINE_REVISION, revision)
    at += 24
    for name, fields in requests:
        put(data, at, "6Q", *LIMINE_COMMON, *LIMINE_IDS[name], 0, 0)
        for i, f in enumerate(fields):
            put(data, at + 48 + 8 * i, "Q", f)
        at += 48 + 8 * max(len(fields), 1)
    if delimiters:
        put(data, at, "2Q", 0xadc0e0531bb10d03, 0x9572709f31764c62)
    return elf(True, base, [(base, b"\x90" * 0x100, 0x1000, PF_R | PF_X),
                            (base + 0x1000, bytes(data), 0x2000, PF_R | PF_W)])


def bootboot_level1():
    """A level 1 BOOTBOOT kernel: one RWX segment at -2 MiB + 2 pages."""
    base = 0xffffffffffe02000
    return elf(True, base, [(base, b"\x90" * 0x200, 0x3000, PF_R | PF_W | PF_X)])


images = {
    "elf64": [("small.elf", elf64_small), ("two-segments.elf", elf64_two),
              ("at-16m.elf", elf64_highvirt)],
    "pvh": [("pvh-note.elf", pvh), ("pvh-two.elf", pvh_two)],
    "bzimage": [("v2.15.bzimage", bzimage()), ("v2.12.bzimage", bzimage(version=0x020C)),
                ("loaded-high.bzimage", bzimage(pref=0x200000, init_size=0x200000))],
    "multiboot": [("kludge.mb", multiboot_kludge()),
                  ("kludge-video.mb", multiboot_kludge(flags_extra=1 << 2)),
                  ("elf32.mb", multiboot_elf())],
    "multiboot2": [("flat.mb2", mb2_flat()),
                   ("flat-requests.mb2", mb2_flat([(6, 0, []), (1, 0, [1, 2, 3, 4, 6, 21])])),
                   ("elf32.mb2", mb2_elf())],
    "bootboot": [("level1.bootboot", bootboot_level1())],
    "limine": [("rev3-hhdm-memmap.limine", limine(3, [("hhdm", []), ("memmap", [])])),
               ("rev0-mp.limine", limine(0, [("mp", [0]), ("stack", [0x20000])])),
               ("rev6-delimited.limine",
                limine(6, [("entry", [0xffffffff80000010]), ("entropy", [4]), ("file", []),
                           ("paging", [0])], delimiters=True))],
}
for target, files in images.items():
    for name, data in files:
        seed(target, name, data)
        seed("boot_image", name, data)

payload = (b"vmlinux payload " * 64) + bytes(range(256))
xz = lzma.compress(payload, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32)
gz = gzip.compress(payload, mtime=0)
seed("unpack", "payload.xz", xz)
seed("unpack", "payload.gz", gz)
seed("unpack", "truncated.xz", xz[: len(xz) // 2])
seed("unpack", "zstd-magic", b"\x28\xb5\x2f\xfd" + payload[:32])
seed("unpack", "empty.gz", gzip.compress(b"", mtime=0))

# --- Guest-driven ------------------------------------------------------------


def desc(addr, length, flags=0, next_=0):
    return struct.pack("<QIHH", addr, length, flags, next_)


NEXT, WRITE, INDIRECT = 1, 2, 4

# virtqueue (guest_input_fuzz.cc FuzzVirtqueue): [flags][size exp][rings at 0x10000]
for name, flags, exp, chains in [
        ("two-desc", 3, 3, [[(0x30000, 16, NEXT, 1), (0x31000, 512, WRITE, 0)]]),
        ("indirect", 3, 3, "indirect"),
        ("plain-no-event-idx", 0, 4, [[(0x30000, 64, 0, 0)], [(0x30100, 64, WRITE, 0)]]),
]:
    size = 1 << exp
    ring = bytearray(16 * size + 6 + 2 * size + 0x100)
    heads = []
    if chains == "indirect":
        ring[0:16] = desc(0x10000 + 0x800, 48, INDIRECT)
        table = desc(0x30000, 16, NEXT, 1) + desc(0x30100, 8, NEXT, 2) + desc(0x31000, 1, WRITE)
        ring.extend(b"\0" * (0x800 + 48 - len(ring)))
        ring[0x800:0x800 + 48] = table
        heads = [0]
    else:
        i = 0
        for chain in chains:
            heads.append(i)
            for j, (a, l, f, n) in enumerate(chain):
                ring[16 * (i + j):16 * (i + j + 1)] = desc(a, l, f, i + n if f & NEXT else 0)
            i += len(chain)
    avail = 16 * size
    put(ring, avail + 2, "H", len(heads))
    for k, h in enumerate(heads):
        put(ring, avail + 4 + 2 * k, "H", h)
    seed("virtqueue", name, bytes([flags, exp]) + ring)

# insn_assist (FuzzAssist): [mode][paging][16 regs][15 insn bytes][page tables at 0x20000]
TABLES = 0x20000
for name, mode, paging, insn in [
        ("ldmxcsr-long", 1 | 4 | 64, 0, b"\x0f\xae\x54\x24\x04"),
        ("stmxcsr-rip", 1 | 4 | 64, 0, b"\x0f\xae\x1d\x00\x01\x00\x00"),
        ("stmxcsr-fs-32bit", 2 | 4, 1, b"\x64\x0f\xae\x18"),
        ("ldmxcsr-sib-rex", 1 | 4 | 64 | 16, 2, b"\x41\x0f\xae\x54\x88\x10"),
]:
    v = bytearray(33 + 0x3000)
    v[0], v[1] = mode, paging
    for r in range(16):
        v[2 + r] = r * 3
    v[18:18 + len(insn)] = insn
    t = 33
    put(v, t + 0, "Q", (TABLES + 0x1000) | 7)
    put(v, t + 0x1000, "Q", (TABLES + 0x2000) | 7)
    put(v, t + 0x2000, "Q", 0x83)
    put(v, t + 0x2008, "Q", 0x200000 | 0x81)  # present, read-only, 2 MiB
    seed("insn_assist", name, v)

# virtio devices (virtio_fuzz.cc FuzzDevice): [flags][size exp][rounds][image at 0x10000]
# Queue q: descriptors at image 0x4000*q, avail +0x1000, used +0x2000;
# buffers at image 0x3000 and up (guest 0x13000). The harness zero-fills
# the region first, so trailing zeros are left out of the files.
IMG = 0x10000


def virtio_image(queues):
    """queues: list of (chains) per queue; chain: list of (addr, len, flags)."""
    img = bytearray(0x9000)  # trimmed by seed_zero_padded
    for q, chains in enumerate(queues):
        base = 0x4000 * q
        i = 0
        heads = []
        for chain in chains:
            heads.append(i)
            for j, (a, l, f) in enumerate(chain):
                last = j == len(chain) - 1
                img[base + 16 * (i + j):base + 16 * (i + j + 1)] = desc(
                    a, l, f | (0 if last else NEXT), 0 if last else i + j + 1)
            i += len(chain)
        put(img, base + 0x1000 + 2, "H", len(heads))
        for k, h in enumerate(heads):
            put(img, base + 0x1000 + 4 + 2 * k, "H", h)
    return img


B = IMG + 0x3000
blk = virtio_image([[
    [(B, 16, 0), (B + 0x200, 512, WRITE), (B + 0x400, 1, WRITE)],          # IN sector 1
    [(B + 0x10, 16, 0), (B + 0x200, 1024, 0), (B + 0x401, 1, WRITE)],      # OUT sector 2
    [(B + 0x20, 16, 0), (B + 0x402, 1, WRITE)],                            # FLUSH
    [(B + 0x30, 16, 0), (B + 0x600, 20, WRITE), (B + 0x403, 1, WRITE)],    # GET_ID
    [(B + 0x40, 16, 0), (B + 0x200, 512, WRITE), (B + 0x404, 1, WRITE)],   # IN past the end
]])
for k, (type_, sector) in enumerate([(0, 1), (1, 2), (4, 0), (8, 0), (0, 1 << 40)]):
    put(blk, 0x3000 + 0x10 * k, "IIQ", type_, 0, sector)
seed("virtio_blk", "requests", bytes([0, 4, 1]) + blk)
seed("virtio_blk", "requests-ro-plain", bytes([1 | 2 | 4, 4, 2]) + blk)
seed("virtio_blk", "requests-reset", bytes([16 | 32, 4, 3]) + blk)
blk_ind = virtio_image([[[(B + 0x800, 48, INDIRECT)]]])
blk_ind[0x3800:0x3800 + 48] = (desc(B, 16, NEXT, 1) + desc(B + 0x200, 512, WRITE | NEXT, 2)
                               + desc(B + 0x400, 1, WRITE))
put(blk_ind, 0x3000, "IIQ", 0, 0, 3)
seed("virtio_blk", "indirect", bytes([0, 3, 1]) + blk_ind)

con = virtio_image([[[(B, 64, WRITE)], [(B + 0x40, 64, WRITE)]],
                    [[(B + 0x100, 6, 0)], [(B + 0x110, 3, 0), (B + 0x120, 4, 0)]]])
con[0x3100:0x3106] = b"hello\n"
con[0x3110:0x3113] = b"two"
con[0x3120:0x3124] = b" do\n"
seed("virtio_console", "rx-tx", bytes([8, 3, 2]) + con)
seed("virtio_console", "tx-only-plain", bytes([1 | 2, 2, 1]) + con)
seed("virtio_console", "rx-reset", bytes([8 | 16 | 32, 3, 2]) + con)

rng = virtio_image([[[(B, 16, WRITE), (B + 0x100, 32, WRITE)], [(B + 0x200, 4096, WRITE)],
                     [(B + 0x10, 8, 0)]]])
seed("virtio_rng", "buffers", bytes([0, 3, 1]) + rng)
seed("virtio_rng", "buffers-plain", bytes([3, 2, 3]) + rng)
seed("virtio_rng", "buffers-reset", bytes([16, 3, 2]) + rng)

# virtio_mmio (FuzzMmio): [device][op count][ops: kind, offset16, width, value32][image]
READ, WRITE_OP, NOTIFY, STATUS = 0, 1, 2, 3


def op(kind, offset, value=0, width=2):
    return struct.pack("<BHBI", kind, offset, width, value)


def bring_up(queues, features_hi=1, features_lo=0x30000000):
    ops = [op(READ, 0x000), op(READ, 0x004), op(READ, 0x008), op(STATUS, 0, 0),
           op(STATUS, 0, 1), op(STATUS, 0, 3), op(WRITE_OP, 0x014, 1), op(READ, 0x010),
           op(WRITE_OP, 0x024, 1), op(WRITE_OP, 0x020, features_hi), op(WRITE_OP, 0x024, 0),
           op(WRITE_OP, 0x020, features_lo), op(STATUS, 0, 0xB), op(READ, 0x070)]
    for q in range(queues):
        base = IMG + 0x4000 * q
        ops += [op(WRITE_OP, 0x030, q), op(READ, 0x034), op(WRITE_OP, 0x038, 8),
                op(WRITE_OP, 0x080, base), op(WRITE_OP, 0x084, 0),
                op(WRITE_OP, 0x090, base + 0x1000), op(WRITE_OP, 0x0A0, base + 0x2000),
                op(WRITE_OP, 0x044, 1)]
    ops += [op(STATUS, 0, 0xF)]
    return ops


def mmio_seed(device, ops, image):
    return bytes([device, len(ops)]) + b"".join(ops) + bytes(image)


seed("virtio_mmio", "rng-bring-up",
     mmio_seed(2, bring_up(1) + [op(WRITE_OP, 0x050, 0), op(READ, 0x060), op(WRITE_OP, 0x064, 1),
                                 op(READ, 0x0FC), op(READ, 0x100, 0, 0)], rng))
seed("virtio_mmio", "console-bring-up",
     mmio_seed(1, bring_up(2) + [op(NOTIFY, 0, 1), op(NOTIFY, 0, 0), op(READ, 0x100, 0, 1),
                                 op(WRITE_OP, 0x108, 0x41, 2), op(STATUS, 0, 0)], con))
seed("virtio_mmio", "blk-bring-up",
     mmio_seed(0, bring_up(1, features_lo=0x30000266) + [op(READ, 0x100, 0, 3), op(READ, 0x108),
                                                         op(WRITE_OP, 0x050, 0),
                                                         op(WRITE_OP, 0x0AC, 0),
                                                         op(READ, 0x0B0)], blk))

# Legacy register files (legacy_fuzz.cc): ops [kind][port][width][value x4],
# kind 0 in, 1 out, 2/3 host events; width code 0..2 = one byte.
IN, OUT, HOST, HOST2 = 0, 1, 2, 3


def lop(kind, port, value=0, width=0):
    return struct.pack("<BBBI", kind, port, width, value)


serial_init = [lop(OUT, 3, 0x80), lop(OUT, 0, 1), lop(OUT, 1, 0), lop(OUT, 3, 3),
               lop(OUT, 2, 0xC7), lop(OUT, 4, 0x0B), lop(OUT, 1, 0x0F), lop(IN, 2), lop(IN, 5)]
seed("serial", "linux-init-tx", b"".join(serial_init + [lop(OUT, 0, ord(c)) for c in "hi\n"]
                                         + [lop(IN, 5), lop(IN, 2), lop(IN, 6)]))
seed("serial", "host-input-rx", b"".join(serial_init + [lop(HOST, 0, 0x34333204), lop(IN, 2),
                                                        lop(IN, 5), lop(IN, 0), lop(IN, 0),
                                                        lop(IN, 0), lop(IN, 2)]))
seed("serial", "loopback", b"".join(serial_init + [lop(OUT, 4, 0x1F)]
                                    + [lop(OUT, 0, 0x41 + i) for i in range(18)]
                                    + [lop(IN, 5), lop(IN, 0), lop(IN, 6), lop(OUT, 4, 0x0B),
                                       lop(OUT, 7, 0x55), lop(IN, 7), lop(IN, 0, 0, 4)]))
seed("serial", "no-fifo", b"".join([lop(OUT, 2, 0), lop(OUT, 1, 0x05), lop(HOST, 0, 0x61626302),
                                    lop(IN, 2), lop(IN, 0), lop(IN, 5), lop(OUT, 0, 0x7A, 3)]))

CMD, DATA = 1, 0  # i8042 port selector: bit 0
seed("i8042", "command-byte", b"".join([lop(OUT, CMD, 0x20), lop(IN, DATA), lop(OUT, CMD, 0x60),
                                        lop(OUT, DATA, 0x47), lop(IN, CMD), lop(OUT, CMD, 0xAA),
                                        lop(IN, DATA), lop(OUT, CMD, 0xAB), lop(IN, DATA)]))
seed("i8042", "keyboard", b"".join([lop(OUT, DATA, 0xFF), lop(IN, DATA), lop(IN, DATA),
                                    lop(OUT, DATA, 0xF2), lop(IN, DATA), lop(IN, DATA),
                                    lop(OUT, DATA, 0xED), lop(OUT, DATA, 0x07), lop(IN, DATA),
                                    lop(HOST, DATA, 0x9E1E0003), lop(IN, CMD), lop(IN, DATA),
                                    lop(HOST2, DATA), lop(IN, DATA), lop(IN, DATA)]))
seed("i8042", "output-port-reset", b"".join([lop(OUT, CMD, 0xD0), lop(IN, DATA),
                                             lop(OUT, CMD, 0xD1), lop(OUT, DATA, 0xDF),
                                             lop(OUT, CMD, 0xA7), lop(OUT, CMD, 0xA8),
                                             lop(OUT, CMD, 0xD4), lop(OUT, DATA, 0xF4),
                                             lop(OUT, CMD, 0xFE), lop(IN, 0x80)]))

IDX, VAL = 0, 1  # cmos: offset 0 = index port 0x70, 1 = data port 0x71
clock = []
for reg in [0x0A, 0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32, 0x0B, 0x0C, 0x0D]:
    clock += [lop(OUT, IDX, reg), lop(IN, VAL)]
seed("cmos", "read-clock", b"".join(clock))
seed("cmos", "set-clock-binary-24h", b"".join(
    [lop(OUT, IDX, 0x0B), lop(OUT, VAL, 0x86), lop(OUT, IDX, 0x04), lop(OUT, VAL, 23),
     lop(OUT, IDX, 0x09), lop(OUT, VAL, 99), lop(OUT, IDX, 0x0B), lop(OUT, VAL, 0x06),
     lop(HOST, IDX, 3600), lop(OUT, IDX, 0x04), lop(IN, VAL), lop(OUT, IDX, 0x80 | 0x00),
     lop(IN, VAL)]))
seed("cmos", "memory-and-12h", b"".join(
    [lop(OUT, IDX, r) + lop(IN, VAL) for r in (0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35,
                                               0x5B, 0x5C, 0x5D, 0x7F)]
    + [lop(OUT, IDX, 0x0B), lop(OUT, VAL, 0x80), lop(OUT, IDX, 0x04), lop(OUT, VAL, 0x92),
       lop(OUT, IDX, 0x0B), lop(OUT, VAL, 0x00), lop(HOST2, IDX, 0x7FFFFFFF), lop(OUT, IDX, 0),
       lop(IN, VAL, 0, 3)]))

# --- User-written --------------------------------------------------------------
http = [
    "GET /vm HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "PUT /vm/state HTTP/1.1\r\nContent-Length: 18\r\n\r\n{\"state\":\"Paused\"}",
    "PUT /actions HTTP/1.1\r\nContent-Length: 21\r\nExpect: 100-continue\r\n\r\n"
    "{\"action\":\"Shutdown\"}GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "PUT /actions HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 28\r\n\r\n"
    "{\"action\":\"SendCtrlAltDel\"}",
    "GET /vm?x=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    "DELETE /vm/state HTTP/1.1\r\nConnection: close\r\n\r\n",
]
for i, text in enumerate(http):
    seed("http", "request-%d" % i, bytes([7 + 13 * i]) + text.encode())

configs = [
    '{"kernel": "kernel.elf", "cmdline": "", "memory": "128M", "cpus": 1, "serial": "stdio"}',
    '{"kernel": "/boot/vmlinuz", "initrd": "initrd.img", "cmdline": "console=ttyS0 quiet",'
    ' "memory": "1G", "cpus": 4, "serial": "file:serial.log", "console": "socket:con.sock",'
    ' "disks": [{"path": "disk.img", "read_only": true}, "other.img,ro"], "rng": true,'
    ' "api_sock": "api.sock", "timeout": 2.5, "boot_protocol": "bzimage", "log_level": "debug"}',
    '{"kernel": "k", "memory": "64M", "boot_trace": true, "cpu_template": "none",'
    ' "debugcon": "stdio", "exit_code": "qemu", "timeout": 0, "serial": "none"}',
    '{"kernel": "k", "memory": 1e30, "cpus": -1, "timeout": 1e19}',
]
for i, text in enumerate(configs):
    seed("config", "config-%d.json" % i, text)

cases = [
    '{"kernel": "../dummy-kernel.bin", "cmdline": "say=leaving exit=7", "timeout": 5,'
    ' "result": "exit:7", "expect": ["leaving"]}',
    '{"name": "fault.case-1", "description": "faults", "kernel": "${build}/k.elf",'
    ' "result": "triple-fault", "forbid": ["panic"], "tags": ["fast", "fault"]}',
    '{"kernel": "k", "initrd": "${source}/i", "memory": "256M", "cpus": 2, "disks": ["d.img,ro"],'
    ' "args": ["--rng"], "timeout": 10, "result": "timeout", "input": "ls\\n",'
    ' "input_after": "^\\\\$ ", "stdio": true}',
    '{"kernel": "k", "result": "setup-error:65", "expect": ["(a|b)+[x-z]{2,3}"]}',
]
for i, text in enumerate(cases):
    seed("suite_case", "case-%d.json" % i, text)

reports = [
    '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="vmm suite" tests="2" failures="1"'
    ' errors="0" time="1.5">\n  <testsuite name="boot" tests="2" failures="1" errors="0"'
    ' skipped="0" time="1.5" timestamp="2026-12-04T00:00:00" hostname="ci-1">\n'
    '    <testcase name="banner" classname="boot" time="0.4" file="/c/banner.json">\n'
    '      <system-out>[boot] entry &amp; more</system-out>\n    </testcase>\n'
    '    <testcase name="fault" classname="boot" time="1.1" file="/c/fault.json">\n'
    '      <failure message="expect pattern 1 of 2" type="exit:7">why &lt;here&gt;</failure>\n'
    '      <system-err>vmm: exit</system-err>\n    </testcase>\n  </testsuite>\n</testsuites>\n',
    '<testsuite name="boot" tests="1"><testcase name="x#2" classname="boot">'
    '<error message="malformed"/><skipped/></testcase></testsuite>',
    '<testsuites><testsuite><testcase name="a"/><testcase name="a"/></testsuite></testsuites>',
    '<!DOCTYPE t [<!ENTITY e "ee">]><testsuite><testcase name="&e;"><![CDATA[<raw>]]>'
    '</testcase></testsuite>',
]
for i, text in enumerate(reports):
    seed("junit_merge", "report-%d.xml" % i, text)

# --- Dictionaries ----------------------------------------------------------------


def esc(b):
    return "".join("\\x%02x" % c for c in b)


elf_words = [b"\x7fELF", b"\x02\x01\x01", b"\x01\x01\x01", b"\x3e\x00", b"\x03\x00",
             b"Xen\0", b"GNU\0", struct.pack("<I", 18), struct.pack("<I", PT_NOTE),
             struct.pack("<I", PT_LOAD), struct.pack("<I", 0x100000)]
bz_words = [b"HdrS", b"\x55\xaa", struct.pack("<H", 0x020F), struct.pack("<H", 0x0200),
            struct.pack("<Q", 0x1000000), b"\xfd7zXZ\0", b"\x1f\x8b\x08"]
mb_words = [struct.pack("<I", 0x1BADB002), struct.pack("<I", 0x10003), struct.pack("<I", 0x100000)]
mb2_words = [struct.pack("<I", 0xE85250D6), struct.pack("<HH", 2, 0), struct.pack("<HH", 3, 0),
             struct.pack("<HH", 1, 0), struct.pack("<HH", 10, 1), struct.pack("<I", 0x100000)]
dicts["elf64"] = dicts["pvh"] = elf_words
dicts["bzimage"] = bz_words
dicts["multiboot"] = mb_words + elf_words[:4]
dicts["multiboot2"] = mb2_words + elf_words[:4]
limine_words = [struct.pack("<Q", w) for w in LIMINE_COMMON + LIMINE_REVISION] + [
    struct.pack("<QQ", *ids) for ids in LIMINE_IDS.values()] + [struct.pack("<Q", 0xffffffff80000000)]
dicts["limine"] = limine_words + elf_words[:4]
dicts["bootboot"] = elf_words + [struct.pack("<Q", 0xffffffffffe02000),
                                 struct.pack("<Q", 0xffffffffffe00000), b"bootboot\0",
                                 b"environment\0", b"fb\0"]
dicts["boot_image"] = elf_words + bz_words + mb_words + mb2_words + limine_words
dicts["unpack"] = [b"\xfd7zXZ\0", b"YZ", b"\x1f\x8b\x08", b"\x28\xb5\x2f\xfd", b"\x5d\0\0",
                   b"BZh", b"\x02\x21\x4c\x18", b"\x89LZO"]
dicts["virtio_mmio"] = [b"virt", struct.pack("<H", 0x050), struct.pack("<H", 0x070),
                        struct.pack("<H", 0x100), struct.pack("<I", 0x10000)]
dicts["http"] = [w.encode() for w in [
    "GET ", "PUT ", "POST ", "PATCH ", "DELETE ", "HEAD ", " HTTP/1.1\r\n", " HTTP/1.0\r\n",
    "\r\n", "\r\n\r\n", "Host: ", "Content-Length: ", "Transfer-Encoding: chunked",
    "Connection: close", "Connection: keep-alive", "Expect: 100-continue",
    "Content-Type: application/json", "/vm", "/vm/state", "/actions", "/metrics",
    "{\"state\":\"Paused\"}", "{\"state\":\"Running\"}", "\"action\"", "\"Shutdown\"",
    "\"Reset\"", "\"SendCtrlAltDel\"", "\"Pause\"", "\"Resume\""]]
json_words = ["{", "}", "[", "]", ":", ",", "\"", "true", "false", "null", "\\u0000", "1e309",
              "-0", "18446744073709551616"]
dicts["config"] = [w.encode() for w in json_words + [
    "\"kernel\"", "\"initrd\"", "\"cmdline\"", "\"memory\"", "\"cpus\"", "\"serial\"",
    "\"console\"", "\"disks\"", "\"path\"", "\"read_only\"", "\"rng\"", "\"api_sock\"",
    "\"timeout\"", "\"boot_trace\"", "\"log_level\"", "\"boot_protocol\"", "\"cpu_template\"",
    "\"debugcon\"", "\"exit_code\"", "\"stdio\"", "\"none\"", "\"file:", "\"socket:", "\"pty\"",
    "\"128M\"", "\"2G\"", "\"elf64\"", "\"pvh\"", "\"bzimage\"", "\"multiboot\"",
    "\"multiboot2\"", "\"bzimage-unpacked\"", "\"vmm\"", "\"qemu\"", ",ro"]]
dicts["suite_case"] = [w.encode() for w in json_words + [
    "\"name\"", "\"description\"", "\"kernel\"", "\"initrd\"", "\"cmdline\"", "\"memory\"",
    "\"cpus\"", "\"disks\"", "\"args\"", "\"timeout\"", "\"result\"", "\"expect\"", "\"forbid\"",
    "\"tags\"", "\"input\"", "\"input_after\"", "\"stdio\"", "\"exit:", "\"triple-fault\"",
    "\"timeout\"", "\"setup-error:", "${build}", "${source}", "(", ")", "[^", "\\\\", "*", "+?",
    "{2,}"]]

dicts["junit_merge"] = [w.encode() for w in [
    "<testsuites", "</testsuites>", "<testsuite", "</testsuite>", "<testcase", "</testcase>",
    "<failure", "<error", "<skipped", "<system-out>", "<system-err>", " name=\"", " classname=\"",
    " time=\"", " timestamp=\"", " hostname=\"", "/>", "&amp;", "&#x1b;", "<![CDATA[", "]]>",
    "<!DOCTYPE", "<!ENTITY", "<?xml version=\"1.0\"?>"]]

# --- A debugger client (vmm/gdb/) ----------------------------------------------
def rsp(payload):
    b = payload.encode("latin1") if isinstance(payload, str) else payload
    return b"$" + b + b"#" + ("%02x" % (sum(b) & 0xFF)).encode()


STOP = b"\xff"  # gdb_fuzz.cc: the simulated target stops here
seed("gdb", "handshake", b"".join([
    rsp("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386"), b"+",
    rsp("QStartNoAckMode"), rsp("qXfer:features:read:target.xml:0,ffb"), rsp("?"),
    rsp("qfThreadInfo"), rsp("qsThreadInfo"), rsp("Hg1"), rsp("g")]))
seed("gdb", "memory", b"".join([
    rsp("m1000,40"), rsp("M1000,4:deadbeef"), rsp(b"X1004,2:}]A"), rsp("m90000,4")]))
seed("gdb", "breakpoints", b"".join([
    rsp("Z0,1010,1"), rsp("Z1,1020,1"), rsp("Z2,1100,8"), rsp("Z3,1108,4"), rsp("Z4,1110,2"),
    rsp("Z2,1120,8"), rsp("vCont;c"), STOP, rsp("z0,1010,1"), rsp("vCont;s:1;c"), STOP,
    rsp("D")]))
seed("gdb", "registers", b"".join([
    rsp("p10"), rsp("P10=0010000000000000"), rsp("p2d"), rsp("G" + "00" * 348), rsp("Hc2"),
    rsp("s"), STOP, rsp("c1000"), b"\x03" + STOP]))
seed("gdb", "monitor", b"".join([
    rsp("qRcmd," + b"regs".hex()), rsp("qThreadExtraInfo,2"), rsp("qC"), rsp("T2"),
    rsp("vKill;1")]))
seed("gdb", "junk", b"$g#00---hello\x03$" + b"a" * 100 + b"#zz" + rsp(""))
dicts["gdb"] = [w.encode() for w in [
    "$", "#", "}", "*", "+", "-", "qSupported", "QStartNoAckMode", "qXfer:features:read:",
    "target.xml", "qfThreadInfo", "qsThreadInfo", "qThreadExtraInfo,", "qAttached", "qRcmd,",
    "vCont?", "vCont;", "vKill", "vCtrlC", "Hg", "Hc", "Z0,", "Z1,", "Z2,", "Z3,", "Z4,", "z0,",
    "swbreak+", "hwbreak+", ":c", ":s", ";t"]]

for target, files in corpora.items():
    d = os.path.join(OUT_DIR, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in files:
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
os.makedirs(os.path.join(OUT_DIR, "dict"), exist_ok=True)
for target, words in dicts.items():
    with open(os.path.join(OUT_DIR, "dict", target + ".dict"), "w") as f:
        f.write("# libFuzzer dictionary for the %s target (written by make_corpus.py)\n" % target)
        for w in words:
            f.write('"%s"\n' % esc(w))
print("%d corpora, %d dictionaries in %s" % (len(corpora), len(dicts), OUT_DIR))
