// vmm's x86-64 target description for gdb and the register packets built
// on it (docs/gdb.md, "Registers"). The description names every register
// gdb's amd64 support needs (org.gnu.gdb.i386.core, with the x87 state),
// fs_base and gs_base (org.gnu.gdb.i386.segments), and the system
// registers (k_gs_base, cr0, cr2, cr3, cr4, cr8, efer), so `info registers`
// shows CR3 and EFER as it does under QEMU.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "vmm/gdb/target.h"

namespace vmm::gdb {

// The target description gdb reads with qXfer:features:read:target.xml.
std::string_view TargetXml();

// Registers in the description, numbered as in the `p`/`P` packets.
inline constexpr size_t kRegisterCount = 49;
// Size of register `n` in bytes; 0 for a number past the last.
size_t RegisterSize(size_t n);

// The `g` reply: every register, little-endian, in hex.
std::string EncodeRegisters(const X86Registers& regs);
// A `G` packet's data into `regs`; false when the length or a digit is wrong
// (then `regs` is unchanged).
bool DecodeRegisters(std::string_view hex, X86Registers& regs);
// One register for `p`; nullopt for a number past the last.
std::optional<std::string> EncodeRegister(const X86Registers& regs, size_t n);
// One register from `P`; false for a bad number, length or digit.
bool DecodeRegister(X86Registers& regs, size_t n, std::string_view hex);

}  // namespace vmm::gdb
