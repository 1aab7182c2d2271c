// The tiny user-space runtime: system-call wrappers over abi/syscalls.h and
// formatted printing through DebugPrint.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/syscalls.h"
#include "lib/format.h"

namespace user {

inline int64_t Syscall(uint64_t n, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0,
                       uint64_t a3 = 0, uint64_t a4 = 0) {
  register uint64_t r10 asm("r10") = a3;
  register uint64_t r8 asm("r8") = a4;
  uint64_t ret;
  asm volatile("syscall"
               : "=a"(ret), "+D"(a0), "+S"(a1), "+d"(a2), "+r"(r10), "+r"(r8)
               : "a"(n)
               : "rcx", "r11", "memory");
  return static_cast<int64_t>(ret);
}

inline int64_t DebugPrint(const char* s, size_t n) {
  return Syscall(abi::kSysDebugPrint, reinterpret_cast<uint64_t>(s), n);
}
inline int64_t Yield() { return Syscall(abi::kSysYield); }
[[noreturn]] inline void Exit(int64_t code) {
  Syscall(abi::kSysInvoke, abi::kSelfHandle, abi::kOpExit, static_cast<uint64_t>(code));
  __builtin_unreachable();
}

// Invoke(h, op, a, b, c); *second receives RDX (the second result) when given.
inline int64_t Invoke(uint64_t h, uint64_t op, uint64_t a = 0, uint64_t b = 0, uint64_t c = 0,
                      uint64_t* second = nullptr) {
  register uint64_t r10 asm("r10") = b;
  register uint64_t r8 asm("r8") = c;
  uint64_t ret;
  asm volatile("syscall"
               : "=a"(ret), "+D"(h), "+S"(op), "+d"(a), "+r"(r10), "+r"(r8)
               : "a"(abi::kSysInvoke)
               : "rcx", "r11", "r9", "memory");
  if (second != nullptr) *second = a;
  return static_cast<int64_t>(ret);
}
// Spawns a program (control token `ctl`), not started yet: returns its
// process handle.
inline int64_t Spawn(uint64_t ctl, const char* name, uint8_t priority) {
  size_t len = 0;
  while (name[len] != 0) ++len;
  return Invoke(ctl, abi::kOpSpawn, reinterpret_cast<uint64_t>(name), len, priority);
}

// A message: tag, four words, and (received) the sender's badge.
struct Msg {
  uint64_t tag = 0;
  uint64_t w[4] = {};
  uint64_t badge = 0;
};
// One IPC system call: sends m (Send/Call/Reply) and/or receives into m.
inline int64_t Ipc(uint64_t nr, uint64_t h, Msg* m) {
  register uint64_t rdi asm("rdi") = h;
  register uint64_t rsi asm("rsi") = m->tag;
  register uint64_t rdx asm("rdx") = m->w[0];
  register uint64_t r10 asm("r10") = m->w[1];
  register uint64_t r8 asm("r8") = m->w[2];
  register uint64_t r9 asm("r9") = m->w[3];
  uint64_t ret;
  asm volatile("syscall"
               : "=a"(ret), "+r"(rdi), "+r"(rsi), "+r"(rdx), "+r"(r10), "+r"(r8), "+r"(r9)
               : "a"(nr)
               : "rcx", "r11", "memory");
  m->badge = rdi;
  m->tag = rsi;
  m->w[0] = rdx;
  m->w[1] = r10;
  m->w[2] = r8;
  m->w[3] = r9;
  return static_cast<int64_t>(ret);
}
inline int64_t Send(uint64_t h, Msg* m) { return Ipc(abi::kSysSend, h, m); }
inline int64_t Recv(uint64_t h, Msg* m) { return Ipc(abi::kSysRecv, h, m); }
inline int64_t Call(uint64_t h, Msg* m) { return Ipc(abi::kSysCall, h, m); }
inline int64_t Reply(Msg* m) { return Ipc(abi::kSysReply, 0, m); }
inline int64_t ReplyRecv(uint64_t h, Msg* m) {
  m->tag |= abi::kTagReplyRecv;
  return Ipc(abi::kSysReply, h, m);
}
// This thread's IPC buffer (the main thread's).
inline abi::IpcBuffer* Buffer() { return reinterpret_cast<abi::IpcBuffer*>(abi::kUserIpcBuffer); }
inline size_t StrLen(const char* s) {
  size_t n = 0;
  while (s[n] != 0) ++n;
  return n;
}
inline bool StrEq(const char* a, size_t n, const char* b) {
  size_t i = 0;
  for (; i < n && b[i] != 0; ++i) {
    if (a[i] != b[i]) return false;
  }
  return i == n && b[i] == 0;
}
inline const char* ErrorName(int64_t e) {
  switch (e) {
    case abi::kErrDenied:
      return "denied (missing right)";
    case abi::kErrExpired:
      return "expired";
    case abi::kErrRevoked:
      return "revoked";
    case abi::kErrBadHandle:
      return "bad handle";
    case abi::kErrWrongType:
      return "wrong type";
    case abi::kErrNotFound:
      return "not found";
    case abi::kErrTimeout:
      return "timeout";
    case abi::kErrInvalidArgument:
      return "invalid argument";
    default:
      return "error";
  }
}
inline uint64_t Rdtsc() {
  uint32_t lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

void PrintBuffer(const char* fmt, const lib::FmtArg* args, size_t n);
template <typename... Args>
void Print(const char* fmt, Args... args) {
  if constexpr (sizeof...(Args) == 0) {
    PrintBuffer(fmt, nullptr, 0);
  } else {
    const lib::FmtArg list[] = {lib::MakeFmtArg(args)...};
    PrintBuffer(fmt, list, sizeof...(Args));
  }
}

// Asks the name service (an endpoint handle, user/namesvc.cc label 2) for
// `name`: a handle to the registered token, or a negative kErr* code.
inline int64_t LookUpName(uint64_t namesvc, const char* name) {
  abi::IpcBuffer* b = Buffer();
  const size_t len = StrLen(name);
  for (size_t i = 0; i < len; ++i) b->data[i] = static_cast<uint8_t>(name[i]);
  b->xfer_handle = 0;
  Msg m;
  m.tag = abi::MakeTag(2, len);
  const int64_t r = Call(namesvc, &m);
  if (r < 0) return r;
  if (m.w[0] != 0) return static_cast<int64_t>(m.w[0]);
  return static_cast<int64_t>(b->xfer_handle);
}

// Registers `name` with the name service (label 1): a child of endpoint
// `endpoint` with send and transfer rights goes with it (kXferCopy). 0, or a
// negative kErr* code (of the derive, the call, or the service's answer).
inline int64_t RegisterName(uint64_t namesvc, const char* name, uint64_t endpoint) {
  const int64_t mine = Invoke(endpoint, abi::kOpDerive, abi::kRightSend | abi::kRightTransfer);
  if (mine < 0) return mine;
  abi::IpcBuffer* b = Buffer();
  const size_t len = StrLen(name);
  for (size_t i = 0; i < len; ++i) b->data[i] = static_cast<uint8_t>(name[i]);
  b->xfer_handle = static_cast<uint64_t>(mine);
  Msg m;
  m.tag = abi::MakeTag(1, len, abi::kXferCopy);
  const int64_t r = Call(namesvc, &m);
  b->xfer_handle = 0;
  if (r < 0) return r;
  return static_cast<int64_t>(m.w[0]);
}

// Sorts v[0..n) ascending (shell sort: few instructions, no recursion).
void Sort(uint64_t* v, size_t n);

}  // namespace user
