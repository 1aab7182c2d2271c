// Exception and interrupt dispatch.
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/trap.h"
#include "kernel/console.h"
#include "kernel/machine.h"
#include "kernel/trap.h"

namespace kernel {

void ReportTrap(const char* tag, const arch::TrapFrame& f) {
  Print("[{}] exception {} {} ({}) error={:#x} rip=0x{:016x} cr2=0x{:016x}\n", tag, f.vector,
        arch::ExceptionMnemonic(f.vector), arch::ExceptionName(f.vector), f.error, f.rip,
        arch::ReadCr2());
  Print("[{}] cs={:#x} ss={:#x} rflags=0x{:016x} rsp=0x{:016x} cr3=0x{:016x}\n", tag, f.cs, f.ss,
        f.rflags, f.rsp, arch::ReadCr3());
  Print("[{}] rax={:016x} rbx={:016x} rcx={:016x} rdx={:016x}\n", tag, f.rax, f.rbx, f.rcx, f.rdx);
  Print("[{}] rsi={:016x} rdi={:016x} rbp={:016x} r8 ={:016x}\n", tag, f.rsi, f.rdi, f.rbp, f.r8);
  Print("[{}] r9 ={:016x} r10={:016x} r11={:016x} r12={:016x}\n", tag, f.r9, f.r10, f.r11, f.r12);
  Print("[{}] r13={:016x} r14={:016x} r15={:016x}\n", tag, f.r13, f.r14, f.r15);
}

[[noreturn]] void KernelException(const arch::TrapFrame& f) {
  ReportTrap("panic", f);
  const uint32_t code = kExitExceptionBase + static_cast<uint32_t>(f.vector & 31);
  Print("[panic] kernel exception, exit {}\n", code);
  ExitMachine(code);
}

}  // namespace kernel

extern "C" void TrapDispatch(arch::TrapFrame* frame) {
  if (frame->vector < 32) kernel::KernelException(*frame);
  kernel::Print("[irq] unexpected vector {}\n", frame->vector);
}
