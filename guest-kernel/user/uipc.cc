// uipc: the IPC and authority self-tests (test=all). Started by the kernel's
// test harness with init's root tokens (handle 2 = control); spawn argument
// = number of round trips. Each check owns one bit of the exit code (names
// in kernel/selftest.cc, kIpcChecks, same order).
#include "user/runtime.h"

namespace {

using namespace abi;
using user::Invoke;
using user::Msg;
constexpr uint64_t kCtl = 2;

uint64_t g_echo_ep, g_ns_ep, g_sup_ep, g_echo_proc, g_echo;  // g_echo: the transferred handle

uint64_t Now() { return static_cast<uint64_t>(Invoke(kCtl, kOpClock)); }

int64_t StartWith(const char* name, uint8_t prio, uint64_t h1, uint64_t r1, uint64_t h2,
                  uint64_t r2, uint64_t arg, uint64_t badge) {
  const int64_t p = user::Spawn(kCtl, name, prio);
  if (p < 0) return p;
  if (h1 != 0) Invoke(static_cast<uint64_t>(p), kOpGive, h1, r1);
  if (h2 != 0) Invoke(static_cast<uint64_t>(p), kOpGive, h2, r2);
  Invoke(static_cast<uint64_t>(p), kOpSetSupervisor, g_sup_ep, badge);
  Invoke(static_cast<uint64_t>(p), kOpStart, arg);
  return p;
}

// echo registers itself with "us" as its name service: its send token
// arrives by transfer; then `n` Call/ReplyRecv round trips with a checksum.
bool RoundTrips(uint64_t n) {
  g_echo_ep = static_cast<uint64_t>(Invoke(kCtl, kOpCreateEndpoint));
  g_ns_ep = static_cast<uint64_t>(Invoke(kCtl, kOpCreateEndpoint));
  g_sup_ep = static_cast<uint64_t>(Invoke(kCtl, kOpCreateEndpoint));
  const int64_t p =
      StartWith("echo", 120, g_echo_ep, kRightsAll, g_ns_ep, kRightSend | kRightTransfer, 0, 1);
  if (p < 0) return false;
  g_echo_proc = static_cast<uint64_t>(p);
  Msg m;
  if (user::Recv(g_ns_ep, &m) != 0 || TagLabel(m.tag) != 1) return false;
  g_echo = user::Buffer()->xfer_handle;
  Msg ok;
  if (user::Reply(&ok) != 0 || g_echo == 0) return false;
  uint64_t sent = 0, got = 0;
  for (uint64_t i = 0; i < n; ++i) {
    Msg c;
    c.tag = MakeTag(1);
    c.w[0] = i;
    c.w[1] = i * 3;
    c.w[2] = ~i;
    c.w[3] = i << 32;
    sent += c.w[0] + c.w[1] + c.w[2] + c.w[3];
    if (user::Call(g_echo, &c) != 0) return false;
    got += c.w[0] + c.w[1] + c.w[2] + c.w[3];
  }
  // And one message with 1 KiB in the buffer.
  abi::IpcBuffer* b = user::Buffer();
  for (size_t i = 0; i < kIpcDataMax; ++i) b->data[i] = static_cast<uint8_t>(i * 7);
  Msg big;
  big.tag = MakeTag(1, kIpcDataMax);
  for (size_t i = 0; i < kIpcDataMax; ++i) b->data[i] = static_cast<uint8_t>(i * 7);
  if (user::Call(g_echo, &big) != 0 || TagLen(big.tag) != kIpcDataMax) return false;
  for (size_t i = 0; i < kIpcDataMax; ++i) {
    if (b->data[i] != static_cast<uint8_t>(i * 7)) return false;
  }
  user::Print("# uipc: {} round trips, checksum {:#x} == {:#x}\n", n, sent, got);
  return sent == got;
}

bool Denials() {
  bool ok = true;
  auto expect = [&](int64_t got, int64_t want, const char* what) {
    if (got != want) {
      user::Print("# uipc: {}: got {} want {}\n", what, got, want);
      ok = false;
    }
  };
  Msg m;
  m.tag = MakeTag(1, 0, 0, kTagNonBlocking);
  // Missing right: a receive-only token cannot send.
  const int64_t ro = Invoke(g_echo_ep, kOpDerive, kRightRecv | kRightDerive);
  expect(user::Send(static_cast<uint64_t>(ro), &m), kErrDenied, "send on a recv-only token");
  // Rights only narrow.
  const int64_t wide = Invoke(static_cast<uint64_t>(ro), kOpDerive, kRightsAll);
  expect((Invoke(static_cast<uint64_t>(wide), kOpInspect) >> 8) & 0xffff,
         static_cast<int64_t>(kRightRecv | kRightDerive), "derive widened rights");
  // Expired.
  const uint64_t soon = Now() + 20000;
  const int64_t exp = Invoke(g_echo_ep, kOpDerive, kRightSend | kRightDerive, soon);
  Msg c;
  c.tag = MakeTag(1);
  expect(user::Call(static_cast<uint64_t>(exp), &c), kOk, "call before expiry");
  // Expiry only shortens.
  const int64_t later = Invoke(static_cast<uint64_t>(exp), kOpDerive, kRightSend, soon + 1000000);
  uint64_t e = 0;
  Invoke(static_cast<uint64_t>(later), kOpInspect, 0, 0, 0, &e);
  expect(static_cast<int64_t>(e), static_cast<int64_t>(soon), "derive extended expiry");

  while (Now() <= soon) user::Yield();
  c.tag = MakeTag(1);
  expect(user::Call(static_cast<uint64_t>(exp), &c), kErrExpired, "call after expiry");
  // Revoked: grandchild of a token whose descendants are revoked.
  const int64_t mid = Invoke(g_echo_ep, kOpDerive, kRightsAll);
  const int64_t leaf = Invoke(static_cast<uint64_t>(mid), kOpDerive, kRightSend | kRightDerive);
  const int64_t leaf2 = Invoke(static_cast<uint64_t>(leaf), kOpDerive, kRightSend);
  c.tag = MakeTag(1);
  expect(user::Call(static_cast<uint64_t>(leaf2), &c), kOk, "call before revoke");
  expect(Invoke(static_cast<uint64_t>(mid), kOpRevoke), 2, "revoke count");
  c.tag = MakeTag(1);
  expect(user::Call(static_cast<uint64_t>(leaf2), &c), kErrRevoked, "call on a revoked token");
  expect(Invoke(static_cast<uint64_t>(leaf), kOpInspect), kErrRevoked, "inspect revoked");
  c.tag = MakeTag(1);
  expect(user::Call(static_cast<uint64_t>(mid), &c), kOk, "the revoking token itself stays");
  // The transferred echo token was derived from another tree: still good.
  c.tag = MakeTag(1);
  expect(user::Call(g_echo, &c), kOk, "unrelated token after revoke");
  // Stale and forged handles.
  const int64_t tmp = Invoke(g_echo_ep, kOpDerive, kRightSend);
  expect(Invoke(static_cast<uint64_t>(tmp), kOpClose), kOk, "close");
  c.tag = MakeTag(1);
  expect(user::Call(static_cast<uint64_t>(tmp), &c), kErrBadHandle, "stale handle");
  expect(user::Call(0x4242, &c), kErrBadHandle, "forged handle");
  // Wrong type, missing control right, missing transfer right.
  expect(user::Send(kCtl, &m), kErrWrongType, "send on a control token");
  const int64_t weak = Invoke(kCtl, kOpDerive, kRightCtlClock);
  expect(Invoke(static_cast<uint64_t>(weak), kOpCreateEndpoint), kErrDenied,
         "create without right");
  const int64_t notx = Invoke(g_echo_ep, kOpDerive, kRightSend);
  user::Buffer()->xfer_handle = static_cast<uint64_t>(notx);
  c.tag = MakeTag(1, 0, kXferCopy);
  expect(user::Call(g_echo, &c), kErrDenied, "transfer without kRightTransfer");
  return ok;
}

bool NotifyAndTimeouts() {
  const int64_t n = Invoke(kCtl, kOpCreateNotification);
  Msg s;
  s.w[0] = 5;
  bool ok = user::Send(static_cast<uint64_t>(n), &s) == 0;
  s.w[0] = 8;
  ok = ok && user::Send(static_cast<uint64_t>(n), &s) == 0;
  Msg w;
  ok = ok && user::Recv(static_cast<uint64_t>(n), &w) == 0 && w.w[0] == 13;
  // Nothing pending: non-blocking and timed waits fail distinctly.
  w.tag = MakeTag(0, 0, 0, kTagNonBlocking);
  ok = ok && user::Recv(static_cast<uint64_t>(n), &w) == kErrWouldBlock;
  user::Buffer()->timeout_us = 20000;
  w.tag = MakeTag(0, 0, 0, kTagTimeout);
  const uint64_t t0 = Now();
  ok = ok && user::Recv(g_ns_ep, &w) == kErrTimeout;
  ok = ok && Now() - t0 >= 10000;
  return ok;
}

// Senders queue by priority: three callers block in the order 50, 70, 60.
bool PriorityOrder() {
  const int64_t ep = Invoke(kCtl, kOpCreateEndpoint);
  const int64_t n = Invoke(kCtl, kOpCreateNotification);
  const uint8_t prios[3] = {50, 70, 60};
  for (uint8_t pr : prios) {
    if (StartWith("usend", pr, static_cast<uint64_t>(ep), kRightSend, 0, 0, pr, 9) < 0)
      return false;
    Msg w;
    user::Buffer()->timeout_us = 15000;  // let it run and block
    w.tag = MakeTag(0, 0, 0, kTagTimeout);
    user::Recv(static_cast<uint64_t>(n), &w);
  }
  uint64_t order[3];
  bool ok = true;
  for (uint64_t& o : order) {
    Msg m;
    ok = ok && user::Recv(static_cast<uint64_t>(ep), &m) == 0;
    o = m.w[0];
    Msg r;
    ok = ok && user::Reply(&r) == 0;
    ok = ok && user::Reply(&r) == kErrNoReply;  // a reply capability works once
  }
  user::Print("# uipc: senders served in order {} {} {}\n", order[0], order[1], order[2]);
  return ok && order[0] == 70 && order[1] == 60 && order[2] == 50;
}

// Map and grant of frames; revoke unmaps (echo then faults at the page,
// which reaches us as a fault message); fault supervision of ufault.
bool MapGrantRevoke() {
  uint64_t phys = 0;
  const int64_t f = Invoke(kCtl, kOpAllocFrames, 1, 0, 0, &phys);
  if (f < 0 || phys == 0) return false;
  if (Invoke(static_cast<uint64_t>(f), kOpMap, kUserMapBase, 1) != 0) return false;
  bool ok = true;
  volatile uint64_t* page = reinterpret_cast<volatile uint64_t*>(kUserMapBase);
  page[0] = 0x1234abcd;
  // Map: echo sees our word through its window.
  user::Buffer()->xfer_handle = static_cast<uint64_t>(f);
  Msg c;
  c.tag = MakeTag(2, 0, kXferMap);
  ok = ok && user::Call(g_echo, &c) == 0 && c.w[0] == 0x1234abcd;
  const uint64_t window = c.w[1];
  page[0] = 0x5678;
  c = Msg();
  c.tag = MakeTag(3);
  c.w[0] = window;
  ok = ok && user::Call(g_echo, &c) == 0 && c.w[0] == 0x5678;  // shared memory
  // Grant: a second frame moves to echo; our handle is gone.
  const int64_t g = Invoke(kCtl, kOpAllocFrames, 1);
  const int64_t gm = Invoke(static_cast<uint64_t>(g), kOpMap, kUserMapBase + 0x10000, 1);
  if (gm != 0) {
    user::Print("# uipc: map of the grant frame: {}\n", gm);
    return false;
  }
  *reinterpret_cast<volatile uint64_t*>(kUserMapBase + 0x10000) = 0x77;
  user::Buffer()->xfer_handle = static_cast<uint64_t>(g);
  c = Msg();
  c.tag = MakeTag(2, 0, kXferGrant);
  ok = ok && user::Call(g_echo, &c) == 0 && c.w[0] == 0x77;
  ok = ok && Invoke(static_cast<uint64_t>(g), kOpInspect) == kErrBadHandle;
  // Revoke: echo's mapping of the first frame goes; its read faults.
  ok = ok && Invoke(static_cast<uint64_t>(f), kOpRevoke) == 1;
  ok = ok && page[0] == 0x5678;  // ours stays
  c = Msg();
  c.tag = MakeTag(3);
  c.w[0] = window;
  const int64_t r = user::Call(g_echo, &c);
  Msg fault;
  ok = ok && user::Recv(g_sup_ep, &fault) == 0 && TagLabel(fault.tag) == kLabelFault &&
       fault.badge == 1 && fault.w[1] == 14 && fault.w[2] == window;
  ok = ok && r == kErrPeerGone;
  user::Print("# uipc: map/grant/revoke: echo's call ended {}, fault at {:#x}\n", r, fault.w[2]);
  return ok;
}

bool Supervision() {
  const int64_t p = StartWith("ufault", 90, 0, 0, 0, 0, 0, 42);
  Msg fault;
  bool ok = p > 0 && user::Recv(g_sup_ep, &fault) == 0;
  ok = ok && TagLabel(fault.tag) == kLabelFault && fault.badge == 42 && fault.w[1] == 14 &&
       fault.w[2] == 0xdead000;
  ok = ok && Invoke(static_cast<uint64_t>(p), kOpWait) < 0;
  return ok;
}

// Device access for user-space drivers: an MMIO window mapped uncached
// (read-only without Write), an IRQ line bound to a notification (once).
bool Devices() {
  constexpr uint64_t kMmio = 3, kIrq = 4;
  if ((Invoke(kMmio, kOpInspect) & 0xff) != static_cast<int64_t>(kObjMmio)) {
    user::Print("# uipc: no MMIO token, device test skipped\n");
    return true;
  }
  bool ok = true;
  auto expect = [&](int64_t got, int64_t want, const char* what) {
    if (got != want) {
      user::Print("# uipc: {}: got {} want {}\n", what, got, want);
      ok = false;
    }
  };
  const int64_t win =
      Invoke(kMmio, kOpDeriveRange, 0, 0x1000, kRightMap | kRightDerive);  // no Write
  uint64_t base = 0;
  expect(Invoke(static_cast<uint64_t>(win), kOpRangeInfo, 0, 0, 0, &base), 0x1000, "range size");
  expect(static_cast<int64_t>(base), 0xd0000000, "range base");
  expect(Invoke(static_cast<uint64_t>(win), kOpDeriveRange, 0x800, 0x1000, kRightsAll),
         kErrInvalidArgument, "range beyond the parent");
  const uint64_t va = kUserMapBase + 0x400000;
  expect(Invoke(static_cast<uint64_t>(win), kOpMap, va, 1), kErrDenied,
         "writable map without Write");
  expect(Invoke(static_cast<uint64_t>(win), kOpMap, va, 0), kOk, "read-only map");
  const uint32_t magic = *reinterpret_cast<volatile uint32_t*>(va);
  const int64_t line = Invoke(kIrq, kOpDeriveRange, 3, 1, kRightMap);  // COM2's line: unused
  const int64_t n = Invoke(kCtl, kOpCreateNotification);
  expect(Invoke(kIrq, kOpBindIrq, static_cast<uint64_t>(n), 0), kErrDenied,
         "bind 16 lines at once");
  expect(Invoke(static_cast<uint64_t>(line), kOpBindIrq, static_cast<uint64_t>(n), 0), kOk, "bind");
  expect(Invoke(static_cast<uint64_t>(line), kOpBindIrq, static_cast<uint64_t>(n), 1), kErrBusy,
         "bind twice");
  user::Print("# uipc: devices: virtio-mmio window 0 read {:#x} through an uncached user mapping\n",
              magic);
  return ok;
}

// A second thread in this process (kOpCreateThread) with its own IPC buffer:
// it Calls us with its buffer address and we answer.
uint64_t g_thread_ep;
extern "C" [[noreturn]] void SecondThread(uint64_t arg, uint64_t ipc_buffer) {
  Msg m;
  m.w[0] = arg;
  m.w[1] = ipc_buffer;
  user::Call(g_thread_ep, &m);
  Msg never;
  for (;;) user::Recv(g_thread_ep, &never);  // parked until the process ends
}

bool Threads(uint64_t heap) {
  g_thread_ep = static_cast<uint64_t>(Invoke(kCtl, kOpCreateEndpoint));
  const uint64_t stack_top = heap + (32ull << 20);
  const int64_t index = Invoke(kSelfHandle, kOpCreateThread,
                               reinterpret_cast<uint64_t>(&SecondThread), stack_top, 0x5eed);
  Msg m;
  bool ok = index == 1 && user::Recv(g_thread_ep, &m) == 0 && m.w[0] == 0x5eed &&
            m.w[1] == kUserIpcBuffer + 4096;
  Msg r;
  r.w[0] = 1;
  ok = ok && user::Reply(&r) == 0;
  return ok;
}

// I/O ports through the TSS bitmap: allowed inside the token's range, #GP
// (reported to the supervisor) outside.
bool Ports() {
  constexpr uint64_t kPorts = 5;  // init's root port token (COM2), as given by the harness
  if ((Invoke(kPorts, kOpInspect) & 0xff) != static_cast<int64_t>(kObjIoPorts)) {
    user::Print("# uipc: no I/O port token, port test skipped\n");
    return true;
  }
  const int64_t ep = Invoke(kCtl, kOpCreateEndpoint);
  const int64_t weak = Invoke(kPorts, kOpDerive, kRightTransfer);  // no Map right
  const int64_t p1 = StartWith("uports", 90, static_cast<uint64_t>(weak), kRightsAll,
                               static_cast<uint64_t>(ep), kRightSend, 0, 5);
  Msg m;
  bool ok = p1 > 0 && user::Recv(static_cast<uint64_t>(ep), &m) == 0 &&
            static_cast<int64_t>(m.w[0]) == kErrDenied;
  Msg fault;
  ok = ok && user::Recv(g_sup_ep, &fault) == 0 && fault.badge == 5 && fault.w[1] == 13;
  const int64_t p2 =
      StartWith("uports", 90, kPorts, kRightMap, static_cast<uint64_t>(ep), kRightSend, 0, 6);
  ok = ok && p2 > 0 && user::Recv(static_cast<uint64_t>(ep), &m) == 0 && m.w[0] == 0;
  ok = ok && user::Recv(g_sup_ep, &fault) == 0 && fault.badge == 6 && fault.w[1] == 13;
  user::Print("# uipc: ports: allowed read gave {:#x}, outside the range #GP ({})\n", m.w[1],
              fault.w[1]);
  return ok;
}

}  // namespace

extern "C" int64_t UserMain(uint64_t heap, uint64_t, uint64_t, uint64_t arg, uint64_t) {
  int64_t failed = 0;
  int bit = 0;
  auto check = [&](bool ok) {
    if (!ok) failed |= 1ll << bit;
    ++bit;
  };
  check(RoundTrips(arg == 0 ? 1000 : arg));
  check(Denials());
  check(NotifyAndTimeouts());
  check(PriorityOrder());
  check(MapGrantRevoke());
  check(Supervision());
  check(Ports());
  check(Threads(heap));
  check(Devices());
  return failed;
}
