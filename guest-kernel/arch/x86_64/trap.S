// 256 interrupt stubs, 16 bytes apart, and the common save/restore path.
// Each stub pushes a 0 error code where the CPU pushes none (Intel SDM vol. 3A
// table 6-1: vectors 8, 10-14, 17, 21, 29, 30 have one), then its vector.
// Entries from ring 3 swap GS so that the kernel's GS base is live.

.section .text
.balign 16
.global trap_stubs
trap_stubs:
  .set vec, 0
  .rept 256
  .balign 16
  .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
  .else
  pushq $0
  .endif
  pushq $vec
  jmp trap_common
  .set vec, vec + 1
  .endr

.global trap_common
trap_common:
  testb $3, 24(%rsp)              // saved CS: came from ring 3?
  jz 1f
  swapgs
1:
  pushq %rax
  pushq %rbx
  pushq %rcx
  pushq %rdx
  pushq %rsi
  pushq %rdi
  pushq %rbp
  pushq %r8
  pushq %r9
  pushq %r10
  pushq %r11
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  cld
  mov %rsp, %rdi
  call TrapDispatch
  testl %eax, %eax                // 1: a system call returning to ring 3 by sysretq
  jnz sysret_return

.global trap_return
trap_return:                      // rsp = a TrapFrame
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %r11
  popq %r10
  popq %r9
  popq %r8
  popq %rbp
  popq %rdi
  popq %rsi
  popq %rdx
  popq %rcx
  popq %rbx
  popq %rax
  addq $16, %rsp                  // vector, error
  testb $3, 8(%rsp)               // returning to ring 3?
  jz 2f
  swapgs
2:
  iretq

// Return from a system call with SYSRET (Intel SDM vol. 2B SYSRET): RIP from
// RCX, RFLAGS from R11, CS/SS from STAR[63:48]. TrapDispatch chose this path
// only for a ring-3 frame with a canonical user RIP (a non-canonical RCX would
// fault in ring 0 on Intel CPUs).
sysret_return:
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %r11
  popq %r10
  popq %r9
  popq %r8
  popq %rbp
  popq %rdi
  popq %rsi
  popq %rdx
  popq %rcx
  popq %rbx
  popq %rax
  movq 16(%rsp), %rcx             // frame rip (after vector, error)
  movq 32(%rsp), %r11             // frame rflags
  movq 40(%rsp), %rsp             // user rsp: the kernel stack is left here
  swapgs
  sysretq
