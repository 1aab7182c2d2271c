#include "lib/cmdline.h"

#include "lib/string.h"

namespace lib {
namespace {

// Calls fn(word, len, key_len) for each word; stops when fn returns true.
template <typename Fn>
bool ForEachWord(const char* s, Fn fn) {
  if (s == nullptr) return false;
  while (*s != 0) {
    while (*s == ' ' || *s == '\t' || *s == '\n') ++s;
    const char* word = s;
    size_t key_len = 0;
    bool has_eq = false;
    while (*s != 0 && *s != ' ' && *s != '\t' && *s != '\n') {
      if (*s == '=' && !has_eq) {
        has_eq = true;
        key_len = static_cast<size_t>(s - word);
      }
      ++s;
    }
    const size_t len = static_cast<size_t>(s - word);
    if (len == 0) continue;
    if (!has_eq) key_len = len;
    if (fn(word, len, key_len)) return true;
  }
  return false;
}

}  // namespace

bool Cmdline::Has(const char* word) const {
  return ForEachWord(
      text_, [&](const char* w, size_t, size_t key_len) { return EqualN(w, key_len, word); });
}

bool Cmdline::Get(const char* key, const char** value, size_t* len) const {
  return ForEachWord(text_, [&](const char* w, size_t n, size_t key_len) {
    if (key_len == n || !EqualN(w, key_len, key)) return false;
    *value = w + key_len + 1;
    *len = n - key_len - 1;
    return true;
  });
}

bool Cmdline::ValueIs(const char* key, const char* expected) const {
  const char* v;
  size_t n;
  return Get(key, &v, &n) && EqualN(v, n, expected);
}

uint64_t Cmdline::GetU64(const char* key, uint64_t fallback) const {
  const char* v;
  size_t n;
  uint64_t out;
  if (Get(key, &v, &n) && ParseU64(v, n, &out)) return out;
  return fallback;
}

}  // namespace lib
