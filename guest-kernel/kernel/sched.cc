#include "kernel/sched.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/gdt.h"
#include "arch/x86_64/trap.h"
#include "kernel/console.h"
#include "kernel/heap.h"
#include "kernel/machine.h"
#include "kernel/process.h"
#include "kernel/vm.h"

extern "C" void SwitchContext(uint64_t* save_rsp, uint64_t next_rsp);
extern "C" char thread_start_kernel[], thread_start_user[];

namespace kernel {
namespace {

constexpr uint64_t kStackPages = 4;  // 16 KiB kernel stacks

constinit RunQueue g_runq;
constinit Thread* g_current = nullptr;
constinit Thread* g_idle = nullptr;
constinit Thread* g_sleepers = nullptr;
constinit Thread* g_zombies = nullptr;
constinit bool g_need_resched = false;
constinit uint64_t g_ticks = 0;
constinit uint32_t g_next_tid = 1;
constinit uint64_t g_loaded_cr3 = 0;
constinit SchedStats g_stats = {};
constinit uint64_t g_boot_rsp = 0;
using TickHook = void (*)(uint64_t);
constinit TickHook g_tick_hook = nullptr;

Thread* FromNode(RunNode* n) { return reinterpret_cast<Thread*>(n); }

void CopyName(char* dst, const char* src) {
  size_t i = 0;
  for (; i + 1 < 16 && src[i] != 0; ++i) dst[i] = src[i];
  dst[i] = 0;
}

Thread* NewThread(const char* name, uint8_t priority) {
  Thread* t = New<Thread>();
  if (t == nullptr) return nullptr;
  const uint64_t base = AllocKernelPages(kStackPages, /*zero=*/false);
  if (base == 0) {
    Delete(t);
    return nullptr;
  }
  t->stack_base = base;
  t->stack_top = base + kStackPages * kPageSize;
  t->node.priority = priority;
  t->tid = g_next_tid++;
  CopyName(t->name, name);
  return t;
}

void MakeReady(Thread* t) {
  t->state = ThreadState::kReady;
  g_runq.Enqueue(&t->node);
  if (g_current != nullptr && t->node.priority > g_current->node.priority) g_need_resched = true;
}

void ReapZombies() {
  Thread** link = &g_zombies;
  while (*link != nullptr) {
    Thread* z = *link;
    if (z == g_current) {
      link = &z->list_next;
      continue;
    }
    *link = z->list_next;
    FreeKernelPages(z->stack_base, kStackPages);
    Delete(z);
  }
}

void IdleLoop(void*) {
  for (;;) {
    ReapZombies();
    if (g_runq.count() > 0) {
      Schedule();
      continue;
    }
    arch::StiHlt();  // an interrupt ends the hlt; its handler may switch away
    arch::Cli();
  }
}

void RemoveSleeper(Thread* t) {
  for (Thread** l = &g_sleepers; *l != nullptr; l = &(*l)->list_next) {
    if (*l == t) {
      *l = t->list_next;
      return;
    }
  }
}

// The switch itself, shared by Schedule and the IPC fast path: `next` (state
// already kRunning) becomes current with a fresh slice, its stack, address
// space and I/O ports. Returns when someone switches back to `prev`.
void SwitchTo(Thread* prev, Thread* next) {
  next->slice_left = kSliceTicks;
  g_current = next;
  ++g_stats.switches;
  arch::SetKernelStack(next->stack_top);
  arch::ThisCpu().current_thread = next;
  SwitchAddressSpace(next->process != nullptr && next->process->root != 0 ? next->process->root
                                                                          : KernelRoot());
  SwitchIoPorts(next->process);
  SwitchContext(&prev->saved_rsp, next->saved_rsp);
  // Back in `prev`, switched to by someone else.
  ReapZombies();
}

}  // namespace

void SchedInit() {
  g_idle = CreateKernelThread("idle", kIdlePriority, IdleLoop, nullptr);
  if (g_idle == nullptr) Panic("cannot create the idle thread");
  g_loaded_cr3 = arch::ReadCr3();
}

void SchedStart() {
  Thread* next = FromNode(g_runq.PopHighest());
  next->state = ThreadState::kRunning;
  g_current = next;
  arch::SetKernelStack(next->stack_top);
  arch::ThisCpu().current_thread = next;
  SwitchContext(&g_boot_rsp, next->saved_rsp);
  Panic("boot context resumed");
}

Thread* CreateKernelThread(const char* name, uint8_t priority, void (*fn)(void*), void* arg) {
  Thread* t = NewThread(name, priority);
  if (t == nullptr) return nullptr;
  // SwitchContext pops r15, r14, r13, r12, rbx, rbp, then returns; the
  // return lands in thread_start_kernel with RSP 16-byte aligned.
  auto* sp = reinterpret_cast<uint64_t*>(t->stack_top) - 7;
  sp[0] = 0;                                                // r15
  sp[1] = 0;                                                // r14
  sp[2] = reinterpret_cast<uint64_t>(arg);                  // r13
  sp[3] = reinterpret_cast<uint64_t>(fn);                   // r12
  sp[4] = 0;                                                // rbx
  sp[5] = 0;                                                // rbp
  sp[6] = reinterpret_cast<uint64_t>(thread_start_kernel);  // return address
  t->saved_rsp = reinterpret_cast<uint64_t>(sp);
  MakeReady(t);
  return t;
}

Thread* CreateUserThread(Process* process, const char* name, uint8_t priority, uint64_t entry,
                         uint64_t user_rsp, const uint64_t args[4], bool ready, uint64_t r8) {
  Thread* t = NewThread(name, priority);
  if (t == nullptr) return nullptr;
  t->process = process;
  auto* frame = reinterpret_cast<arch::TrapFrame*>(t->stack_top - sizeof(arch::TrapFrame));
  *frame = arch::TrapFrame{};
  frame->rip = entry;
  frame->cs = arch::kUserCs;
  frame->rflags = 0x202;  // IF
  frame->rsp = user_rsp;
  frame->ss = arch::kUserDs;
  frame->rdi = args[0];
  frame->rsi = args[1];
  frame->rdx = args[2];
  frame->rcx = args[3];
  frame->r8 = r8;
  auto* sp = reinterpret_cast<uint64_t*>(frame) - 7;
  for (int i = 0; i < 6; ++i) sp[i] = 0;
  sp[6] = reinterpret_cast<uint64_t>(thread_start_user);
  t->saved_rsp = reinterpret_cast<uint64_t>(sp);
  if (ready) {
    MakeReady(t);
  } else {
    t->state = ThreadState::kBlocked;
    t->ipc.wait = IpcWait::kSuspended;
  }
  return t;
}

Thread* Current() { return g_current; }

void Schedule() {
  Thread* prev = g_current;
  g_need_resched = false;
  if (prev->state == ThreadState::kRunning) {
    prev->state = ThreadState::kReady;
    if (prev->preempted_by_higher) {
      g_runq.EnqueueFront(&prev->node);
    } else {
      g_runq.Enqueue(&prev->node);
    }
  }
  prev->preempted_by_higher = false;
  Thread* next = FromNode(g_runq.PopHighest());
  if (next == nullptr) Panic("no runnable thread (idle missing)");
  next->state = ThreadState::kRunning;
  if (next == prev) return;
  SwitchTo(prev, next);
}

void Yield() {
  g_current->preempted_by_higher = false;
  Schedule();
}

void SleepTicks(uint64_t ticks) {
  Thread* t = g_current;
  t->wake_tick = g_ticks + (ticks == 0 ? 1 : ticks);
  t->state = ThreadState::kSleeping;
  t->list_next = g_sleepers;
  g_sleepers = t;
  Schedule();
}

void Wait(WaitQueue* queue) {
  Thread* t = g_current;
  t->state = ThreadState::kBlocked;
  t->list_next = queue->head;
  t->waiting_on = queue;
  queue->head = t;
  Schedule();
}

void WakeAll(WaitQueue* queue) {
  Thread* t = queue->head;
  queue->head = nullptr;
  while (t != nullptr) {
    Thread* next = t->list_next;
    t->list_next = nullptr;
    t->waiting_on = nullptr;
    if (t->state == ThreadState::kBlocked) MakeReady(t);
    t = next;
  }
}

void Wake(Thread* t) {
  if (t->state != ThreadState::kBlocked) return;
  t->ipc.wait = IpcWait::kNone;
  MakeReady(t);
}

void BlockAndSwitchTo(Thread* next) {
  Thread* prev = g_current;
  prev->state = ThreadState::kBlocked;
  prev->preempted_by_higher = false;
  if (next == nullptr || next->state != ThreadState::kBlocked) {
    Schedule();
    return;
  }
  next->ipc.wait = IpcWait::kNone;
  if (g_runq.AnyAbove(next->node.priority)) {
    MakeReady(next);
    Schedule();
    return;
  }
  // Direct switch (the IPC fast path): `next` never touches the run queue.
  g_need_resched = false;
  next->state = ThreadState::kRunning;
  SwitchTo(prev, next);
}

void SetTickHook(void (*hook)(uint64_t)) { g_tick_hook = hook; }

void ExitCurrentThread() {
  Thread* t = g_current;
  t->state = ThreadState::kDead;
  t->list_next = g_zombies;
  g_zombies = t;
  Schedule();
  Panic("dead thread resumed");
}

void KillThread(Thread* t) {
  switch (t->state) {
    case ThreadState::kReady:
      g_runq.Remove(&t->node);
      break;
    case ThreadState::kSleeping:
      RemoveSleeper(t);
      break;
    case ThreadState::kBlocked:
      // IPC waits (waiting_on == nullptr) are undone by IpcCancel first.
      if (t->waiting_on != nullptr) {
        for (Thread** l = &t->waiting_on->head; *l != nullptr; l = &(*l)->list_next) {
          if (*l == t) {
            *l = t->list_next;
            break;
          }
        }
      }
      t->waiting_on = nullptr;
      break;
    case ThreadState::kRunning:
      ExitCurrentThread();
    case ThreadState::kDead:
      return;
  }
  t->state = ThreadState::kDead;
  t->list_next = g_zombies;
  g_zombies = t;
}

void Tick() {
  ++g_ticks;
  ++g_stats.ticks;
  Thread* cur = g_current;
  ++cur->ticks_run;
  if (cur == g_idle) ++g_stats.idle_ticks;
  for (Thread** l = &g_sleepers; *l != nullptr;) {
    Thread* t = *l;
    if (t->wake_tick <= g_ticks) {
      *l = t->list_next;
      t->list_next = nullptr;
      MakeReady(t);
    } else {
      l = &t->list_next;
    }
  }
  if (cur != g_idle && --cur->slice_left == 0) {
    cur->slice_left = kSliceTicks;
    if (!g_runq.LevelEmpty(cur->node.priority)) g_need_resched = true;
  }
  if (g_tick_hook != nullptr) g_tick_hook(g_ticks);
  if (cur == g_idle && g_runq.count() > 0) g_need_resched = true;
}

uint64_t Ticks() { return g_ticks; }

void PreemptIfNeeded() {
  if (!g_need_resched) return;
  Thread* cur = g_current;
  // Preempted by a higher level: keep the turn. Slice over: go to the tail.
  const int top = g_runq.HighestLevel();
  cur->preempted_by_higher = top > cur->node.priority;
  Schedule();
}

SchedStats GetSchedStats() { return g_stats; }

void SwitchAddressSpace(uint64_t root) {
  if (root != g_loaded_cr3) {
    arch::WriteCr3(root);
    g_loaded_cr3 = root;
  }
}

}  // namespace kernel

extern "C" void ThreadExitCurrent() { kernel::ExitCurrentThread(); }
