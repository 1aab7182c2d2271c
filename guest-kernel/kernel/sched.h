// Threads and the scheduler (single CPU).
//
// Policy: strict priority across the 256 levels of RunQueue (255 highest),
// FIFO within a level, round-robin time slices of kSliceTicks timer ticks
// within a level. A thread preempted by a higher-priority one goes back to
// the head of its level (it keeps its turn); one whose slice ran out goes to
// the tail. The idle thread (level 0, reserved for it) halts with
// interrupts enabled.
//
// Invariants:
//  - exactly one thread is kRunning and it is Current(); it is not queued;
//  - a kReady thread is queued in RunQueue at its priority; no other is;
//  - a kSleeping thread is on the sleep list, a kBlocked one on at most one
//    WaitQueue; a kDead one is on the zombie list until its stack is freed;
//  - a kBlocked thread with waiting_on == nullptr waits in IPC: its
//    Thread::ipc (IpcState, owned by kernel/ipc.h and kernel/ipc.cc) says why.
//    The scheduler writes only ipc.wait: kSuspended for a thread created
//    suspended, kNone when Wake or BlockAndSwitchTo makes a thread run again.
// The kernel runs with interrupts off (interrupt gates; IF=1 only in ring 3
// and in the idle thread's hlt), so none of this needs locks; a switch
// happens only inside Schedule().
#pragma once

#include <stdint.h>

#include "kernel/ipc.h"
#include "kernel/run_queue.h"

namespace kernel {

struct Process;
struct WaitQueue;

enum class ThreadState : uint8_t { kReady, kRunning, kBlocked, kSleeping, kDead };

inline constexpr uint32_t kSliceTicks = 2;
inline constexpr uint32_t kTimerHz = 100;
inline constexpr uint8_t kIdlePriority = 0;

struct Thread {
  RunNode node;  // first member: RunNode* <-> Thread*
  uint64_t saved_rsp = 0;
  uint64_t stack_base = 0;  // lowest mapped address of the kernel stack
  uint64_t stack_top = 0;
  ThreadState state = ThreadState::kReady;
  bool preempted_by_higher = false;
  uint32_t slice_left = kSliceTicks;
  uint64_t wake_tick = 0;
  Thread* list_next = nullptr;  // sleep list, wait queue or zombie list
  WaitQueue* waiting_on = nullptr;
  Process* process = nullptr;  // nullptr: kernel thread
  uint32_t tid = 0;
  uint64_t ticks_run = 0;
  char name[16] = {};
  IpcState ipc;        // kernel/ipc.h
  uint32_t index = 0;  // thread index within its process
};

// Threads blocked until an event (WakeAll).
struct WaitQueue {
  Thread* head = nullptr;
};

void SchedInit();
// Leaves the boot stack for good: switches to the highest-priority thread.
[[noreturn]] void SchedStart();

Thread* CreateKernelThread(const char* name, uint8_t priority, void (*fn)(void*), void* arg);
// A ring-3 thread of `process` starting at `entry` with RSP = `user_rsp` and
// RDI, RSI, RDX, RCX = args[0..3].
// With `ready` false the thread starts suspended (IpcWait::kSuspended): Wake
// starts it.
Thread* CreateUserThread(Process* process, const char* name, uint8_t priority, uint64_t entry,
                         uint64_t user_rsp, const uint64_t args[4], bool ready = true,
                         uint64_t r8 = 0);

Thread* Current();
void Yield();
void SleepTicks(uint64_t ticks);
void Wait(WaitQueue* queue);  // blocks Current() on `queue`
void WakeAll(WaitQueue* queue);
// IPC blocking: Current() becomes kBlocked on no WaitQueue (its ipc.wait says
// why) and the CPU goes to `next` directly when that is allowed by priority
// (next is not queued and at least as urgent as every ready thread), else to
// the scheduler's choice with `next` made ready. next may be nullptr.
void BlockAndSwitchTo(Thread* next);
// Makes a kBlocked thread ready (IPC partner arrived).
void Wake(Thread* thread);
// Called on each tick (IPC timeouts).
void SetTickHook(void (*hook)(uint64_t now_tick));
// Ends Current(); its stack is freed by a later switch.
[[noreturn]] void ExitCurrentThread();
// Ends a thread that is not running (ready, sleeping or blocked).
void KillThread(Thread* thread);

// Timer tick (interrupt context, before EOI returns).
void Tick();
uint64_t Ticks();
// Switches if a higher-priority thread became ready or the slice ran out.
void PreemptIfNeeded();
void Schedule();
// Loads CR3 (tracked, so that Schedule knows what is loaded).
void SwitchAddressSpace(uint64_t root);

struct SchedStats {
  uint64_t switches, ticks, idle_ticks;
};
SchedStats GetSchedStats();

}  // namespace kernel

extern "C" [[noreturn]] void ThreadExitCurrent();
