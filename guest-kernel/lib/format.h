// Type-safe text formatting for a freestanding kernel (also compiles hosted,
// for the unit tests). Format strings use a small subset of std::format:
//   {}  {:x}  {:#x}  {:016x}  {:8}  {:<8}  {:c}
// fill '0' (numbers), '<' left-aligns, '#' adds 0x, width in decimal,
// type x = hex, d = decimal, c = character. `{{` prints '{'; '}' outside a
// field prints as itself.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace lib {

struct FmtArg {
  enum class Kind : uint8_t { kUnsigned, kSigned, kString, kChar, kPointer, kBool };
  Kind kind;
  union {
    uint64_t u;
    int64_t i;
    const char* s;
  };
};

inline FmtArg MakeFmtArg(unsigned long long v) {
  FmtArg a{FmtArg::Kind::kUnsigned, {}};
  a.u = v;
  return a;
}
inline FmtArg MakeFmtArg(unsigned long v) { return MakeFmtArg(static_cast<unsigned long long>(v)); }
inline FmtArg MakeFmtArg(unsigned int v) { return MakeFmtArg(static_cast<unsigned long long>(v)); }
inline FmtArg MakeFmtArg(unsigned short v) {
  return MakeFmtArg(static_cast<unsigned long long>(v));
}
inline FmtArg MakeFmtArg(unsigned char v) { return MakeFmtArg(static_cast<unsigned long long>(v)); }
inline FmtArg MakeFmtArg(long long v) {
  FmtArg a{FmtArg::Kind::kSigned, {}};
  a.i = v;
  return a;
}
inline FmtArg MakeFmtArg(long v) { return MakeFmtArg(static_cast<long long>(v)); }
inline FmtArg MakeFmtArg(int v) { return MakeFmtArg(static_cast<long long>(v)); }
inline FmtArg MakeFmtArg(short v) { return MakeFmtArg(static_cast<long long>(v)); }
inline FmtArg MakeFmtArg(bool v) {
  FmtArg a{FmtArg::Kind::kBool, {}};
  a.u = v ? 1 : 0;
  return a;
}
inline FmtArg MakeFmtArg(char v) {
  FmtArg a{FmtArg::Kind::kChar, {}};
  a.u = static_cast<unsigned char>(v);
  return a;
}
inline FmtArg MakeFmtArg(const char* v) {
  FmtArg a{FmtArg::Kind::kString, {}};
  a.s = v;
  return a;
}
inline FmtArg MakeFmtArg(char* v) { return MakeFmtArg(static_cast<const char*>(v)); }
inline FmtArg MakeFmtArg(const void* v) {
  FmtArg a{FmtArg::Kind::kPointer, {}};
  a.u = reinterpret_cast<uintptr_t>(v);
  return a;
}
inline FmtArg MakeFmtArg(void* v) { return MakeFmtArg(static_cast<const void*>(v)); }

// Receives formatted text in pieces.
class Sink {
 public:
  virtual void Put(const char* data, size_t size) = 0;

 protected:
  ~Sink() = default;
};

void VFormat(Sink& sink, const char* fmt, const FmtArg* args, size_t arg_count);

template <typename... Args>
void FormatTo(Sink& sink, const char* fmt, Args... args) {
  if constexpr (sizeof...(Args) == 0) {
    VFormat(sink, fmt, nullptr, 0);
  } else {
    const FmtArg list[] = {MakeFmtArg(args)...};
    VFormat(sink, fmt, list, sizeof...(Args));
  }
}

// snprintf-like: always NUL-terminates when cap > 0; returns the length the
// full output would have (excluding the NUL).
size_t VFormatBuffer(char* buf, size_t cap, const char* fmt, const FmtArg* args, size_t arg_count);

template <typename... Args>
size_t FormatBuffer(char* buf, size_t cap, const char* fmt, Args... args) {
  if constexpr (sizeof...(Args) == 0) {
    return VFormatBuffer(buf, cap, fmt, nullptr, 0);
  } else {
    const FmtArg list[] = {MakeFmtArg(args)...};
    return VFormatBuffer(buf, cap, fmt, list, sizeof...(Args));
  }
}

}  // namespace lib
