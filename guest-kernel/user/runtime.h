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
  Syscall(abi::kSysInvoke, abi::kBootToken, abi::kOpExit, static_cast<uint64_t>(code));
  __builtin_unreachable();
}
inline int64_t Spawn(const char* name, size_t len, uint8_t priority) {
  return Syscall(abi::kSysInvoke, abi::kBootToken, abi::kOpSpawn, reinterpret_cast<uint64_t>(name),
                 len, priority);
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

// Sorts v[0..n) ascending (shell sort: few instructions, no recursion).
void Sort(uint64_t* v, size_t n);

}  // namespace user
