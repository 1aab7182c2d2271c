// GDT, TSS and per-CPU data (single CPU for now).
//
// GDT layout (Intel SDM vol. 3A §5.8.8: SYSCALL loads CS = STAR[47:32] and
// SS = +8; SYSRET loads SS = STAR[63:48] + 8 and CS = STAR[63:48] + 16):
//   0x00 null, 0x08 kernel code, 0x10 kernel data,
//   0x18 user data (0x1b), 0x20 user code (0x23), 0x28 TSS (16 bytes).
#pragma once

#include <stdint.h>

namespace arch {

inline constexpr uint16_t kKernelCs = 0x08;
inline constexpr uint16_t kKernelDs = 0x10;
inline constexpr uint16_t kUserDs = 0x18 | 3;
inline constexpr uint16_t kUserCs = 0x20 | 3;
inline constexpr uint16_t kTssSelector = 0x28;

inline constexpr uint8_t kIstDoubleFault = 1;
inline constexpr uint8_t kIstNmi = 2;

// Reached through GS in the kernel (after swapgs on entry from ring 3).
// syscall_entry (switch.S) uses the offsets of the first two fields.
struct PerCpu {
  uint64_t kernel_rsp;   // 0: top of the running thread's kernel stack
  uint64_t scratch_rsp;  // 8: user RSP during syscall entry
  void* current_thread;  // 16
  PerCpu* self;          // 24
};

// Loads the GDT and TSS (IST stacks for #DF and NMI), sets GS to the
// per-CPU block and programs the SYSCALL MSRs (STAR, LSTAR, FMASK, EFER.SCE).
void CpuInit();
PerCpu& ThisCpu();
// Kernel stack used on entry from ring 3 (TSS.RSP0 and PerCpu.kernel_rsp).
void SetKernelStack(uint64_t top);
// Opens (allow) or closes ports [first, first + count) for ring 3 in the
// TSS I/O bitmap (the scheduler keeps it in step with the running process).
void SetIoPorts(uint32_t first, uint32_t count, bool allow);
// The LSTAR value: the syscall fallback on emulating hosts compares the #PF
// frame's RIP with it.
uint64_t SyscallEntryAddress();

}  // namespace arch
