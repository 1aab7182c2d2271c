// Exception, interrupt and system-call dispatch (every vector of trap.S and
// the SYSCALL entry arrive in TrapDispatch, interrupts off).
#include "kernel/trap.h"

#include "abi/syscalls.h"
#include "arch/x86_64/apic.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/gdt.h"
#include "kernel/console.h"
#include "kernel/ipc.h"
#include "kernel/machine.h"
#include "kernel/process.h"
#include "kernel/sched.h"
#include "kernel/serial_input.h"
#include "kernel/syscall.h"
#include "kernel/vm.h"

namespace kernel {

constexpr uint64_t kVecSyscall = 256;  // pushed by syscall_entry (switch.S)
// RFLAGS bits a user may keep across a system call: CF PF AF ZF SF DF OF;
// IF is forced on, IOPL/NT/VM/AC/TF cleared.
constexpr uint64_t kUserFlagsKept = 0xcd5;
constexpr uint64_t kFlagsIf = 0x202;

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
  if ((f.vector == arch::kVecPageFault || f.vector == arch::kVecDoubleFault) &&
      IsKernelGuardPage(arch::ReadCr2())) {
    Print("[panic] kernel stack overflow (guard page)\n");
  }
  Thread* t = Current();
  if (t != nullptr) Print("[panic] thread {} tid {}\n", t->name, t->tid);
  const uint32_t code = kExitExceptionBase + static_cast<uint32_t>(f.vector & 31);
  Print("[panic] kernel exception, exit {}\n", code);
  ExitMachine(code);
}

}  // namespace kernel

namespace {

// Time inside the kernel for system calls that do not switch threads (not
// Yield, not IPC, whose time would include the partner's): what entry/exit
// costs beyond it is the host's. IPC skips the two rdtsc (its fast path).
bool IsTimed(uint64_t nr) { return nr >= abi::kSysInvoke; }

void NoteDispatch(uint64_t cycles) {
  kernel::SyscallStats& s = kernel::GetSyscallStats();
  s.dispatch_cycles += cycles;
  ++s.dispatch_count;
  if (s.dispatch_min == 0 || cycles < s.dispatch_min) s.dispatch_min = cycles;
}

// After a system call: sysretq when the frame allows it (standard user
// selectors, canonical user RIP), else iretq. RCX/R11 are set as SYSCALL
// defines them so both returns leave the same registers.
uint64_t FinishSyscall(arch::TrapFrame* f) {
  kernel::PreemptIfNeeded();
  f->rcx = f->rip;
  f->r11 = f->rflags;
  return f->cs == arch::kUserCs && f->ss == arch::kUserDs && f->rip < 0x0000800000000000ull ? 1 : 0;
}

}  // namespace

extern "C" uint64_t TrapDispatch(arch::TrapFrame* f) {
  using namespace kernel;
  const bool from_user = (f->cs & 3) == 3;
  if (f->vector == kVecSyscall) {
    const bool timed = IsTimed(f->rax);
    const uint64_t t0 = timed ? arch::Rdtsc() : 0;
    ++GetSyscallStats().via_syscall_entry;
    f->rflags = (f->r11 & kUserFlagsKept) | kFlagsIf;
    SyscallDispatch(f);
    const uint64_t r = FinishSyscall(f);
    if (timed) NoteDispatch(arch::Rdtsc() - t0);
    return r;
  }
  if (f->vector == arch::kVecPageFault && from_user && f->rip == arch::SyscallEntryAddress()) {
    // docs/architecture.md "The KVM on these machines": SYSCALL left the CPU in ring 3
    // at LSTAR and the fetch faulted. RCX/R11 hold what SYSCALL put there.
    const bool timed = IsTimed(f->rax);
    const uint64_t t0 = timed ? arch::Rdtsc() : 0;
    ++GetSyscallStats().via_fallback;
    f->rip = f->rcx;
    f->rflags = (f->r11 & kUserFlagsKept) | kFlagsIf;
    SyscallDispatch(f);
    const uint64_t r = FinishSyscall(f);
    if (timed) NoteDispatch(arch::Rdtsc() - t0);
    return r;
  }
  if (f->vector < 32) {
    if (!from_user) KernelException(*f);
    HandleUserFault(f);  // returns only when the fault was handled (lazy page)
  } else if (f->vector == arch::kVecTimer) {
    arch::ApicEoi();
    Tick();
  } else if (f->vector == arch::kVecIrqBase + 4) {
    SerialIrq();
    arch::ApicEoi();
  } else if (f->vector >= arch::kVecIrqBase && f->vector < arch::kVecIrqBase + 16u &&
             IrqToNotification(static_cast<uint32_t>(f->vector - arch::kVecIrqBase))) {
    arch::ApicEoi();  // a user-space driver's IRQ: its notification was signalled
  } else if (f->vector == arch::kVecSpurious) {
    // No EOI for the spurious vector (SDM vol. 3A §11.9).
  } else {
    Print("[irq] unexpected vector {}\n", f->vector);
    arch::ApicEoi();
  }
  PreemptIfNeeded();
  return 0;
}
