// namesvc: the name service. Handle 2: its endpoint. Protocol (label):
//   1 register: buffer data = name (<= 15 bytes), a token transferred
//     (kXferCopy); replaces an earlier entry of that name. Reply w0 = 0.
//   2 lookup: buffer data = name. Reply: a child of the registered token
//     (kXferCopy) and w0 = 0, or w0 = kErrNotFound.
#include "user/runtime.h"

namespace {

struct Entry {
  char name[16];
  size_t len;
  uint64_t handle;
};
Entry g_names[16];

Entry* Find(const uint8_t* name, size_t len) {
  for (Entry& e : g_names) {
    if (e.handle == 0 || e.len != len) continue;
    bool same = true;
    for (size_t i = 0; i < len; ++i) same = same && e.name[i] == static_cast<char>(name[i]);
    if (same) return &e;
  }
  return nullptr;
}

}  // namespace

extern "C" int64_t UserMain(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t) {
  constexpr uint64_t kEp = abi::kFirstGivenHandle;
  abi::IpcBuffer* buf = user::Buffer();
  user::Msg m;
  int64_t r = user::Recv(kEp, &m);
  for (;;) {
    user::Msg reply;
    if (r >= 0) {
      const size_t len = abi::TagLen(m.tag) > 15 ? 15 : abi::TagLen(m.tag);
      const uint64_t label = abi::TagLabel(m.tag);
      if (label == 1 && buf->xfer_handle != 0) {
        Entry* e = Find(buf->data, len);
        if (e == nullptr) {
          for (Entry& f : g_names) {
            if (f.handle == 0) {
              e = &f;
              break;
            }
          }
        } else {
          user::Invoke(e->handle, abi::kOpClose);
        }
        if (e != nullptr) {
          for (size_t i = 0; i < len; ++i) e->name[i] = static_cast<char>(buf->data[i]);
          e->len = len;
          e->handle = buf->xfer_handle;
          user::Print("[namesvc] registered {}\n", static_cast<const char*>(e->name));
        }
        reply.w[0] = e != nullptr ? 0 : static_cast<uint64_t>(abi::kErrNoSlots);
      } else if (label == 2) {
        const Entry* e = Find(buf->data, len);
        if (e != nullptr) {
          buf->xfer_handle = e->handle;
          reply.tag = abi::MakeTag(0, 0, abi::kXferCopy);
        } else {
          reply.w[0] = static_cast<uint64_t>(abi::kErrNotFound);
        }
      } else {
        reply.w[0] = static_cast<uint64_t>(abi::kErrInvalidArgument);
      }
    }
    r = user::ReplyRecv(kEp, &reply);
    m = reply;
  }
}
