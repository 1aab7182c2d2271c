#include "lib/format.h"

namespace lib {
namespace {

struct Spec {
  bool left = false;
  bool alt = false;
  char fill = ' ';
  unsigned width = 0;
  char type = 0;
};

void Pad(Sink& sink, char fill, size_t n) {
  static constexpr char kZeros[] = "0000000000000000";
  static constexpr char kSpaces[] = "                ";
  const char* src = fill == '0' ? kZeros : kSpaces;
  while (n > 0) {
    const size_t k = n < 16 ? n : 16;
    sink.Put(src, k);
    n -= k;
  }
}

void Emit(Sink& sink, const Spec& spec, const char* prefix, size_t prefix_len, const char* body,
          size_t len) {
  const size_t total = prefix_len + len;
  const size_t pad = spec.width > total ? spec.width - total : 0;
  if (spec.left) {
    sink.Put(prefix, prefix_len);
    sink.Put(body, len);
    Pad(sink, ' ', pad);
  } else if (spec.fill == '0') {
    sink.Put(prefix, prefix_len);
    Pad(sink, '0', pad);
    sink.Put(body, len);
  } else {
    Pad(sink, ' ', pad);
    sink.Put(prefix, prefix_len);
    sink.Put(body, len);
  }
}

void EmitUnsigned(Sink& sink, const Spec& spec, uint64_t v, bool negative, bool hex) {
  char digits[24];
  size_t n = 0;
  const char* hexdig = "0123456789abcdef";
  do {
    digits[sizeof(digits) - 1 - n] = hex ? hexdig[v & 15] : static_cast<char>('0' + v % 10);
    v = hex ? v >> 4 : v / 10;
    ++n;
  } while (v != 0);
  const char* prefix = negative ? "-" : (hex && spec.alt ? "0x" : "");
  size_t prefix_len = 0;
  while (prefix[prefix_len] != 0) ++prefix_len;
  Emit(sink, spec, prefix, prefix_len, digits + sizeof(digits) - n, n);
}

void EmitArg(Sink& sink, const Spec& spec, const FmtArg& arg) {
  switch (arg.kind) {
    case FmtArg::Kind::kString: {
      const char* s = arg.s != nullptr ? arg.s : "(null)";
      size_t n = 0;
      while (s[n] != 0) ++n;
      Emit(sink, spec, "", 0, s, n);
      return;
    }
    case FmtArg::Kind::kChar: {
      const char c = static_cast<char>(arg.u);
      Emit(sink, spec, "", 0, &c, 1);
      return;
    }
    case FmtArg::Kind::kBool:
      Emit(sink, spec, "", 0, arg.u ? "true" : "false", arg.u ? 4 : 5);
      return;
    case FmtArg::Kind::kPointer: {
      Spec p = spec;
      p.alt = true;
      EmitUnsigned(sink, p, arg.u, false, true);
      return;
    }
    case FmtArg::Kind::kSigned:
      if (spec.type == 'x') {
        EmitUnsigned(sink, spec, arg.u, false, true);
      } else if (spec.type == 'c') {
        const char c = static_cast<char>(arg.u);
        Emit(sink, spec, "", 0, &c, 1);
      } else if (arg.i < 0) {
        EmitUnsigned(sink, spec, 0 - arg.u, true, false);
      } else {
        EmitUnsigned(sink, spec, arg.u, false, false);
      }
      return;
    case FmtArg::Kind::kUnsigned:
      if (spec.type == 'c') {
        const char c = static_cast<char>(arg.u);
        Emit(sink, spec, "", 0, &c, 1);
      } else {
        EmitUnsigned(sink, spec, arg.u, false, spec.type == 'x');
      }
      return;
  }
}

class BufferSink final : public Sink {
 public:
  BufferSink(char* buf, size_t cap) : buf_(buf), cap_(cap) {}
  void Put(const char* data, size_t size) override {
    const size_t room = cap_ > len_ + 1 ? cap_ - len_ - 1 : 0;
    size_t n = size < room ? size : room;
    char* dst = buf_ + len_;
    asm volatile("rep movsb" : "+D"(dst), "+S"(data), "+c"(n) : : "memory");
    len_ += size;
  }
  size_t Finish() {
    if (cap_ > 0) buf_[len_ < cap_ ? len_ : cap_ - 1] = 0;
    return len_;
  }

 private:
  char* buf_;
  size_t cap_;
  size_t len_ = 0;
};

}  // namespace

// Under an emulating KVM every guest memory access costs microseconds while
// string instructions move many bytes per emulation step, so literal runs
// are found with `repne scasb` and handed on whole.
namespace {

size_t ScanLength(const char* s) {
  const char* p = s;
  uint64_t n = ~0ull;
  asm volatile("repne scasb" : "+D"(p), "+c"(n) : "a"(0) : "memory", "cc");
  return static_cast<size_t>(p - s) - 1;
}

// Offset of the first '{' in s[0..len), or len.
size_t FindBrace(const char* s, size_t len) {
  if (len == 0) return 0;
  const char* p = s;
  uint64_t n = len;
  asm volatile("repne scasb" : "+D"(p), "+c"(n) : "a"('{') : "memory", "cc");
  const size_t scanned = static_cast<size_t>(p - s);
  return p[-1] == '{' ? scanned - 1 : len;
}

}  // namespace

void VFormat(Sink& sink, const char* fmt, const FmtArg* args, size_t arg_count) {
  size_t next = 0;
  const char* p = fmt;
  size_t left = ScanLength(fmt);
  while (left > 0) {
    const size_t run = FindBrace(p, left);
    if (run > 0) sink.Put(p, run);
    p += run;
    left -= run;
    if (left == 0) break;
    // p[0] == '{'
    if (left > 1 && p[1] == '{') {
      sink.Put("{", 1);
      p += 2;
      left -= 2;
      continue;
    }
    const char* q = p + 1;
    Spec spec;
    if (*q == ':') {
      ++q;
      if (*q == '<') {
        spec.left = true;
        ++q;
      }
      if (*q == '#') {
        spec.alt = true;
        ++q;
      }
      if (*q == '0') {
        spec.fill = '0';
        ++q;
      }
      while (*q >= '0' && *q <= '9') {
        spec.width = spec.width * 10 + static_cast<unsigned>(*q - '0');
        ++q;
      }
      if (*q != '}' && *q != 0) {
        spec.type = *q;
        ++q;
      }
    }
    while (*q != '}' && *q != 0) ++q;  // tolerate unknown spec characters
    if (*q == '}') ++q;
    if (next < arg_count) {
      EmitArg(sink, spec, args[next++]);
    } else {
      sink.Put("{?}", 3);
    }
    left -= static_cast<size_t>(q - p);
    p = q;
  }
}

size_t VFormatBuffer(char* buf, size_t cap, const char* fmt, const FmtArg* args, size_t arg_count) {
  BufferSink sink(buf, cap);
  VFormat(sink, fmt, args, arg_count);
  return sink.Finish();
}

}  // namespace lib
