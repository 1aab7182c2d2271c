#include "user/runtime.h"

extern "C" {
// GCC may emit calls to these even in freestanding code.
void* memcpy(void* dst, const void* src, size_t n) {
  void* ret = dst;
  asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
  return ret;
}
void* memset(void* dst, int c, size_t n) {
  void* ret = dst;
  asm volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(c) : "memory");
  return ret;
}
void* memmove(void* dst, const void* src, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  if (d <= s || d >= s + n) return memcpy(dst, src, n);
  while (n-- > 0) d[n] = s[n];
  return dst;
}
int memcmp(const void* a, const void* b, size_t n) {
  const auto* x = static_cast<const unsigned char*>(a);
  const auto* y = static_cast<const unsigned char*>(b);
  for (size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}
}

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
