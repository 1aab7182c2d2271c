// uports: the I/O-port test of uipc. Handle 2: an I/O port token for COM2
// (0x2f8..0x2ff), handle 3: an endpoint. Opens the range (kOpAllowPorts),
// reads COM2's scratch register, reports that by IPC, then touches a port
// outside the range: #GP, reported to its supervisor.
#include "user/runtime.h"

namespace {
uint8_t Inb(uint16_t port) {
  uint8_t v;
  asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
}  // namespace

extern "C" int64_t UserMain(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  const int64_t r = user::Invoke(abi::kFirstGivenHandle, abi::kOpAllowPorts);
  user::Msg m;
  m.w[0] = static_cast<uint64_t>(r);
  if (r == 0) m.w[1] = Inb(0x2ff);  // allowed: COM2 scratch register
  m.w[2] = 1;
  user::Send(abi::kFirstGivenHandle + 1, &m);
  return Inb(0x2f0);  // not allowed: #GP
}
