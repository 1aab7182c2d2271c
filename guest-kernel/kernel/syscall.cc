#include "kernel/syscall.h"

#include "abi/syscalls.h"
#include "kernel/console.h"
#include "kernel/machine.h"
#include "kernel/process.h"
#include "kernel/sched.h"

namespace kernel {
namespace {

constinit SyscallStats g_stats = {};
// Set by the boot code: called once at init's first system call.
void (*g_on_first_user_syscall)(Process*) = nullptr;

int64_t DebugPrint(Process* p, uint64_t ptr, uint64_t len) {
  if (len > abi::kDebugPrintMax) return abi::kErrInvalidArgument;
  if (!ValidateUserRange(p, ptr, len, false)) return abi::kErrBadPointer;
  ConsoleWrite(reinterpret_cast<const char*>(ptr), len);
  ConsoleFlush();
  return static_cast<int64_t>(len);
}

int64_t Invoke(Process* p, uint64_t token, uint64_t op, uint64_t a, uint64_t b, uint64_t c) {
  if (token != abi::kBootToken) return abi::kErrNotImplemented;  // real tokens: part 2
  switch (op) {
    case abi::kOpExit:
      ExitCurrentProcess(static_cast<int64_t>(a));
    case abi::kOpSpawn: {
      if (!p->may_spawn) return abi::kErrDenied;
      if (b == 0 || b > 15) return abi::kErrInvalidArgument;
      if (!ValidateUserRange(p, a, b, false)) return abi::kErrBadPointer;
      char name[16];
      for (uint64_t i = 0; i < b; ++i) name[i] = reinterpret_cast<const char*>(a)[i];
      int64_t err = 0;
      const uint8_t prio = c > 255 ? 255 : static_cast<uint8_t>(c);
      Process* child = Spawn(name, b, prio, p, 0, &err);
      if (child == nullptr) return err;
      Print("[proc] {} pid {} started {} pid {} at priority {}\n", p->name, p->pid, child->name,
            child->pid, prio);
      return child->pid;
    }
    default:
      return abi::kErrInvalidArgument;
  }
}

}  // namespace

SyscallStats& GetSyscallStats() { return g_stats; }

void SetFirstUserSyscallHook(void (*hook)(Process*)) { g_on_first_user_syscall = hook; }

void SyscallDispatch(arch::TrapFrame* f) {
  Process* p = CurrentProcess();
  ++g_stats.total;
  if (p != nullptr && !p->seen_syscall) {
    p->seen_syscall = true;
    if (g_on_first_user_syscall != nullptr) g_on_first_user_syscall(p);
  }
  const uint64_t a0 = f->rdi, a1 = f->rsi, a2 = f->rdx, a3 = f->r10, a4 = f->r8;
  int64_t r;
  switch (f->rax) {
    case abi::kSysDebugPrint:
      r = DebugPrint(p, a0, a1);
      break;
    case abi::kSysYield:
      Yield();
      r = abi::kOk;
      break;
    case abi::kSysInvoke:
      r = Invoke(p, a0, a1, a2, a3, a4);
      break;
    case abi::kSysSend:
    case abi::kSysRecv:
    case abi::kSysCall:
    case abi::kSysReply:
      r = abi::kErrNotImplemented;
      break;
    default:
      r = abi::kErrNoSyscall;
      break;
  }
  f->rax = static_cast<uint64_t>(r);
}

}  // namespace kernel
