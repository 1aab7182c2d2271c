// upong: the partner of ubench's context-switch benchmark: yields forever.
#include "user/runtime.h"

extern "C" int64_t UserMain(uint64_t, uint64_t, uint64_t, uint64_t) {
  for (;;) user::Yield();
}
