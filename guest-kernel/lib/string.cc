#include "lib/string.h"

namespace lib {

size_t StrLen(const char* s) {
  size_t n = 0;
  while (s[n] != 0) ++n;
  return n;
}

bool EqualN(const char* s, size_t len, const char* word) {
  size_t i = 0;
  for (; i < len; ++i) {
    if (word[i] == 0 || word[i] != s[i]) return false;
  }
  return word[i] == 0;
}

bool ParseU64(const char* s, size_t len, uint64_t* out) {
  if (len == 0) return false;
  uint64_t base = 10;
  if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s += 2;
    len -= 2;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < len; ++i) {
    const char c = s[i];
    uint64_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint64_t>(c - '0');
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      d = static_cast<uint64_t>(c - 'a' + 10);
    } else if (base == 16 && c >= 'A' && c <= 'F') {
      d = static_cast<uint64_t>(c - 'A' + 10);
    } else {
      return false;
    }
    if (v > (UINT64_MAX - d) / base) return false;
    v = v * base + d;
  }
  *out = v;
  return true;
}

}  // namespace lib
