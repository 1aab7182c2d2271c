// Instruction assists: vmm completes the few instructions a software KVM's
// emulator gives up on and a guest kernel cannot avoid (docs/architecture.md, "The KVM
// on these machines").
//
// On this project's CI hosts every guest instruction runs through KVM's x86
// emulator, which cannot execute LDMXCSR or STMXCSR (it does FXSAVE and
// FXRSTOR). Linux's kernel_fpu_begin() executes `ldmxcsr` unconditionally on
// x86-64 (SSE cannot be hidden from a 64-bit kernel), which ended the guest
// with an emulation failure (status 81) right after `rtc_cmos`
// (docs/linux.md). Where KVM reports such a failure, vmm decodes the
// instruction itself and, if it is one of these, carries it out and moves
// RIP past it:
//
//   0F AE /2  LDMXCSR m32   Intel SDM Vol. 2A, LDMXCSR
//   0F AE /3  STMXCSR m32   Intel SDM Vol. 2B, STMXCSR
//
// Faults are the guest's: #UD (CR0.EM, CR4.OSFXSR clear), #NM (CR0.TS),
// #GP(0) (reserved MXCSR bits), #PF with CR2 (the operand is not mapped, or
// not writable / not user-accessible for the access, walking the guest's own
// page tables with CR0.WP and CR4.SMAP semantics). A guest therefore cannot
// use an assist to reach memory its page tables deny it.
//
// MXCSR goes to KVM (KVM_SET_FPU). Where KVM does not keep it (this host's
// software KVM reads back 0: it runs no SSE), vmm keeps it per vCPU, so what
// LDMXCSR loads STMXCSR gives back. KVM's own FXSAVE/FXRSTOR do not see that
// value there. On hardware KVM these instructions never exit, so nothing here
// runs.
// Called on the exiting vCPU's thread only.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <span>

#include "base/error.h"
#include "base/guest_memory.h"
#include "vmm/kvm/kvm.h"

namespace vmm {

enum class AssistOp { kLdmxcsr, kStmxcsr };

// What the decoder needs of the vCPU: registers in ModRM order (RAX, RCX,
// RDX, RBX, RSP, RBP, RSI, RDI, R8..R15), RIP and the code/data segment state.
struct AssistCpu {
  std::array<uint64_t, 16> gpr{};
  uint64_t rip = 0;
  bool long_mode = false;  // CS.L with EFER.LMA: 64-bit code
  bool default32 = false;  // CS.D: 32-bit code (outside 64-bit mode)
  uint64_t seg_base[6]{};  // ES, CS, SS, DS, FS, GS (prefix order 26 2E 36 3E 64 65)
};

// One decoded assist instruction.
struct AssistInsn {
  AssistOp op;
  uint8_t length = 0;   // bytes, prefixes included
  uint64_t linear = 0;  // the memory operand's linear address
};

// Decodes `bytes` (at the vCPU's RIP) as one of the instructions above.
// nullopt for anything else (another instruction, a register form, a LOCK or
// 66/F2/F3 prefix, 16-bit addressing, bytes cut short): the caller then
// reports the emulation failure as before. Pure function.
std::optional<AssistInsn> DecodeAssist(std::span<const uint8_t> bytes, const AssistCpu& cpu);

// The paging state a translation needs.
struct PagingState {
  uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
  bool user = false;  // CPL 3
  bool rflags_ac = false;
};

// Result of translating one linear address for an access.
struct PageWalk {
  bool ok = false;
  uint64_t gpa = 0;
  uint32_t error_code = 0;  // the #PF error code when !ok (Intel SDM Vol. 3A §4.7)
};

// Walks the guest's page tables for a data access to `linear`. Paging off:
// identity. 4-level long-mode paging and 32-bit PAE paging are walked
// (present, R/W with CR0.WP, U/S, SMAP); a page-table entry outside guest RAM
// is an error (vmm cannot say what the guest meant). Legacy 32-bit non-PAE
// paging (CR4.PAE clear) is also handled.
[[nodiscard]] base::Result<PageWalk> WalkGuestPage(const base::GuestMemory& memory,
                                                   const PagingState& paging, uint64_t linear,
                                                   bool write);

// MXCSR bits a guest may set: the 16 defined bits, DAZ included (what
// MXCSR_MASK reports on the CPUs KVM exposes).
inline constexpr uint32_t kMxcsrMask = 0xffff;

// The vCPU's MXCSR where KVM does not keep it. This host's software KVM
// drops MXCSR in KVM_SET_FPU (KVM_GET_FPU then reads 0 whatever was set, and
// KVM_GET_XSAVE fails with EINVAL): it runs no SSE. Probed once per vCPU;
// when KVM keeps MXCSR, KVM's value is used. Owned by the vCPU (vmm/vcpu.h),
// used on its thread only.
struct MxcsrShadow {
  bool probed = false;
  bool kvm_keeps_it = true;
  uint32_t value = 0x1f80;  // as vmm sets it at power-on (builder.cc SetUpVcpu)
};

// If the current exit of `fd` is an emulation failure on one of the
// instructions above, carries it out (or injects the fault it raises) and
// returns true: the vCPU can run again. False, changing nothing, otherwise.
// `shadow` is the exiting vCPU's MXCSR shadow.
[[nodiscard]] base::Result<bool> CompleteUnemulatedInstruction(kvm::VcpuFd& fd,
                                                               const base::GuestMemory& memory,
                                                               MxcsrShadow& shadow);

// How many instructions were completed, per AssistOp (all vCPUs).
uint64_t AssistCount(AssistOp op);

}  // namespace vmm
