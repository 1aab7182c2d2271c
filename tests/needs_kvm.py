#!/usr/bin/env python3
"""Runs a test command that boots a guest, or skips it when /dev/kvm is absent.

    needs_kvm.py COMMAND [ARGS...]

Opens /dev/kvm read-write the way vmm does. When that fails, prints one loud
SKIP line naming the error and exits 77, which CTest reports as "Skipped"
(the tests set SKIP_RETURN_CODE 77); when it works, the command replaces this
process, so its exit status is the test's. With VMM_REQUIRE_KVM=1 in the
environment a missing /dev/kvm fails the test instead (exit 69, vmm's "KVM
unavailable" status): set it on CI machines that are meant to have KVM.
See docs/testing.md.
"""
import os
import sys

SKIP = 77
KVM_UNAVAILABLE = 69


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: needs_kvm.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC))
    except OSError as e:
        reason = f"/dev/kvm cannot be opened here ({e.strerror})"
        if os.environ.get("VMM_REQUIRE_KVM") == "1":
            print(f"FAIL: {reason} and VMM_REQUIRE_KVM=1", file=sys.stderr)
            return KVM_UNAVAILABLE
        print(f"SKIPPED LOUDLY: {reason}; this test boots a guest", file=sys.stderr)
        return SKIP
    os.execvp(sys.argv[1], sys.argv[1:])
    return 2  # not reached


if __name__ == "__main__":
    sys.exit(main())
