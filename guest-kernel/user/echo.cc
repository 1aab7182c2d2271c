// echo: the IPC echo service. Handle 2: its endpoint (receive), handle 3:
// the name service (send). Registers "echo", then answers every Call with
// the same label, words and buffer bytes. Labels with a meaning:
//   2 a frames token arrived mapped (kXferMap/kXferGrant) in the map window:
//     reply w0 = the first word there, w1 = the window, then move the window on
//   3 read the word at w0 (a mapped page) and reply with it (faults if unmapped)
//   99 crash (a page fault: the supervisor path)
#include "user/runtime.h"

extern "C" int64_t UserMain(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  constexpr uint64_t kEp = abi::kFirstGivenHandle, kNs = abi::kFirstGivenHandle + 1;
  abi::IpcBuffer* buf = user::Buffer();
  if (const int64_t r = user::RegisterName(kNs, "echo", kEp); r != 0) {
    user::Print("[echo] cannot register: {}\n", user::ErrorName(r));
  }
  uint64_t window = abi::kUserMapBase;
  buf->map_window = window;
  user::Msg m;
  user::Recv(kEp, &m);
  for (;;) {
    const uint64_t label = abi::TagLabel(m.tag);
    m.tag = abi::MakeTag(label, abi::TagLen(m.tag));
    if (label == 2) {
      m.w[0] = *reinterpret_cast<volatile uint64_t*>(window);
      m.w[1] = window;
      window += 0x100000;
      buf->map_window = window;
    } else if (label == 3) {
      m.w[0] = *reinterpret_cast<volatile uint64_t*>(m.w[0]);
    } else if (label == 99) {
      *reinterpret_cast<volatile uint64_t*>(0xdead000) = 1;
    }
    buf->xfer_handle = 0;
    user::ReplyRecv(kEp, &m);
  }
}
