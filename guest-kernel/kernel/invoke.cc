#include "kernel/invoke.h"

#include "abi/syscalls.h"
#include "arch/x86_64/apic.h"
#include "arch/x86_64/cpu.h"
#include "kernel/console.h"
#include "kernel/heap.h"
#include "kernel/ipc.h"
#include "kernel/machine.h"
#include "kernel/process.h"
#include "kernel/serial_input.h"
#include "kernel/vm.h"
#include "lib/format.h"

namespace kernel {

Token* AllocToken() { return New<Token>(); }
void FreeToken(Token* t) { Delete(t); }

namespace {

// docs/architecture.md "Machine layout": virtio-mmio devices at 0xd0000000 + n * 4 KiB.
constexpr uint64_t kVirtioMmioBase = 0xd0000000;
constexpr uint64_t kVirtioMmioSize = 0x8000;  // 8 device windows
constexpr uint64_t kIrqLines = 16;
constexpr uint64_t kMaxAllocPages = 256;  // 1 MiB of contiguous DMA memory per call

int64_t Put(Process* p, Token* t) {
  const int64_t h = p->tokens.Insert(t);
  if (h < 0) DiscardToken(t);
  return h;
}

int64_t ControlOp(Process* p, Token* t, uint64_t op, arch::TrapFrame* f) {
  const uint64_t a = f->rdx, b = f->r10, c = f->r8;
  auto need = [&](uint64_t right) { return (t->rights & right) == right; };
  switch (op) {
    case abi::kOpCreateEndpoint:
    case abi::kOpCreateNotification: {
      if (!need(abi::kRightCtlCreate)) return abi::kErrDenied;
      void* obj = op == abi::kOpCreateEndpoint ? static_cast<void*>(New<Endpoint>())
                                               : static_cast<void*>(New<Notification>());
      if (obj == nullptr) return abi::kErrNoMemory;
      Token* nt =
          CreateRootToken(op == abi::kOpCreateEndpoint ? abi::kObjEndpoint : abi::kObjNotification,
                          abi::kRightsAll, obj);
      if (nt == nullptr) return abi::kErrNoMemory;
      return Put(p, nt);
    }
    case abi::kOpSpawn: {
      if (!need(abi::kRightCtlSpawn)) return abi::kErrDenied;
      if (b == 0 || b > 15) return abi::kErrInvalidArgument;
      if (!ValidateUserRange(p, a, b, false)) return abi::kErrBadPointer;
      char name[16];
      for (uint64_t i = 0; i < b; ++i) name[i] = reinterpret_cast<const char*>(a)[i];
      int64_t err = 0;
      const uint8_t prio = c > 254 ? 254 : static_cast<uint8_t>(c);
      Process* child = Spawn(name, b, prio, p, 0, &err, /*start=*/false);
      if (child == nullptr) return err;
      return Put(p, child->token);
    }
    case abi::kOpAllocFrames: {
      if (!need(abi::kRightCtlMemory)) return abi::kErrDenied;
      if (a == 0 || a > kMaxAllocPages) return abi::kErrInvalidArgument;
      // Contiguous: successive frames must follow each other (the bump
      // allocator gives that for fresh memory); otherwise give up.
      uint64_t first = 0, prev = 0;
      for (uint64_t i = 0; i < a; ++i) {
        const uint64_t fr = Frames().AllocZeroed();
        if (fr == 0 || (i > 0 && fr != prev + kPageSize)) {
          if (fr != 0) Frames().Free(fr);
          for (uint64_t j = 0; j < i; ++j) Frames().Free(first + j * kPageSize);
          return abi::kErrNoMemory;
        }
        if (i == 0) first = fr;
        prev = fr;
      }
      Token* nt = CreateRootToken(abi::kObjFrames, abi::kRightsAll, nullptr, first, a * kPageSize);
      if (nt == nullptr) return abi::kErrNoMemory;
      const int64_t h = Put(p, nt);
      if (h >= 0) f->rdx = first;
      return h;
    }
    case abi::kOpClock:
      if (!need(abi::kRightCtlClock)) return abi::kErrDenied;
      f->rdx = arch::Apic().tsc_hz;
      return static_cast<int64_t>(NowUs());
    case abi::kOpPowerOff:
      if (!need(abi::kRightCtlPower)) return abi::kErrDenied;
      if (a > 63)
        return abi::kErrInvalidArgument;  // docs/architecture.md: vmm's status 0..63 is the guest's
      Print("[kernel] power off by {} pid {}, status {}\n", p->name, p->pid, a);
      ExitMachine(static_cast<uint32_t>(a));
    case abi::kOpProcessInfo: {
      if (!need(abi::kRightCtlInfo)) return abi::kErrDenied;
      if (!ValidateUserRange(p, b, c, true)) return abi::kErrBadPointer;
      // The a-th registered process (skipping empty slots).
      size_t seen = 0;
      for (size_t i = 0; i < 64; ++i) {
        Process* q = ProcessAt(i);
        if (q == nullptr) continue;
        if (seen++ != a) continue;
        static const char* const kStates[] = {"running", "exited", "killed"};
        uint64_t ticks = 0;
        for (uint32_t k = 0; k < q->thread_count; ++k) {
          if (q->threads[k] != nullptr) ticks += q->threads[k]->ticks_run;
        }
        const size_t n = lib::FormatBuffer(
            reinterpret_cast<char*>(b), c, "{} {} {} prio {} threads {} ticks {} tokens {} exit {}",
            q->pid, q->name, kStates[static_cast<int>(q->state)], q->priority, q->thread_count,
            ticks, q->tokens.used(), q->exit_code);
        return static_cast<int64_t>(n < c ? n : c);
      }
      return 0;
    }
    case abi::kOpCmdline: {
      if (!need(abi::kRightCtlInfo)) return abi::kErrDenied;
      if (!ValidateUserRange(p, a, b, true)) return abi::kErrBadPointer;
      const char* s = KernelCmdline();
      uint64_t n = 0;
      for (; n < b && s[n] != 0; ++n) reinterpret_cast<char*>(a)[n] = s[n];
      return static_cast<int64_t>(n);
    }
    case abi::kOpConsoleRead: {
      if (!need(abi::kRightCtlConsole)) return abi::kErrDenied;
      if (!ValidateUserRange(p, a, b, true)) return abi::kErrBadPointer;
      return static_cast<int64_t>(SerialRead(reinterpret_cast<char*>(a), b));
    }
    case abi::kOpConsoleBind: {
      if (!need(abi::kRightCtlConsole)) return abi::kErrDenied;
      Token* n;
      const int64_t st = p->tokens.Lookup(a, abi::kObjNotification, abi::kRightSend, kNowLazy, &n);
      if (st != abi::kOk) return st;
      SerialBindNotification(static_cast<Notification*>(n->object));
      return abi::kOk;
    }
    case abi::kOpMemInfo:
      if (!need(abi::kRightCtlInfo)) return abi::kErrDenied;
      f->rdx = FrameAlloc().total_frames();
      return static_cast<int64_t>(FrameAlloc().free_frames());
    default:
      return abi::kErrInvalidArgument;
  }
}

int64_t ProcessOp(Process* p, Token* t, uint64_t op, arch::TrapFrame* f) {
  Process* target = static_cast<Process*>(t->object);
  const uint64_t a = f->rdx, b = f->r10;
  if ((t->rights & abi::kRightManage) == 0) return abi::kErrDenied;
  switch (op) {
    case abi::kOpGive: {
      Token* mine;
      const int64_t st = p->tokens.Lookup(a, abi::kObjNone, abi::kRightTransfer, kNowLazy, &mine);
      if (st != abi::kOk) return st;
      Token* child;
      const int64_t ds = DeriveToken(mine, b, 0, 0, 0, 0, &child);
      if (ds != abi::kOk) return ds;
      const int64_t h = Put(target, child);
      if (h >= 0 && !target->started) ++target->given;
      return h;
    }
    case abi::kOpStart:
      if (target->started) return abi::kErrBusy;
      StartProcess(target, a);
      return abi::kOk;
    case abi::kOpKill:
      KillProcess(target, static_cast<int64_t>(a));
      return abi::kOk;
    case abi::kOpSetSupervisor: {
      Token* ep;
      const int64_t st = p->tokens.Lookup(a, abi::kObjEndpoint, abi::kRightSend, kNowLazy, &ep);
      if (st != abi::kOk) return st;
      target->fault_ep = static_cast<Endpoint*>(ep->object);
      target->fault_badge = b;
      return abi::kOk;
    }
    case abi::kOpCreateThread:
      return CreateThreadIn(target, a, b, f->r8);
    case abi::kOpWait:
      if (target == p) return abi::kErrInvalidArgument;
      return WaitProcess(target);
    case abi::kOpPid:
      return target->pid;
    default:
      return abi::kErrInvalidArgument;
  }
}

}  // namespace

int64_t SysInvoke(arch::TrapFrame* f) {
  Process* p = CurrentProcess();
  const uint64_t handle = f->rdi, op = f->rsi;
  if (op == abi::kOpExit) {
    if (handle != abi::kSelfHandle) return abi::kErrInvalidArgument;
    ExitCurrentProcess(static_cast<int64_t>(f->rdx));
  }
  if (op == abi::kOpClose) return CloseHandle(p, handle);
  if (op == abi::kOpListTokens) {
    if (handle != abi::kSelfHandle) return abi::kErrInvalidArgument;
    const uint64_t h = p->tokens.HandleAt(static_cast<uint32_t>(f->rdx));
    if (h == 0)
      return f->rdx < TokenTable::kSlots ? static_cast<int64_t>(abi::kErrNotFound) : int64_t{0};
    const Token* t = p->tokens.Peek(h);
    f->rdx = InspectWord(t) | (static_cast<uint64_t>(TokenStatus(t, kNowLazy) != 0) << 41);
    return static_cast<int64_t>(h);
  }
  const uint64_t now = kNowLazy;
  Token* t;
  int64_t st = p->tokens.Lookup(handle, abi::kObjNone, 0, now, &t);
  if (st != abi::kOk) return st;
  const uint64_t a = f->rdx, b = f->r10, c = f->r8;
  switch (op) {
    case abi::kOpDerive:
    case abi::kOpDeriveRange: {
      if ((t->rights & abi::kRightDerive) == 0) return abi::kErrDenied;
      Token* child;
      st = op == abi::kOpDerive ? DeriveToken(t, a, b, c, 0, 0, &child)
                                : DeriveToken(t, c, 0, 0, a, b, &child);
      if (st != abi::kOk) return st;
      return Put(p, child);
    }
    case abi::kOpRevoke:
      if ((t->rights & abi::kRightRevoke) == 0) return abi::kErrDenied;
      return static_cast<int64_t>(RevokeDescendants(t));
    case abi::kOpInspect:
      f->rdx = t->expiry;
      return static_cast<int64_t>(InspectWord(t));
    case abi::kOpRangeInfo:
      f->rdx = t->base;
      return static_cast<int64_t>(t->size);
    default:
      break;
  }
  if (op >= abi::kOpConsoleBind && op < 20 && t->type != abi::kObjControl) {
    return abi::kErrWrongType;
  }
  if (op >= 20 && op < 30 && t->type != abi::kObjProcess) return abi::kErrWrongType;
  switch (t->type) {
    case abi::kObjControl:
      return ControlOp(p, t, op, f);
    case abi::kObjProcess:
      return ProcessOp(p, t, op, f);
    case abi::kObjFrames:
    case abi::kObjMmio:
      if (op == abi::kOpMap) {
        if ((t->rights & abi::kRightMap) == 0) return abi::kErrDenied;
        return MapThroughToken(p, t, a, b != 0);
      }
      if (op == abi::kOpUnmap) {
        UnmapThroughToken(t);
        return abi::kOk;
      }
      return abi::kErrInvalidArgument;
    case abi::kObjIrq:
      if (op == abi::kOpBindIrq) {
        if ((t->rights & abi::kRightMap) == 0 || t->size != 1) return abi::kErrDenied;
        Token* n;
        st = p->tokens.Lookup(a, abi::kObjNotification, abi::kRightSend, now, &n);
        if (st != abi::kOk) return st;
        return BindIrq(static_cast<uint32_t>(t->base), static_cast<Notification*>(n->object), b)
                   ? abi::kOk
                   : abi::kErrBusy;
      }
      return abi::kErrInvalidArgument;
    case abi::kObjIoPorts:
      if (op == abi::kOpAllowPorts) {
        if ((t->rights & abi::kRightMap) == 0) return abi::kErrDenied;
        return AllowPorts(p, static_cast<uint32_t>(t->base), static_cast<uint32_t>(t->size));
      }
      return abi::kErrInvalidArgument;
    default:
      return abi::kErrInvalidArgument;
  }
}

uint32_t GiveRootTokens(Process* init) {
  Token* roots[4] = {
      CreateRootToken(abi::kObjControl, abi::kRightsAll, nullptr),
      CreateRootToken(abi::kObjMmio, abi::kRightsAll, nullptr, kVirtioMmioBase, kVirtioMmioSize),
      CreateRootToken(abi::kObjIrq, abi::kRightsAll, nullptr, 0, kIrqLines),
      CreateRootToken(abi::kObjIoPorts, abi::kRightsAll, nullptr, 0x2f8, 8),  // COM2
  };
  uint32_t n = 0;
  for (Token* t : roots) {
    if (t != nullptr && init->tokens.Insert(t) > 0) ++n;
  }
  init->given = n;
  return n;
}

}  // namespace kernel
