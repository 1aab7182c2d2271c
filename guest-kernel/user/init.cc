// init: the first process, in ring 3. Part 1: announces itself, starts the
// bundled demo program and ends (part 2 keeps it alive holding the root tokens
// and starting the services).
#include "user/runtime.h"

extern "C" int64_t UserMain(uint64_t, uint64_t, uint64_t pid, uint64_t) {
  user::Print("[init] running in ring 3, pid {}\n", pid);
  const int64_t child = user::Spawn("hello", 5, 100);
  user::Print("[init] started hello: {}\n", child);
  user::Print("[init] user space ready\n");
  return child > 0 ? 0 : 1;
}
