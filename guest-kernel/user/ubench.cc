// ubench: rdtsc medians of a null system call round trip and of a Yield
// ping-pong with upong (two user processes at the same priority: one Yield
// round trip = 2 context switches + 2 system calls).
// Spawn argument: iterations in bits 0..31, TSC MHz in bits 32..63.
#include "user/runtime.h"

namespace {

uint64_t Median(uint64_t* v, size_t n) {
  user::Sort(v, n);
  return v[n / 2];
}

uint64_t Ns(uint64_t cycles, uint64_t mhz) { return mhz == 0 ? 0 : cycles * 1000 / mhz; }

}  // namespace

extern "C" int64_t UserMain(uint64_t heap, uint64_t, uint64_t, uint64_t arg) {
  size_t n = arg & 0xffffffff;
  const uint64_t mhz = arg >> 32;
  if (n == 0) n = 1;
  if (n > 1000000) n = 1000000;
  uint64_t* s = reinterpret_cast<uint64_t*>(heap);

  for (size_t i = 0; i < n; ++i) {
    const uint64_t t0 = user::Rdtsc();
    const uint64_t t1 = user::Rdtsc();
    s[i] = t1 - t0;
  }
  const uint64_t overhead = Median(s, n);

  for (size_t i = 0; i < n; ++i) {
    const uint64_t t0 = user::Rdtsc();
    user::DebugPrint(nullptr, 0);
    const uint64_t t1 = user::Rdtsc();
    s[i] = t1 - t0;
  }
  const uint64_t null_rt = Median(s, n);
  const uint64_t null_min = s[0];

  for (size_t i = 0; i < n; ++i) {
    const uint64_t t0 = user::Rdtsc();
    user::Yield();
    const uint64_t t1 = user::Rdtsc();
    s[i] = t1 - t0;
  }
  const uint64_t yield_rt = Median(s, n);

  user::Print("[bench] iterations: {}, tsc: {} MHz, rdtsc overhead: {} cycles\n", n, mhz, overhead);
  user::Print("[bench] null syscall round trip: median {} cycles ({} ns), min {} cycles\n", null_rt,
              Ns(null_rt, mhz), null_min);
  user::Print("[bench] yield ping-pong round trip (2 switches): median {} cycles ({} ns)\n",
              yield_rt, Ns(yield_rt, mhz));
  user::Print("[bench] user-to-user context switch: median {} cycles ({} ns)\n", yield_rt / 2,
              Ns(yield_rt / 2, mhz));
  return 0;
}
