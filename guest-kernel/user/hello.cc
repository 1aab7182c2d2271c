// hello: a minimal program started by init.
#include "user/runtime.h"

extern "C" int64_t UserMain(uint64_t, uint64_t, uint64_t pid, uint64_t) {
  user::Print("[hello] hello from pid {}\n", pid);
  return 0;
}
