#include "kernel/ipc.h"

#include "abi/syscalls.h"
#include "arch/x86_64/apic.h"
#include "arch/x86_64/cpu.h"
#include "kernel/process.h"
#include "kernel/sched.h"
#include "kernel/vm.h"

namespace kernel {
namespace {

constinit IpcStats g_stats = {};
constinit uint64_t g_tsc0 = 0;        // the clock's zero (IpcInit)
constinit Thread* g_timed = nullptr;  // threads with an IPC deadline
struct IrqBinding {
  Notification* n;
  uint64_t bit;
};
constinit IrqBinding g_irq[16] = {};

arch::TrapFrame* UserFrame(Thread* t) {
  return reinterpret_cast<arch::TrapFrame*>(t->stack_top - sizeof(arch::TrapFrame));
}
abi::IpcBuffer* Buffer(Thread* t) {
  return t->ipc.buffer != 0 ? PhysPtr<abi::IpcBuffer>(t->ipc.buffer) : nullptr;
}

IpcMsg MsgFromFrame(const arch::TrapFrame* f) {
  IpcMsg m;
  m.tag = f->rsi;
  m.w[0] = f->rdx;
  m.w[1] = f->r10;
  m.w[2] = f->r8;
  m.w[3] = f->r9;
  return m;
}

void TimerRemove(Thread* t) {
  if (!t->ipc.timed) return;
  for (Thread** l = &g_timed; *l != nullptr; l = &(*l)->ipc.timer_next) {
    if (*l == t) {
      *l = t->ipc.timer_next;
      break;
    }
  }
  t->ipc.timed = false;
  t->ipc.timer_next = nullptr;
}

// Arms a timeout for the current wait; returns false for a zero timeout (poll).
bool TimerArm(Thread* t, uint64_t tag) {
  if ((tag & abi::kTagTimeout) == 0) return true;
  const abi::IpcBuffer* b = Buffer(t);
  const uint64_t us = b != nullptr ? b->timeout_us : 0;
  if (us == 0) return false;
  const uint64_t ticks = (us * kTimerHz + 999999) / 1000000;
  t->ipc.deadline = Ticks() + (ticks == 0 ? 1 : ticks);
  t->ipc.timed = true;
  t->ipc.timer_next = g_timed;
  g_timed = t;
  return true;
}

// The transferred token reaches the receiver's table (and for kXferMap its
// pages the receiver's map window). Returns the receiver's handle or 0.
uint64_t TransferToken(Thread* from, Thread* to, uint64_t tag, Token* tok, uint64_t handle) {
  Process* rp = to->process;
  if (tok == nullptr || rp == nullptr || TokenStatus(tok, kNowLazy) != abi::kOk) return 0;
  const uint64_t kind = abi::TagXfer(tag);
  Token* given = nullptr;
  if (kind == abi::kXferGrant) {
    // The token itself moves: the sender's handle closes, its mapping goes.
    if (from->process == nullptr) return 0;
    const int64_t h = rp->tokens.Insert(tok);  // insert first: Close must not free it
    if (h < 0) return 0;
    UnmapThroughToken(tok);
    from->process->tokens.Close(handle);
    const abi::IpcBuffer* b = Buffer(to);
    if (b != nullptr && b->map_window != 0 && (tok->rights & abi::kRightMap) != 0) {
      (void)MapThroughToken(rp, tok, b->map_window, (tok->rights & abi::kRightWrite) != 0);
    }
    return static_cast<uint64_t>(h);
  }
  if (DeriveToken(tok, abi::kRightsAll, 0, 0, 0, 0, &given) != abi::kOk) return 0;
  const int64_t h = rp->tokens.Insert(given);
  if (h < 0) {
    DiscardToken(given);
    return 0;
  }
  if (kind == abi::kXferMap) {
    const abi::IpcBuffer* b = Buffer(to);
    if (b != nullptr && b->map_window != 0) {
      (void)MapThroughToken(rp, given, b->map_window, (given->rights & abi::kRightWrite) != 0);
    }
  }
  return static_cast<uint64_t>(h);
}

// Copies a message into `to` (blocked in a system call or current): registers
// into its user frame, buffer bytes between the IPC buffers, a token.
void Deliver(Thread* from, Thread* to, const IpcMsg& m, Token* xfer, uint64_t xfer_handle) {
  arch::TrapFrame* f = UserFrame(to);
  f->rdi = m.badge;
  f->rsi = m.tag;
  f->rdx = m.w[0];
  f->r10 = m.w[1];
  f->r8 = m.w[2];
  f->r9 = m.w[3];
  abi::IpcBuffer* dst = Buffer(to);
  if (dst == nullptr) return;
  const uint64_t len = abi::TagLen(m.tag);
  const abi::IpcBuffer* src = from != nullptr ? Buffer(from) : nullptr;
  if (len != 0 && src != nullptr) {
    const void* s = src->data;
    void* d = dst->data;
    uint64_t n = len;
    asm volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
  }
  uint64_t got = 0;
  if (abi::TagXfer(m.tag) != abi::kXferNone && from != nullptr) {
    got = TransferToken(from, to, m.tag, xfer, xfer_handle);
  }
  if (got != 0 || dst->xfer_handle != 0) dst->xfer_handle = got;
  ++g_stats.messages;
}

// Resolves the token a message transfers (before blocking: errors are the
// sender's). *tok stays nullptr without a transfer.
int64_t ResolveXfer(Thread* t, uint64_t tag, Token** tok, uint64_t* handle) {
  *tok = nullptr;
  *handle = 0;
  if (abi::TagXfer(tag) == abi::kXferNone) return abi::kOk;
  const abi::IpcBuffer* b = Buffer(t);
  if (b == nullptr || t->process == nullptr) return abi::kErrInvalidArgument;
  *handle = b->xfer_handle;
  uint64_t need = abi::kRightTransfer;
  if (abi::TagXfer(tag) == abi::kXferMap) need |= abi::kRightMap;
  return t->process->tokens.Lookup(*handle, abi::kObjNone, need, kNowLazy, tok);
}

int64_t WaitNotification(Notification* n, arch::TrapFrame* f, uint64_t tag) {
  Thread* cur = Current();
  if (n->bits != 0) {
    f->rdx = n->bits;
    n->bits = 0;
    return abi::kOk;
  }
  if ((tag & abi::kTagNonBlocking) != 0) return abi::kErrWouldBlock;
  if (n->waiter != nullptr) return abi::kErrBusy;
  if (!TimerArm(cur, tag)) return abi::kErrTimeout;
  n->waiter = cur;
  cur->ipc.wait = IpcWait::kNotify;
  cur->ipc.object = n;
  cur->ipc.result = abi::kOk;
  BlockAndSwitchTo(nullptr);
  return cur->ipc.result;
}

// Drops a reply capability nobody used: the caller gets `err`.
void DropReply(Thread* server, int64_t err) {
  Thread* c = server->ipc.reply_to;
  if (c == nullptr) return;
  server->ipc.reply_to = nullptr;
  c->ipc.replier = nullptr;
  c->ipc.result = err;
  Wake(c);
}

// Receive on an endpoint for the current thread (registers land in its frame).
int64_t ReceiveOn(Endpoint* ep, uint64_t tag, Thread* switch_to) {
  Thread* cur = Current();
  Thread* s = QueuePop(&ep->senders);
  if (s != nullptr) {
    TimerRemove(s);
    Deliver(s, cur, s->ipc.msg, s->ipc.xfer, s->ipc.xfer_handle);
    s->ipc.object = nullptr;
    s->ipc.xfer = nullptr;
    if (s->ipc.wait == IpcWait::kCall) {
      s->ipc.wait = IpcWait::kReply;
      s->ipc.replier = cur;
      cur->ipc.reply_to = s;
    } else {
      s->ipc.result = abi::kOk;
      Wake(s);
    }
    if (switch_to != nullptr) Wake(switch_to);
    return abi::kOk;
  }
  if ((tag & abi::kTagNonBlocking) != 0) {
    if (switch_to != nullptr) Wake(switch_to);
    return abi::kErrWouldBlock;
  }
  if (!TimerArm(cur, tag)) {
    if (switch_to != nullptr) Wake(switch_to);
    return abi::kErrTimeout;
  }
  cur->ipc.wait = IpcWait::kRecv;
  cur->ipc.object = ep;
  cur->ipc.result = abi::kOk;
  QueueAppend(&ep->receivers, cur);
  if (switch_to != nullptr) ++g_stats.fast_switches;
  BlockAndSwitchTo(switch_to);
  return cur->ipc.result;
}

void OnTick(uint64_t now) {
  for (Thread** l = &g_timed; *l != nullptr;) {
    Thread* t = *l;
    if (t->ipc.deadline > now) {
      l = &t->ipc.timer_next;
      continue;
    }
    *l = t->ipc.timer_next;
    t->ipc.timed = false;
    t->ipc.timer_next = nullptr;
    // Leave whatever queue it waits in.
    if (t->ipc.wait == IpcWait::kSend || t->ipc.wait == IpcWait::kCall) {
      QueueRemove(&static_cast<Endpoint*>(t->ipc.object)->senders, t);
    } else if (t->ipc.wait == IpcWait::kRecv) {
      QueueRemove(&static_cast<Endpoint*>(t->ipc.object)->receivers, t);
    } else if (t->ipc.wait == IpcWait::kNotify) {
      static_cast<Notification*>(t->ipc.object)->waiter = nullptr;
    } else {
      continue;
    }
    t->ipc.object = nullptr;
    t->ipc.result = abi::kErrTimeout;
    ++g_stats.timeouts;
    Wake(t);
  }
}

}  // namespace

IpcStats& GetIpcStats() { return g_stats; }

uint64_t NowUs() {
  const uint64_t hz = arch::Apic().tsc_hz;
  return hz < 1000000 ? 0 : (arch::Rdtsc() - g_tsc0) / (hz / 1000000);
}

void IpcInit() {
  g_tsc0 = arch::Rdtsc();
  SetTickHook(OnTick);
  SetTokenRevokeHook(UnmapThroughToken);
  SetTokenClock(NowUs);
}

void Signal(Notification* n, uint64_t bits) {
  n->bits |= bits;
  Thread* w = n->waiter;
  if (w == nullptr || n->bits == 0) return;
  n->waiter = nullptr;
  TimerRemove(w);
  UserFrame(w)->rdx = n->bits;
  n->bits = 0;
  w->ipc.object = nullptr;
  w->ipc.result = abi::kOk;
  Wake(w);
}

int64_t SysSend(arch::TrapFrame* f, bool call) {
  Thread* cur = Current();
  Process* p = cur->process;
  // One lookup for both kinds; the same error order as Lookup (wrong type,
  // then missing right).
  Token* t;
  const int64_t st = p->tokens.Lookup(f->rdi, abi::kObjNone, 0, kNowLazy, &t);
  if (st != abi::kOk) return st;
  if (t->type == abi::kObjNotification && !call) {
    if ((t->rights & abi::kRightSend) == 0) return abi::kErrDenied;
    Signal(static_cast<Notification*>(t->object), f->rdx);
    return abi::kOk;
  }
  if (t->type != abi::kObjEndpoint) return abi::kErrWrongType;
  if ((t->rights & abi::kRightSend) == 0) return abi::kErrDenied;
  Endpoint* ep = static_cast<Endpoint*>(t->object);
  IpcMsg m = MsgFromFrame(f);
  m.badge = t->badge;
  Token* xfer;
  uint64_t xfer_handle;
  const int64_t xs = ResolveXfer(cur, m.tag, &xfer, &xfer_handle);
  if (xs != abi::kOk) return xs;
  Thread* r = QueuePop(&ep->receivers);
  if (r != nullptr) {
    TimerRemove(r);
    Deliver(cur, r, m, xfer, xfer_handle);
    r->ipc.object = nullptr;
    r->ipc.result = abi::kOk;
    if (!call) {
      Wake(r);
      return abi::kOk;
    }
    r->ipc.reply_to = cur;
    cur->ipc.replier = r;
    cur->ipc.wait = IpcWait::kReply;
    cur->ipc.result = abi::kOk;
    ++g_stats.fast_switches;
    BlockAndSwitchTo(r);
    return cur->ipc.result;
  }
  if ((m.tag & abi::kTagNonBlocking) != 0) return abi::kErrWouldBlock;
  if (!TimerArm(cur, m.tag)) return abi::kErrTimeout;
  cur->ipc.msg = m;
  cur->ipc.xfer = xfer;
  cur->ipc.xfer_handle = xfer_handle;
  cur->ipc.wait = call ? IpcWait::kCall : IpcWait::kSend;
  cur->ipc.object = ep;
  cur->ipc.result = abi::kOk;
  QueueInsertByPriority(&ep->senders, cur);
  BlockAndSwitchTo(nullptr);
  return cur->ipc.result;
}

int64_t KernelSend(Endpoint* ep, const IpcMsg& m) {
  Thread* cur = Current();
  Thread* r = QueuePop(&ep->receivers);
  if (r != nullptr) {
    TimerRemove(r);
    Deliver(nullptr, r, m, nullptr, 0);
    r->ipc.object = nullptr;
    r->ipc.result = abi::kOk;
    Wake(r);
    return abi::kOk;
  }
  cur->ipc.msg = m;
  cur->ipc.msg.tag &= ~(abi::kTagLenMask | (3ull << abi::kTagXferShift));
  cur->ipc.xfer = nullptr;
  cur->ipc.wait = IpcWait::kSend;
  cur->ipc.object = ep;
  cur->ipc.result = abi::kOk;
  QueueInsertByPriority(&ep->senders, cur);
  BlockAndSwitchTo(nullptr);
  return cur->ipc.result;
}

int64_t SysRecv(arch::TrapFrame* f) {
  Thread* cur = Current();
  Process* p = cur->process;
  const uint64_t tag = f->rsi;
  Token* t;
  const int64_t st = p->tokens.Lookup(f->rdi, abi::kObjNone, 0, kNowLazy, &t);
  if (st != abi::kOk) return st;
  if (t->type != abi::kObjEndpoint && t->type != abi::kObjNotification) return abi::kErrWrongType;
  if ((t->rights & abi::kRightRecv) == 0) return abi::kErrDenied;
  if (t->type == abi::kObjNotification) {
    return WaitNotification(static_cast<Notification*>(t->object), f, tag);
  }
  DropReply(cur, abi::kErrNoReply);
  return ReceiveOn(static_cast<Endpoint*>(t->object), tag, nullptr);
}

int64_t SysReply(arch::TrapFrame* f) {
  Thread* cur = Current();
  const uint64_t tag = f->rsi;
  Endpoint* ep = nullptr;
  if ((tag & abi::kTagReplyRecv) != 0) {
    Token* t;
    const int64_t st =
        cur->process->tokens.Lookup(f->rdi, abi::kObjEndpoint, abi::kRightRecv, kNowLazy, &t);
    if (st != abi::kOk) return st;
    ep = static_cast<Endpoint*>(t->object);
  }
  Thread* c = cur->ipc.reply_to;
  if (c == nullptr) {
    if (ep == nullptr) return abi::kErrNoReply;
  } else {
    IpcMsg m = MsgFromFrame(f);
    m.tag &= ~abi::kTagReplyRecv;
    Token* xfer;
    uint64_t xfer_handle;
    const int64_t xs = ResolveXfer(cur, m.tag, &xfer, &xfer_handle);
    if (xs != abi::kOk) return xs;
    cur->ipc.reply_to = nullptr;
    c->ipc.replier = nullptr;
    Deliver(cur, c, m, xfer, xfer_handle);
    c->ipc.result = abi::kOk;
    if (ep == nullptr) {
      Wake(c);
      return abi::kOk;
    }
  }
  // ReplyRecv: receive next; when that blocks, run the caller at once.
  return ReceiveOn(ep, tag & ~abi::kTagReplyRecv, c);
}

void IpcDropReply(Thread* t) { DropReply(t, abi::kErrPeerGone); }

void IpcCancel(Thread* t) {
  TimerRemove(t);
  if (t->state == ThreadState::kBlocked) {
    switch (t->ipc.wait) {
      case IpcWait::kSend:
      case IpcWait::kCall:
        QueueRemove(&static_cast<Endpoint*>(t->ipc.object)->senders, t);
        break;
      case IpcWait::kRecv:
        QueueRemove(&static_cast<Endpoint*>(t->ipc.object)->receivers, t);
        break;
      case IpcWait::kNotify:
        static_cast<Notification*>(t->ipc.object)->waiter = nullptr;
        break;
      case IpcWait::kReply:
        if (t->ipc.replier != nullptr) t->ipc.replier->ipc.reply_to = nullptr;
        break;
      default:
        break;
    }
  }
  t->ipc.object = nullptr;
  t->ipc.replier = nullptr;
  DropReply(t, abi::kErrPeerGone);
}

bool BindIrq(uint32_t irq, Notification* n, uint64_t bit) {
  if (irq >= 16 || g_irq[irq].n != nullptr) return false;
  g_irq[irq] = IrqBinding{n, bit};
  arch::IoApicRoute(static_cast<uint8_t>(irq));
  return true;
}

void UnbindIrq(uint32_t irq) {
  if (irq < 16) g_irq[irq] = IrqBinding{nullptr, 0};
}

bool IrqToNotification(uint32_t irq) {
  if (irq >= 16 || g_irq[irq].n == nullptr) return false;
  Signal(g_irq[irq].n, 1ull << (g_irq[irq].bit & 63));
  return true;
}

}  // namespace kernel
