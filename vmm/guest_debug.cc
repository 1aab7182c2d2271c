#include "vmm/guest_debug.h"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <atomic>
#include <cerrno>

namespace vmm {
namespace {

constexpr uint8_t kInt3Opcode = 0xcc;     // Intel SDM Vol. 2A, INT3
constexpr uint8_t kBreakpointVector = 3;  // #BP, Intel SDM Vol. 3A §6.3.1

std::atomic<uint64_t> reinjected{0};

// The byte at CS:RIP + delta, or -1 when it cannot be read.
int ByteAt(const kvm::VcpuFd& fd, const base::GuestMemory& memory, const kvm_regs& regs,
           const kvm_sregs& sregs, int64_t delta) {
  const uint64_t linear = sregs.cs.base + regs.rip + static_cast<uint64_t>(delta);
  auto phys = fd.Translate(linear);
  if (!phys || !*phys) return -1;
  auto byte = memory.ReadObj<uint8_t>(**phys);
  if (!byte) return -1;
  return *byte;
}

}  // namespace

base::Result<bool> ReinjectInt3(kvm::VcpuFd& fd, const base::GuestMemory& memory) {
  if (TRY(SkipFwait(fd))) return true;
  const kvm_run* run = fd.run();
  bool at_int3 = false;  // RIP still points at the 0xCC
  kvm_regs regs = TRY(fd.GetRegs());
  const kvm_sregs sregs = TRY(fd.GetSregs());
  if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
      run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
    if ((run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
        run->emulation_failure.insn_size > 0) {
      at_int3 = run->emulation_failure.insn_bytes[0] == kInt3Opcode;
    } else {
      at_int3 = ByteAt(fd, memory, regs, sregs, 0) == kInt3Opcode;
    }
    if (!at_int3) return false;
  } else if (run->exit_reason == KVM_EXIT_DEBUG && run->debug.arch.exception == kBreakpointVector) {
    // VMX and SVM report a software breakpoint with RIP at the int3; be
    // tolerant of a KVM that has already stepped past it.
    at_int3 = ByteAt(fd, memory, regs, sregs, 0) == kInt3Opcode;
    if (!at_int3 && ByteAt(fd, memory, regs, sregs, -1) != kInt3Opcode) return false;
  } else {
    return false;
  }
  if (at_int3) {
    regs.rip += 1;
    TRY(fd.SetRegs(regs));
  }
  TRY(InjectException(fd, kBreakpointVector, std::nullopt));
  reinjected.fetch_add(1, std::memory_order_relaxed);
  return true;
}

base::Result<void> InjectException(kvm::VcpuFd& fd, uint8_t vector,
                                   std::optional<uint32_t> error_code) {
  kvm_vcpu_events events{};
  if (ioctl(fd.fd(), KVM_GET_VCPU_EVENTS, &events) < 0) {
    return base::MakeErrnoError(base::ErrorKind::kInternal, "KVM_GET_VCPU_EVENTS on vcpu {}",
                                fd.id());
  }
  events.exception.injected = 1;
  events.exception.pending = 0;
  events.exception.nr = vector;
  events.exception.has_error_code = error_code.has_value() ? 1 : 0;
  events.exception.error_code = error_code.value_or(0);
  events.flags = 0;  // exception, interrupt and NMI state are always applied
  if (ioctl(fd.fd(), KVM_SET_VCPU_EVENTS, &events) < 0) {
    return base::MakeErrnoError(base::ErrorKind::kInternal,
                                "KVM_SET_VCPU_EVENTS (vector {}) on vcpu {}", vector, fd.id());
  }
  return {};
}

base::Result<bool> SkipFwait(kvm::VcpuFd& fd) {
  const kvm_run* run = fd.run();
  if (run->exit_reason != KVM_EXIT_INTERNAL_ERROR ||
      run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION ||
      !(run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) ||
      run->emulation_failure.insn_size < 1 || run->emulation_failure.insn_bytes[0] != 0x9b) {
    return false;
  }
  if (run->emulation_failure.insn_size >= 2) {
    const uint8_t next = run->emulation_failure.insn_bytes[1];
    if (next >= 0xd8 && next <= 0xdf) return false;  // FNINIT etc. with a WAIT prefix
  }
  kvm_regs regs = TRY(fd.GetRegs());
  regs.rip += 1;
  TRY(fd.SetRegs(regs));
  return true;
}

uint64_t ReinjectedInt3Count() { return reinjected.load(std::memory_order_relaxed); }

}  // namespace vmm
