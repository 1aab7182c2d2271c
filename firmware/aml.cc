#include "firmware/aml.h"

#include <bit>

namespace firmware::aml {
namespace {

static_assert(std::endian::native == std::endian::little, "AML is little-endian; so is x86");

// ACPI 6.5 §20.3 "AML Byte Stream Byte Values".
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0a;
constexpr uint8_t kWordPrefix = 0x0b;
constexpr uint8_t kDWordPrefix = 0x0c;
constexpr uint8_t kStringPrefix = 0x0d;
constexpr uint8_t kQWordPrefix = 0x0e;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kDualNamePrefix = 0x2e;
constexpr uint8_t kMultiNamePrefix = 0x2f;
constexpr uint8_t kExtOpPrefix = 0x5b;
constexpr uint8_t kDeviceOp = 0x82;  // after kExtOpPrefix
constexpr uint8_t kRootChar = '\\';
constexpr uint8_t kParentPrefixChar = '^';

// ACPI 6.5 §6.4 resource descriptor tags.
constexpr uint8_t kSmallIrqNoFlags = 0x22;  // IRQ descriptor, type 0x04, length 2
constexpr uint8_t kSmallIo = 0x47;          // I/O port descriptor, type 0x08, length 7
constexpr uint8_t kSmallEndTag = 0x79;      // End Tag, type 0x0f, length 1
constexpr uint8_t kLargeMemory32Fixed = 0x86;
constexpr uint8_t kLargeExtendedIrq = 0x89;

template <typename T>
void Put(Bytes& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) {
    out.push_back(static_cast<uint8_t>(static_cast<uint64_t>(value) >> (8 * i)));
  }
}

void Append(Bytes& out, std::span<const uint8_t> bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

bool IsLeadNameChar(char c) { return (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsLeadNameChar(c) || (c >= '0' && c <= '9'); }

// An opcode (one or two bytes), a PkgLength over the rest, the rest.
base::Result<Bytes> Package(std::span<const uint8_t> opcode, std::span<const uint8_t> contents) {
  Bytes out(opcode.begin(), opcode.end());
  Append(out, TRY(PkgLength(contents.size())));
  Append(out, contents);
  return out;
}

}  // namespace

base::Result<Bytes> PkgLength(uint64_t contents) {
  // ACPI 6.5 §20.2.4: one byte holds lengths up to 63 (bits 5:0); with n
  // follow bytes (n = 1..3, count in bits 7:6) the lead byte's bits 3:0 are
  // the low nibble and each follow byte 8 more bits.
  if (contents > kMaxPkgLength - 4) {
    return base::MakeError(base::ErrorKind::kInternal,
                           "AML package of {} bytes is longer than a PkgLength can say ({} bytes)",
                           contents, kMaxPkgLength);
  }
  for (uint64_t n = 1; n <= 4; ++n) {
    const uint64_t total = contents + n;
    const uint64_t limit = n == 1 ? 0x40 : uint64_t{1} << (4 + 8 * (n - 1));
    if (total >= limit) continue;
    if (n == 1) return Bytes{static_cast<uint8_t>(total)};
    Bytes out{static_cast<uint8_t>(((n - 1) << 6) | (total & 0x0f))};
    for (uint64_t i = 1; i < n; ++i)
      out.push_back(static_cast<uint8_t>(total >> (4 + 8 * (i - 1))));
    return out;
  }
  return base::MakeError(base::ErrorKind::kInternal, "AML PkgLength for {} bytes", contents);
}

base::Result<Bytes> NameString(std::string_view path) {
  Bytes out;
  std::string_view rest = path;
  if (!rest.empty() && rest.front() == kRootChar) {
    out.push_back(kRootChar);
    rest.remove_prefix(1);
  } else {
    while (!rest.empty() && rest.front() == kParentPrefixChar) {
      out.push_back(kParentPrefixChar);
      rest.remove_prefix(1);
    }
  }
  if (rest.empty()) {
    if (out.empty() || out.front() != kRootChar) {
      return base::MakeError(base::ErrorKind::kInternal, "AML name \"{}\" has no name segment",
                             path);
    }
    out.push_back(kZeroOp);  // NullName: "\" is the root itself
    return out;
  }
  Bytes segments;
  size_t count = 0;
  while (true) {
    const size_t dot = rest.find('.');
    const std::string_view segment = rest.substr(0, dot);
    if (segment.empty() || segment.size() > 4 || !IsLeadNameChar(segment.front())) {
      return base::MakeError(base::ErrorKind::kInternal,
                             "AML name \"{}\": segment \"{}\" is not 1-4 of [A-Z0-9_] starting "
                             "with a letter or '_'",
                             path, segment);
    }
    for (char c : segment) {
      if (!IsNameChar(c)) {
        return base::MakeError(base::ErrorKind::kInternal,
                               "AML name \"{}\": segment \"{}\" holds '{}', not one of [A-Z0-9_]",
                               path, segment, c);
      }
      segments.push_back(static_cast<uint8_t>(c));
    }
    for (size_t i = segment.size(); i < 4; ++i) segments.push_back('_');
    ++count;
    if (dot == std::string_view::npos) break;
    rest.remove_prefix(dot + 1);
  }
  if (count > 255) {
    return base::MakeError(base::ErrorKind::kInternal, "AML name \"{}\" has {} segments (max 255)",
                           path, count);
  }
  if (count == 2) {
    out.push_back(kDualNamePrefix);
  } else if (count > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(count));
  }
  Append(out, segments);
  return out;
}

Bytes Integer(uint64_t value) {
  Bytes out;
  if (value == 0) {
    out.push_back(kZeroOp);
  } else if (value == 1) {
    out.push_back(kOneOp);
  } else if (value <= 0xff) {
    out.push_back(kBytePrefix);
    Put(out, static_cast<uint8_t>(value));
  } else if (value <= 0xffff) {
    out.push_back(kWordPrefix);
    Put(out, static_cast<uint16_t>(value));
  } else if (value <= 0xffffffff) {
    out.push_back(kDWordPrefix);
    Put(out, static_cast<uint32_t>(value));
  } else {
    out.push_back(kQWordPrefix);
    Put(out, value);
  }
  return out;
}

Bytes DWord(uint32_t value) {
  Bytes out{kDWordPrefix};
  Put(out, value);
  return out;
}

base::Result<Bytes> String(std::string_view text) {
  Bytes out{kStringPrefix};
  for (char c : text) {
    const auto byte = static_cast<uint8_t>(c);
    if (byte == 0 || byte > 0x7f) {
      return base::MakeError(
          base::ErrorKind::kInternal,
          "AML string \"{}\" holds byte {:#04x}: AML strings are ASCII 0x01-0x7f", text, byte);
    }
    out.push_back(byte);
  }
  out.push_back(0);
  return out;
}

base::Result<Bytes> EisaId(std::string_view id) {
  auto bad = [&] {
    return base::MakeError(base::ErrorKind::kInternal,
                           "EISA ID \"{}\" is not three letters A-Z and four hex digits 0-9A-F",
                           id);
  };
  if (id.size() != 7) return bad();
  uint32_t value = 0;
  for (size_t i = 0; i < 3; ++i) {
    if (id[i] < 'A' || id[i] > 'Z') return bad();
    value = (value << 5) | static_cast<uint32_t>(id[i] - 'A' + 1);  // 'A' is 1
  }
  for (size_t i = 3; i < 7; ++i) {
    const char c = id[i];
    uint32_t digit = 0;
    if (c >= '0' && c <= '9') {
      digit = static_cast<uint32_t>(c - '0');
    } else if (c >= 'A' && c <= 'F') {
      digit = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return bad();
    }
    value = (value << 4) | digit;
  }
  // The 32-bit ID is stored most significant byte first (the vendor letters
  // lead in memory), so the DWordConst holds it byte-swapped.
  return DWord(std::byteswap(value));
}

base::Result<Bytes> Name(std::string_view name, std::span<const uint8_t> value) {
  Bytes out{kNameOp};
  Append(out, TRY(NameString(name)));
  Append(out, value);
  return out;
}

base::Result<Bytes> Scope(std::string_view name, std::span<const uint8_t> body) {
  Bytes contents = TRY(NameString(name));
  Append(contents, body);
  const uint8_t op[] = {kScopeOp};
  return Package(op, contents);
}

base::Result<Bytes> Device(std::string_view name, std::span<const uint8_t> body) {
  Bytes contents = TRY(NameString(name));
  Append(contents, body);
  const uint8_t op[] = {kExtOpPrefix, kDeviceOp};
  return Package(op, contents);
}

base::Result<Bytes> ResourceTemplate(std::span<const uint8_t> descriptors) {
  Bytes data(descriptors.begin(), descriptors.end());
  data.push_back(kSmallEndTag);
  data.push_back(0);                      // checksum 0: treated as valid (§6.4.2.9)
  Bytes contents = Integer(data.size());  // BufferSize
  Append(contents, data);
  const uint8_t op[] = {kBufferOp};
  return Package(op, contents);
}

Bytes Io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
  Bytes out{kSmallIo, 0x01};  // information: bit 0 set = decodes 16 address bits
  Put(out, min);
  Put(out, max);
  Put(out, alignment);
  Put(out, length);
  return out;
}

base::Result<Bytes> IrqNoFlags(uint32_t irq) {
  if (irq > 15) {
    return base::MakeError(base::ErrorKind::kInternal,
                           "IRQ descriptor for IRQ {}: an ISA IRQ is 0-15", irq);
  }
  Bytes out{kSmallIrqNoFlags};
  Put(out, static_cast<uint16_t>(1u << irq));  // mask of IRQ lines
  return out;
}

Bytes Memory32Fixed(bool read_write, uint32_t base, uint32_t length) {
  Bytes out{kLargeMemory32Fixed};
  Put(out, uint16_t{9});  // length of the data that follows
  out.push_back(read_write ? 1 : 0);
  Put(out, base);
  Put(out, length);
  return out;
}

Bytes Interrupt(uint32_t gsi, InterruptFlags flags) {
  Bytes out{kLargeExtendedIrq};
  Put(out, uint16_t{6});  // flags, table length, one 32-bit interrupt number
  // §6.4.3.6 byte 3: bit 0 consumer, bit 1 edge (1) / level (0), bit 2
  // active low, bit 3 shared, bit 4 wake capable (no).
  uint8_t bits = 0x01;
  if (flags.edge) bits |= 0x02;
  if (flags.active_low) bits |= 0x04;
  if (flags.shared) bits |= 0x08;
  out.push_back(bits);
  out.push_back(1);  // interrupt table length
  Put(out, gsi);
  return out;
}

}  // namespace firmware::aml
