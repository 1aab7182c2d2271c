#include "kernel/syscall.h"

#include "abi/syscalls.h"
#include "kernel/console.h"
#include "kernel/invoke.h"
#include "kernel/ipc.h"
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
  const uint64_t a0 = f->rdi, a1 = f->rsi;
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
      r = SysInvoke(f);
      break;
    case abi::kSysSend:
      r = SysSend(f, false);
      break;
    case abi::kSysCall:
      r = SysSend(f, true);
      break;
    case abi::kSysRecv:
      r = SysRecv(f);
      break;
    case abi::kSysReply:
      r = SysReply(f);
      break;
    default:
      r = abi::kErrNoSyscall;
      break;
  }
  f->rax = static_cast<uint64_t>(r);
}

}  // namespace kernel
