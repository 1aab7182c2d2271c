#include "user/runtime.h"

namespace user {

void PrintBuffer(const char* fmt, const lib::FmtArg* args, size_t n) {
  char buf[512];
  size_t len = lib::VFormatBuffer(buf, sizeof(buf), fmt, args, n);
  if (len >= sizeof(buf)) len = sizeof(buf) - 1;
  DebugPrint(buf, len);
}

void Sort(uint64_t* v, size_t n) {
  size_t gap = 1;
  while (gap < n / 3) gap = gap * 3 + 1;
  for (; gap > 0; gap /= 3) {
    for (size_t i = gap; i < n; ++i) {
      const uint64_t x = v[i];
      size_t j = i;
      for (; j >= gap && v[j - gap] > x; j -= gap) v[j] = v[j - gap];
      v[j] = x;
    }
  }
}

}  // namespace user
