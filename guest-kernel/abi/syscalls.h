// The system-call ABI, shared by the kernel and user programs
// (docs/guest-kernel.md, "System calls"). C-compatible, no dependencies.
//
// Entry: `syscall` with the number in RAX and arguments in RDI, RSI, RDX,
// R10, R8, R9 (the Linux x86-64 convention). Result in RAX: >= 0 success,
// < 0 one of the kErr* codes. RCX and R11 are clobbered (SYSCALL puts the
// return RIP and RFLAGS there); every other register is preserved.
#pragma once

#include <stdint.h>

namespace abi {

// The seven system calls (design.md, "The bundled microkernel").
enum Syscall : uint64_t {
  kSysSend = 0,  // Send(endpoint, msg*, len)                      [part 2]
  kSysRecv = 1,  // Recv(endpoint, buf*, cap)                      [part 2]
  kSysCall = 2,  // Call(endpoint, msg*, len, buf*, cap)           [part 2]
  kSysReply =
      3,  // Reply(reply_handle, msg*, len, flags): flags kReplyThenRecv = ReplyRecv [part 2]
  kSysYield = 4,   // Yield(): give the CPU to the next ready thread of the same or higher priority
  kSysInvoke = 5,  // Invoke(token, op, a, b, c): privileged operations, named by a token
  kSysDebugPrint = 6,  // DebugPrint(text*, len): writes len bytes to the kernel console
  kSysCount = 7,
};

inline constexpr uint64_t kReplyThenRecv = 1;  // Reply flag: ReplyRecv

// Error codes (negated in RAX).
enum Error : int64_t {
  kOk = 0,
  kErrNoSyscall = -1,       // number >= kSysCount
  kErrNotImplemented = -2,  // dispatched, semantics arrive in part 2
  kErrBadPointer =
      -3,  // a buffer failed validation (range, overflow, not mapped, not user, read-only)
  kErrInvalidArgument = -4,  // e.g. length too large, unknown op
  kErrNoMemory = -5,
  kErrNotFound = -6,  // e.g. no program with that name
  kErrDenied = -7,    // the token does not allow the operation
};

// Limits.
inline constexpr uint64_t kDebugPrintMax = 4096;

// Interim Invoke operations on the boot token (part 1 only; part 2 replaces
// the boot token by real token handles and rights). Token 0 = "self" as
// given to every process; init's self token also allows kOpSpawn.
inline constexpr uint64_t kBootToken = 0;
enum InvokeOp : uint64_t {
  kOpExit = 1,  // Invoke(0, kOpExit, code): end the calling process with `code`
  kOpSpawn =
      2,  // Invoke(0, kOpSpawn, name*, len, priority): start a bundled program, returns its pid
};

// User address-space layout, known to both sides.
inline constexpr uint64_t kUserImageBase = 0x400000;           // user programs link here
inline constexpr uint64_t kUserStackTop = 0x00007ffffff00000;  // grows down, lazily backed
inline constexpr uint64_t kUserStackSize = 256 * 1024;
inline constexpr uint64_t kUserHeapBase = 0x0000100000000000;  // lazily backed on first touch
inline constexpr uint64_t kUserHeapSize = 64ull * 1024 * 1024;
inline constexpr uint64_t kUserTop = 0x0000800000000000;  // first non-canonical address

// At entry (_start): RDI = heap base, RSI = heap size, RDX = pid.

}  // namespace abi
