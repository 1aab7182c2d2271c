// Ring-0 `int3` on a software KVM (docs/architecture.md, "The KVM on these machines").
//
// KVM's x86 instruction emulator cannot deliver `int3` in protected/long mode
// (it emulates software interrupts only in real mode), so on this host a
// guest kernel's own int3 -- Linux's alternatives self-test, its text_poke
// breakpoints, kprobes -- stops the guest with an emulation failure. vmm
// hands it back: RIP is moved past the 0xCC (#BP is a trap: the frame's RIP
// is the next instruction, Intel SDM Vol. 3A §6.5) and vector 3 is injected
// with KVM_SET_VCPU_EVENTS, so the guest's own #BP handler runs as it would on
// hardware. vmm does not turn on KVM_SET_GUEST_DEBUG yet (the GDB stub,
// vmm/gdb/, has no KVM target; docs/gdb.md), but a KVM_EXIT_DEBUG for #BP is
// handled the same way, so the day it does, guest int3s keep working.
//
// Called on the exiting vCPU's thread only. docs/linux.md has the measurements.
#pragma once

#include <cstdint>
#include <optional>

#include "base/error.h"
#include "base/guest_memory.h"
#include "vmm/kvm/kvm.h"

namespace vmm {

// If the current exit of `fd` (KVM_EXIT_INTERNAL_ERROR with an emulation
// failure, or KVM_EXIT_DEBUG with exception 3) stopped on an int3, injects #BP
// into the guest and returns true; the vCPU can then be run again. Returns
// false, changing nothing, for any other exit. Also steps over a lone x87
// `fwait` (SkipFwait below), so that one hook in the exit handler covers both.
[[nodiscard]] base::Result<bool> ReinjectInt3(kvm::VcpuFd& fd, const base::GuestMemory& memory);

// If the current exit of `fd` is an emulation failure on a lone x87 `fwait`
// (0x9B not followed by an x87 escape opcode D8..DF), steps RIP over it and
// returns true. KVM's emulator implements no x87; with no unmasked x87
// exception pending -- the state after FNINIT, which Linux keeps in the
// kernel -- FWAIT does nothing (Intel SDM Vol. 2A, WAIT/FWAIT). Linux 6.1
// executes one after SMP bring-up (docs/linux.md).
[[nodiscard]] base::Result<bool> SkipFwait(kvm::VcpuFd& fd);

// Injects exception `vector` (with `error_code` when it has one) into the
// vCPU through KVM_SET_VCPU_EVENTS; it is delivered on the next KVM_RUN.
[[nodiscard]] base::Result<void> InjectException(kvm::VcpuFd& fd, uint8_t vector,
                                                 std::optional<uint32_t> error_code);

// How many int3s ReinjectInt3 has handed back (all vCPUs).
uint64_t ReinjectedInt3Count();

}  // namespace vmm
