// Interrupt/exception entry: the frame trap.S builds and the IDT.
#pragma once

#include <stdint.h>

namespace arch {

// Saved by trap.S, lowest address first (Intel SDM vol. 3A §6.14.2: the CPU
// pushes ss, rsp, rflags, cs, rip and for some vectors an error code).
struct TrapFrame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
  uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error;
  uint64_t rip, cs, rflags, rsp, ss;
};
static_assert(sizeof(TrapFrame) == 22 * 8);

// Exception vectors (Intel SDM vol. 3A table 6-1).
inline constexpr uint64_t kVecDivide = 0;
inline constexpr uint64_t kVecNmi = 2;
inline constexpr uint64_t kVecBreakpoint = 3;
inline constexpr uint64_t kVecInvalidOpcode = 6;
inline constexpr uint64_t kVecDoubleFault = 8;
inline constexpr uint64_t kVecGeneralProtection = 13;
inline constexpr uint64_t kVecPageFault = 14;

const char* ExceptionName(uint64_t vector);
const char* ExceptionMnemonic(uint64_t vector);

// Builds the exception gates (0..31) of the IDT and loads it.
void IdtInit();
// Builds the remaining gates (32..255) before interrupts are enabled.
void IdtInitInterrupts();
// Gives `vector` an IST stack index (1..7) in its gate.
void IdtSetIst(uint64_t vector, uint8_t ist);
// Loads an IDT with limit 0: the next exception triple-faults.
[[noreturn]] void TripleFault();

}  // namespace arch

// Called by trap.S for every vector, interrupts off. Returns 1 when trap.S
// should leave by sysretq (a system call back to ring 3), 0 for iretq.
extern "C" uint64_t TrapDispatch(arch::TrapFrame* frame);
