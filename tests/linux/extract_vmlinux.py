#!/usr/bin/env python3
"""Extracts the vmlinux ELF from a Linux bzImage (Debian's are xz-compressed).

Usage: extract_vmlinux.py BZIMAGE OUT
Reads the setup header (Documentation/arch/x86/boot.rst): setup_sects at
0x1f1, payload_offset at 0x248 and payload_length at 0x24c, both relative to
the protected-mode kernel, which starts at (setup_sects + 1) * 512. Supports
xz, gzip and zstd-less kernels (zstd needs the `zstd` tool).
"""
import gzip
import lzma
import os
import struct
import subprocess
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    data = open(src, "rb").read()
    if data[0x202:0x206] != b"HdrS":
        sys.exit(f"{src}: not a bzImage (no HdrS signature)")
    setup_sects = data[0x1f1] or 4
    offset, length = struct.unpack_from("<II", data, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = data[start:start + length]
    if payload.startswith(b"\xfd7zXZ"):
        vmlinux = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(payload)
    elif payload.startswith(b"\x1f\x8b"):
        vmlinux = gzip.decompress(payload)
    elif payload.startswith(b"\x28\xb5\x2f\xfd"):
        vmlinux = subprocess.run(["zstd", "-dc"], input=payload, capture_output=True,
                                 check=True).stdout
    else:
        sys.exit(f"{src}: unknown payload compression {payload[:4].hex()}")
    if not vmlinux.startswith(b"\x7fELF"):
        sys.exit(f"{src}: decompressed payload is not an ELF file")
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(vmlinux)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
