// uspin: spins forever incrementing a counter at the start of its heap; it
// never yields, so only preemption takes the CPU from it.
#include "user/runtime.h"

extern "C" int64_t UserMain(uint64_t heap, uint64_t, uint64_t, uint64_t) {
  volatile uint64_t* counter = reinterpret_cast<volatile uint64_t*>(heap);
  for (;;) *counter = *counter + 1;
}
