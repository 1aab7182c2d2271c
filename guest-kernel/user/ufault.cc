// ufault: touches an unmapped address; the kernel must report the #PF and
// end this process (self-test "user fault reported").
#include "user/runtime.h"

extern "C" int64_t UserMain(uint64_t, uint64_t, uint64_t, uint64_t) {
  user::Print("[ufault] writing to 0xdead000\n");
  *reinterpret_cast<volatile uint64_t*>(0xdead000) = 1;
  user::Print("[ufault] still alive\n");
  return 0;
}
