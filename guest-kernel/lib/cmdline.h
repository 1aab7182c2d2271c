// Kernel command line: words separated by spaces; a word is either a flag
// (`triple`) or key=value (`exit=3`). Pure logic, host-tested.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace lib {

class Cmdline {
 public:
  constexpr Cmdline() = default;
  explicit Cmdline(const char* text) : text_(text) {}

  const char* text() const { return text_ != nullptr ? text_ : ""; }
  // True when `word` appears as a flag or as the key of key=value.
  bool Has(const char* word) const;
  // The value of key=value (not NUL-terminated: value/len), false if absent.
  bool Get(const char* key, const char** value, size_t* len) const;
  // True when key=value is present and value equals `expected`.
  bool ValueIs(const char* key, const char* expected) const;
  // key=N as a number; `fallback` when absent, the key has no value or
  // it is not a number.
  uint64_t GetU64(const char* key, uint64_t fallback) const;

 private:
  const char* text_ = nullptr;
};

}  // namespace lib
