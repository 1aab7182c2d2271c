// Names the x86 instruction at the start of a byte sequence, for the families
// a software KVM's instruction emulator cannot execute (docs/architecture.md, "The KVM on
// these machines"): x87, SSE/AVX/AVX-512, XSAVE family, CMPXCHG16B, CLAC/STAC,
// INT3. Used in the status-81 report so a user sees at once why the guest
// stopped. Not a disassembler: unknown bytes give "".
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace vmm {

std::string DescribeInstruction(std::span<const uint8_t> bytes);

// "0f c7 0e 90 ..." (at most `max` bytes).
std::string HexBytes(std::span<const uint8_t> bytes, size_t max = 15);

}  // namespace vmm
