// Synchronous IPC (docs/ipc.md): endpoints with a priority-ordered queue of
// senders and a FIFO of receivers, rendezvous Send/Recv/Call/Reply/ReplyRecv,
// one-shot reply capabilities, notifications, timeouts, and token transfer
// (copy, map, grant) at the rendezvous.
//
// State machine of a thread (Thread::ipc.wait while kBlocked):
//   kSend   queued on an endpoint's senders, message in ipc.msg
//   kCall   as kSend, then kReply once a receiver took the message
//   kRecv   queued on an endpoint's receivers
//   kReply  waiting for the holder of its reply capability (ipc.replier)
//   kNotify waiting on a notification
// A receiver that took a Call holds ipc.reply_to until it replies (once) or
// ends (the caller then gets kErrPeerGone). Single CPU, interrupts off.
//
// kernel/sched.h's Thread holds an IpcState and includes this header, so
// this one names Thread only by pointer; code that follows those pointers
// includes kernel/sched.h.
#pragma once

#include <stdint.h>

#include "arch/x86_64/trap.h"
#include "kernel/token.h"

namespace kernel {

struct Thread;

// A message in flight (kernel/ipc.cc): tag, four register words, badge.
struct IpcMsg {
  uint64_t tag = 0;
  uint64_t w[4] = {};
  uint64_t badge = 0;
};

// Why a kBlocked thread with waiting_on == nullptr waits. kSuspended: created
// suspended (CreateUserThread), Wake starts it.
enum class IpcWait : uint8_t { kNone, kSend, kCall, kRecv, kReply, kNotify, kSuspended };

// A thread's IPC state (Thread::ipc). Read and written by kernel/ipc.cc and
// kernel/ipc_queue.cc; the scheduler writes only `wait` (kernel/sched.h),
// process set-up only `buffer`.
struct IpcState {
  IpcWait wait = IpcWait::kNone;
  Thread* next = nullptr;        // endpoint queue link
  void* object = nullptr;        // the Endpoint or Notification it is queued on
  IpcMsg msg;                    // a queued sender's message
  Token* xfer = nullptr;         // a queued sender's token to transfer
  uint64_t xfer_handle = 0;      // ... and its handle (closed by kXferGrant)
  Thread* reply_to = nullptr;    // the caller this thread answers next (one-shot reply capability)
  Thread* replier = nullptr;     // a caller: the server holding its reply capability
  int64_t result = 0;            // what the blocked system call returns
  uint64_t deadline = 0;         // tick when the wait times out, 0 = never
  Thread* timer_next = nullptr;  // the list of threads with a deadline
  bool timed = false;            // on that list
  uint64_t buffer = 0;           // physical frame of its abi::IpcBuffer
};

struct Endpoint {
  Thread* senders = nullptr;    // by priority, FIFO within a level
  Thread* receivers = nullptr;  // FIFO
};

struct Notification {
  uint64_t bits = 0;
  Thread* waiter = nullptr;
};

// Inserts `t` into a sender queue after every thread of priority >= its own.
void QueueInsertByPriority(Thread** head, Thread* t);
void QueueAppend(Thread** head, Thread* t);
bool QueueRemove(Thread** head, Thread* t);
Thread* QueuePop(Thread** head);

void IpcInit();
// System calls (frame = the caller's; results in registers and the return).
int64_t SysSend(arch::TrapFrame* f, bool call);
int64_t SysRecv(arch::TrapFrame* f);
int64_t SysReply(arch::TrapFrame* f);

// A message from the kernel on behalf of the current thread (fault report):
// blocks like Send until a receiver takes it. Returns kOk or an error.
int64_t KernelSend(Endpoint* ep, const IpcMsg& msg);
// Sets bits and wakes a waiter (IRQ handlers, Send on a notification).
void Signal(Notification* n, uint64_t bits);
// A faulting thread's pending reply capability: its caller gets kErrPeerGone.
void IpcDropReply(Thread* t);
// Undoes every IPC relation of a thread that is ending.
void IpcCancel(Thread* t);
// Binds IRQ line `irq` (0..15) to notification bit; false if already bound.
bool BindIrq(uint32_t irq, Notification* n, uint64_t bit);
// Removes a binding (kernel self-test).
void UnbindIrq(uint32_t irq);
// An IRQ arrived (vector kVecIrqBase + irq); true when bound.
bool IrqToNotification(uint32_t irq);

// Microseconds since boot (the token expiry clock).
uint64_t NowUs();

struct IpcStats {
  uint64_t messages, fast_switches, timeouts;
};
IpcStats& GetIpcStats();

}  // namespace kernel
