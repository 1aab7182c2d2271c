// Context switch, thread trampolines and the SYSCALL entry.

.section .text

// void SwitchContext(uint64_t* save_rsp, uint64_t next_rsp)
// Saves the callee-saved registers (SysV ABI) on the current stack, stores
// RSP in *save_rsp, loads next_rsp and restores what SwitchContext (or a new
// thread's initial frame) saved there.
.global SwitchContext
SwitchContext:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret

// First run of a kernel thread: r12 = function, r13 = argument.
.global thread_start_kernel
thread_start_kernel:
  movq %r13, %rdi
  call *%r12
  call ThreadExitCurrent
  ud2

// First run of a user thread: RSP points at its TrapFrame.
.global thread_start_user
thread_start_user:
  jmp trap_return

// SYSCALL lands here in ring 0 on hardware (Intel SDM vol. 2B SYSCALL):
// RCX = return RIP, R11 = RFLAGS, RSP still the user's, interrupts masked by
// FMASK. Build the same TrapFrame an exception from ring 3 builds (vector
// 256 marks a system call) and share trap_common's path; trap_return leaves
// with iretq. On the emulating hosts described in docs/architecture.md this code is
// never executed: the fetch from ring 3 faults and the #PF handler treats
// that fault as the system call.
.global syscall_entry
syscall_entry:
  swapgs
  movq %rsp, %gs:8
  movq %gs:0, %rsp
  pushq $0x1b                     // user SS
  pushq %gs:8                     // user RSP
  pushq %r11                      // RFLAGS
  pushq $0x23                     // user CS
  pushq %rcx                      // return RIP
  pushq $0                        // error code
  pushq $256                      // vector: system call
  swapgs                          // trap_common swaps again for a ring-3 CS
  jmp trap_common
