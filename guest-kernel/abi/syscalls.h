// The system-call ABI, shared by the kernel and user programs
// (docs/guest-kernel.md, "System calls"; docs/ipc.md). C-compatible, no
// dependencies.
//
// Entry: `syscall` with the number in RAX and arguments in RDI, RSI, RDX,
// R10, R8, R9 (the Linux x86-64 convention). Result in RAX: >= 0 success,
// < 0 one of the kErr* codes. RCX and R11 are clobbered (SYSCALL puts the
// return RIP and RFLAGS there). IPC system calls also return a message in
// RDI (badge), RSI (tag), RDX, R10, R8, R9 (words 0..3); Invoke may return a
// second value in RDX. Every other register is preserved.
#pragma once

#include <stdint.h>

namespace abi {

// The seven system calls (docs/architecture.md, "The bundled microkernel").
//   Send(h, tag, w0, w1, w2, w3)    h: endpoint (right kRightSend) or notification (signal w0 bits)
//   Recv(h, tag, ...)               h: endpoint (kRightRecv) or notification (wait; bits in RDX)
//   Call(h, tag, w0..w3)            Send + wait for the reply through a one-shot reply capability
//   Reply(h, tag, w0..w3)           answers the last Call received by this thread; with tag flag
//                                   kTagReplyRecv then receives on h (ReplyRecv)
//   Yield()
//   Invoke(h, op, a, b, c, d)       kernel operations on the object token h names (InvokeOp)
//   DebugPrint(text*, len)
enum Syscall : uint64_t {
  kSysSend = 0,
  kSysRecv = 1,
  kSysCall = 2,
  kSysReply = 3,
  kSysYield = 4,
  kSysInvoke = 5,
  kSysDebugPrint = 6,
  kSysCount = 7,
};

// Error codes (negated in RAX). Denials are distinct (issue 5): a missing
// right, an expired token, a revoked token and a stale or forged handle.
enum Error : int64_t {
  kOk = 0,
  kErrNoSyscall = -1,       // number >= kSysCount
  kErrNotImplemented = -2,  // an operation this kernel does not have
  kErrBadPointer =
      -3,  // a buffer failed validation (range, overflow, not mapped, not user, read-only)
  kErrInvalidArgument = -4,  // e.g. length too large, unknown op
  kErrNoMemory = -5,
  kErrNotFound = -6,     // e.g. no program with that name
  kErrDenied = -7,       // the token lacks a right the operation needs
  kErrExpired = -8,      // the token's expiry (kernel monotonic clock) has passed
  kErrRevoked = -9,      // the token (or one it was derived from) was revoked
  kErrBadHandle = -10,   // no such handle in the caller's table: stale (closed) or forged
  kErrWrongType = -11,   // the token names another kind of object
  kErrNoSlots = -12,     // the token table is full
  kErrTimeout = -13,     // IPC timeout elapsed
  kErrNoReply = -14,     // Reply without a pending Call (a reply capability is used once)
  kErrPeerGone = -15,    // the partner ended (server died during a Call)
  kErrWouldBlock = -16,  // kTagNonBlocking and no partner waiting
  kErrBusy = -17,        // e.g. IRQ already bound, address already mapped
};

// Limits.
inline constexpr uint64_t kDebugPrintMax = 4096;

// ---- messages ----------------------------------------------------------------
// Tag: bits 0..10 buffer bytes (0..kIpcDataMax, copied from the sender's to the
// receiver's IpcBuffer::data), 11..12 transfer kind, 13..15 flags, 16..63 label.
inline constexpr uint64_t kTagLenMask = 0x7ff;
inline constexpr uint64_t kTagXferShift = 11;
inline constexpr uint64_t kXferNone = 0;
inline constexpr uint64_t kXferCopy = 1;   // IpcBuffer::xfer_handle: receiver gets a child token
inline constexpr uint64_t kXferMap = 2;    // frames token: child token + pages mapped at the
                                           // receiver's IpcBuffer::map_window
inline constexpr uint64_t kXferGrant = 3;  // the token moves: the sender's handle is closed (and
                                           // its mapping made through it unmapped)
inline constexpr uint64_t kTagNonBlocking = 1ull << 13;  // fail with kErrWouldBlock, never block
inline constexpr uint64_t kTagTimeout = 1ull << 14;      // IpcBuffer::timeout_us bounds the wait
inline constexpr uint64_t kTagReplyRecv = 1ull << 15;    // Reply: then Recv on the handle
inline constexpr uint64_t kTagLabelShift = 16;
constexpr uint64_t MakeTag(uint64_t label, uint64_t len = 0, uint64_t xfer = 0,
                           uint64_t flags = 0) {
  return (label << kTagLabelShift) | (len & kTagLenMask) | (xfer << kTagXferShift) | flags;
}
constexpr uint64_t TagLabel(uint64_t tag) { return tag >> kTagLabelShift; }
constexpr uint64_t TagLen(uint64_t tag) { return tag & kTagLenMask; }
constexpr uint64_t TagXfer(uint64_t tag) { return (tag >> kTagXferShift) & 3; }

inline constexpr uint64_t kIpcDataMax = 1024;
// One per thread, mapped by the kernel at kUserIpcBuffer + 4 KiB * thread
// index (the main thread's is kUserIpcBuffer).
struct IpcBuffer {
  uint64_t xfer_handle;  // in: the token to transfer; out: the handle received (0: none)
  uint64_t map_window;   // receiver: page-aligned address where kXferMap/kXferGrant pages land
  uint64_t timeout_us;   // with kTagTimeout: 0 = poll, else microseconds
  uint64_t reserved;
  uint8_t data[kIpcDataMax];
};

// Labels the kernel uses in the messages it sends.
inline constexpr uint64_t kLabelFault = 0xfa17;  // to a supervisor: w0 pid, w1 vector,
                                                 // w2 fault address, w3 rip; badge as set
// A thread blocked in a Call whose server ended receives kErrPeerGone.

// ---- tokens --------------------------------------------------------------------
// Handles are small integers private to a process's token table. Handle 1
// is always the process's own token (kObjProcess: exit, threads, tokens).
inline constexpr uint64_t kSelfHandle = 1;
// Handles given at spawn (kOpGive) are 2, 3, ... in the order given.
inline constexpr uint64_t kFirstGivenHandle = 2;

enum ObjectType : uint64_t {
  kObjNone = 0,
  kObjControl = 1,       // the kernel's privileged operations (rights kRightCtl*)
  kObjEndpoint = 2,      // synchronous IPC
  kObjNotification = 3,  // asynchronous bit mask
  kObjProcess = 4,       // an address space and its threads
  kObjFrames = 5,        // physical frames [base, base + size) (DMA-able, contiguous)
  kObjMmio = 6,          // device registers [base, base + size)
  kObjIrq = 7,           // IRQ lines [base, base + size)
  kObjIoPorts = 8,       // I/O ports [base, base + size)
};

// Rights (a mask; derive only narrows it).
inline constexpr uint64_t kRightSend = 1 << 0;         // endpoint: Send/Call; notification: signal
inline constexpr uint64_t kRightRecv = 1 << 1;         // endpoint: Recv; notification: wait
inline constexpr uint64_t kRightTransfer = 1 << 2;     // may be passed in a message
inline constexpr uint64_t kRightDerive = 1 << 3;       // kOpDerive
inline constexpr uint64_t kRightRevoke = 1 << 4;       // kOpRevoke
inline constexpr uint64_t kRightMap = 1 << 5;          // frames/MMIO: map; IRQ: bind; ports: allow
inline constexpr uint64_t kRightWrite = 1 << 6;        // frames/MMIO: writable mapping
inline constexpr uint64_t kRightManage = 1 << 7;       // process: give tokens, start, kill, threads
inline constexpr uint64_t kRightCtlCreate = 1 << 8;    // control: endpoints, notifications
inline constexpr uint64_t kRightCtlSpawn = 1 << 9;     // control: processes from the boot image
inline constexpr uint64_t kRightCtlMemory = 1 << 10;   // control: allocate frames (DMA)
inline constexpr uint64_t kRightCtlClock = 1 << 11;    // control: read the clock
inline constexpr uint64_t kRightCtlPower = 1 << 12;    // control: power off
inline constexpr uint64_t kRightCtlInfo = 1 << 13;     // control: process list, memory figures
inline constexpr uint64_t kRightCtlConsole = 1 << 14;  // control: serial console input
inline constexpr uint64_t kRightsAll = (1 << 15) - 1;

enum InvokeOp : uint64_t {
  // On the self handle (kObjProcess of the caller) -- no right needed.
  kOpExit = 1,  // (code): ends the calling process
  // On any token.
  kOpDerive = 2,       // (rights, expiry_us, badge) -> new handle; rights &= token's, expiry
                       // (absolute, kOpClock's time base; 0 = the token's) only shortens, a badge
                       // only where the token has none. Needs kRightDerive.
  kOpRevoke = 3,       // () revokes every token derived from this one. Needs kRightRevoke.
  kOpInspect = 4,      // () -> type | rights << 8 | (badge != 0) << 40; RDX = expiry_us (0 never)
  kOpClose = 5,        // () closes the handle
  kOpDeriveRange = 6,  // (offset, size, rights) range tokens: a child covering a sub-range
  kOpRangeInfo = 7,    // () -> size; RDX = base (physical address, IRQ, first port)
  // On a control token.
  kOpCreateEndpoint = 10,      // () -> handle                               kRightCtlCreate
  kOpCreateNotification = 11,  // () -> handle                               kRightCtlCreate
  kOpSpawn = 12,        // (name*, len, priority) -> process handle, not started   kRightCtlSpawn
  kOpAllocFrames = 13,  // (pages) -> frames handle; RDX = physical base     kRightCtlMemory
  kOpClock = 14,        // () -> microseconds since boot; RDX = TSC Hz       kRightCtlClock
  kOpPowerOff = 15,     // (status 0..63) -> does not return                 kRightCtlPower
  kOpProcessInfo =
      16,           // (index, buf*, cap) -> bytes: one text line per process, or 0 kRightCtlInfo
  kOpMemInfo = 17,  // () -> free frames; RDX = total frames             kRightCtlInfo
  kOpCmdline = 18,  // (buf*, cap) -> bytes of the kernel command line   kRightCtlInfo
  kOpConsoleRead = 19,  // (buf*, cap) -> bytes taken from COM1 input, never blocks kRightCtlConsole
  kOpConsoleBind = 8,   // (notification handle) input arrival signals bit 0; kernel echo off
                        //                                                   kRightCtlConsole
  // On a process token (kRightManage).
  kOpGive = 20,           // (my_handle, rights) -> the handle in the child's table (a child token)
  kOpStart = 21,          // (arg) starts the main thread: RCX = arg
  kOpKill = 22,           // (code)
  kOpSetSupervisor = 23,  // (endpoint handle, badge): faults are reported there by IPC
  kOpCreateThread = 24,   // (entry, stack_top, arg) -> thread index; RDI = arg, RSI = its IpcBuffer
  kOpWait = 25,           // () blocks until the process ended -> its exit code (>= 0) or status
  kOpPid = 26,            // () -> pid
  // On a frames or MMIO token (kRightMap; kRightWrite for a writable mapping).
  kOpMap = 30,    // (va, writable) maps the whole range at va (page-aligned, user half)
  kOpUnmap = 31,  // () unmaps what kOpMap mapped through this token
  // On an IRQ token (kRightMap): bind line `base` to a notification (kRightSend) bit.
  kOpBindIrq = 32,  // (notification handle, bit)
  // On an I/O port token (kRightMap): open the range in the TSS I/O bitmap for the caller.
  kOpAllowPorts = 33,
  // On the self handle: the token table, for `tokens`.
  kOpListTokens = 40,  // (index) -> handle or 0 past the end; RDX = inspect word of that handle
};

// User address-space layout, known to both sides.
inline constexpr uint64_t kUserImageBase = 0x400000;           // user programs link here
inline constexpr uint64_t kUserStackTop = 0x00007ffffff00000;  // grows down, lazily backed
inline constexpr uint64_t kUserStackSize = 256 * 1024;
inline constexpr uint64_t kUserHeapBase = 0x0000100000000000;  // lazily backed on first touch
inline constexpr uint64_t kUserHeapSize = 64ull * 1024 * 1024;
inline constexpr uint64_t kUserIpcBuffer = 0x0000200000000000;  // + 4 KiB * thread index
inline constexpr uint64_t kUserMapBase = 0x0000300000000000;    // free for kOpMap / map windows
inline constexpr uint64_t kUserTop = 0x0000800000000000;        // first non-canonical address

// At entry (_start): RDI = heap base, RSI = heap size, RDX = pid, RCX = arg
// (kOpStart), R8 = number of handles given (kOpGive), first kFirstGivenHandle.

}  // namespace abi
