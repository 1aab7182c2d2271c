// usend: calls the endpoint given as handle 2 once with w0 = its spawn
// argument (the priority-ordered sender test in uipc) and exits.
#include "user/runtime.h"

extern "C" int64_t UserMain(uint64_t, uint64_t, uint64_t, uint64_t arg, uint64_t) {
  user::Msg m;
  m.tag = abi::MakeTag(7);
  m.w[0] = arg;
  return user::Call(abi::kFirstGivenHandle, &m);
}
