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
  char buf[16];
  for (size_t i = 0; i < sizeof(buf); ++i) buf[i] = fill;
  while (n > 0) {
    const size_t k = n < sizeof(buf) ? n : sizeof(buf);
    sink.Put(buf, k);
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
    for (size_t i = 0; i < size; ++i) {
      if (cap_ > 0 && len_ + 1 < cap_) buf_[len_] = data[i];
      ++len_;
    }
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

void VFormat(Sink& sink, const char* fmt, const FmtArg* args, size_t arg_count) {
  size_t next = 0;
  const char* run = fmt;
  const char* p = fmt;
  while (*p != 0) {
    if (*p == '}' && p[1] == '}') {
      sink.Put(run, static_cast<size_t>(p - run) + 1);
      p += 2;
      run = p;
      continue;
    }
    if (*p != '{') {
      ++p;
      continue;
    }
    sink.Put(run, static_cast<size_t>(p - run));
    if (p[1] == '{') {
      sink.Put("{", 1);
      p += 2;
      run = p;
      continue;
    }
    ++p;
    Spec spec;
    if (*p == ':') {
      ++p;
      if (*p == '<') { spec.left = true; ++p; }
      if (*p == '#') { spec.alt = true; ++p; }
      if (*p == '0') { spec.fill = '0'; ++p; }
      while (*p >= '0' && *p <= '9') { spec.width = spec.width * 10 + static_cast<unsigned>(*p - '0'); ++p; }
      if (*p != '}' && *p != 0) { spec.type = *p; ++p; }
    }
    while (*p != '}' && *p != 0) ++p;  // tolerate unknown spec characters
    if (*p == '}') ++p;
    if (next < arg_count) {
      EmitArg(sink, spec, args[next++]);
    } else {
      sink.Put("{?}", 3);
    }
    run = p;
  }
  sink.Put(run, static_cast<size_t>(p - run));
}

size_t VFormatBuffer(char* buf, size_t cap, const char* fmt, const FmtArg* args, size_t arg_count) {
  BufferSink sink(buf, cap);
  VFormat(sink, fmt, args, arg_count);
  return sink.Finish();
}

}  // namespace lib
