#pragma once

#include "arch/x86_64/trap.h"

namespace kernel {

// Runs the system call in frame->rax with the ABI of abi/syscalls.h and
// stores the result in frame->rax. Both entry paths (SYSCALL at LSTAR in
// ring 0; the #PF fallback of emulating hosts) end here.
void SyscallDispatch(arch::TrapFrame* frame);

struct SyscallStats {
  uint64_t total, via_fallback, via_syscall_entry;
  // rdtsc from TrapDispatch entry to its return, summed over Invoke,
  // DebugPrint and bad numbers (Yield and IPC switch threads: their time
  // would include other threads' running time).
  uint64_t dispatch_cycles, dispatch_count, dispatch_min;
};
SyscallStats& GetSyscallStats();

struct Process;
// Called once per process at its first system call (boot phase 0x41 for init).
void SetFirstUserSyscallHook(void (*hook)(Process*));

}  // namespace kernel
