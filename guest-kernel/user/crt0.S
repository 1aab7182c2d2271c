// User program entry. The kernel starts a program with RDI = heap base,
// RSI = heap size, RDX = pid, RCX = spawn argument, R8 = handles given
// (abi/syscalls.h) and RSP at the top of its lazily backed stack.
.section .text.start, "ax"
.global _start
_start:
  andq $-16, %rsp
  xorl %ebp, %ebp
  call UserMain
  // Invoke(kSelfHandle, kOpExit, code)
  movq %rax, %rdx
  movl $5, %eax
  movl $1, %edi
  movl $1, %esi
  syscall
  ud2
