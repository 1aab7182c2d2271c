#include "vmm/insn_name.h"

#include <fmt/format.h>

namespace vmm {

std::string HexBytes(std::span<const uint8_t> bytes, size_t max) {
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < max; ++i) {
    if (i) out += ' ';
    out += fmt::format("{:02x}", bytes[i]);
  }
  return out;
}

std::string DescribeInstruction(std::span<const uint8_t> bytes) {
  // Skip legacy prefixes (Intel SDM Vol. 2A §2.1.1) and remember REX.W and
  // the mandatory-prefix bytes 66/F2/F3.
  size_t i = 0;
  bool rex_w = false;
  uint8_t mandatory = 0;
  while (i < bytes.size()) {
    uint8_t b = bytes[i];
    if (b == 0x66 || b == 0xf2 || b == 0xf3) {
      mandatory = b;
    } else if (b == 0xf0 || b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 ||
               b == 0x65 || b == 0x67) {
      // lock, segment, address-size
    } else {
      break;
    }
    ++i;
  }
  if (i < bytes.size() && (bytes[i] & 0xf0) == 0x40) {  // REX
    rex_w = (bytes[i] & 0x08) != 0;
    ++i;
  }
  if (i >= bytes.size()) return "";
  const uint8_t op = bytes[i];
  auto at = [&](size_t k) -> int { return i + k < bytes.size() ? bytes[i + k] : -1; };
  auto modrm_reg = [&](size_t k) -> int { return at(k) < 0 ? -1 : (at(k) >> 3) & 7; };

  if (op == 0xcc) return "int3";
  if (op == 0xc4 || op == 0xc5) return "AVX (VEX-encoded) instruction";
  if (op == 0x62) return "AVX-512 (EVEX-encoded) instruction";
  if (op == 0x9b && at(1) == 0xdb && at(2) == 0xe3) return "finit (x87)";
  if (op == 0xdb && at(1) == 0xe3) return "fninit (x87)";
  if (op == 0xdb && at(1) == 0xe2) return "fnclex (x87)";
  if (op >= 0xd8 && op <= 0xdf) return "x87 floating-point instruction";
  if (op != 0x0f) return "";
  const int op2 = at(1);
  switch (op2) {
    case 0x77:
      return "emms (MMX)";
    case 0x0b:
      return "ud2";
    case 0xae: {
      int reg = modrm_reg(2);
      bool mem = at(2) >= 0 && (at(2) >> 6) != 3;
      if (!mem) return (reg == 5 || reg == 6 || reg == 7) ? "fence (lfence/mfence/sfence)" : "";
      static const char* const kNames[] = {"fxsave", "fxrstor", "ldmxcsr",  "stmxcsr",
                                           "xsave",  "xrstor",  "xsaveopt", "clflush"};
      return std::string(kNames[reg & 7]) + (rex_w && reg <= 1 ? "64" : "");
    }
    case 0xc7:
      if (modrm_reg(2) == 1) return rex_w ? "cmpxchg16b" : "cmpxchg8b";
      if (modrm_reg(2) == 6) return "rdrand";
      if (modrm_reg(2) == 7) return "rdseed";
      return "";
    case 0x01:
      if (at(2) == 0xca) return "clac";
      if (at(2) == 0xcb) return "stac";
      if (at(2) == 0xd0) return "xgetbv";
      if (at(2) == 0xd1) return "xsetbv";
      if (at(2) == 0xf9) return "rdtscp";
      return "";
    case 0x38:
    case 0x3a:
      return mandatory == 0x66 ? "SSE4/AES instruction" : "SSSE3/SSE4 instruction";
    default:
      break;
  }
  if (op2 >= 0x10 && op2 <= 0x17) return "SSE move instruction";
  if (op2 >= 0x28 && op2 <= 0x2f) return "SSE instruction";
  if (op2 >= 0x50 && op2 <= 0x7f) return "SSE/MMX instruction";
  if (op2 >= 0xc2 && op2 <= 0xc6) return "SSE instruction";
  if (op2 >= 0xd0 && op2 <= 0xff) return "SSE/MMX instruction";
  return "";
}

}  // namespace vmm
