// A tiny encoder for the ACPI Machine Language (AML) that the DSDT carries
// (docs/acpi.md): just the terms vmm's DSDT needs, each returning its bytes
// so that terms nest by concatenation, as the ASL they come from nests.
//
// References: ACPI 6.5 §20.2 "AML Grammar Definition" (name strings, package
// lengths, data objects, the Scope, Device and Name terms, BufferOp) and
// §6.4 "Resource Data Types for ACPI" (the resource descriptors inside a
// ResourceTemplate buffer). Everything is little-endian, as ACPI requires.
//
// Each term that can be given a bad value (a name that is not a NameSeg
// path, a string with a byte AML strings cannot hold, an ISA IRQ above 15, a
// body too long for a PkgLength) returns base::Result and names the value.
// Pure functions: no state, any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace firmware::aml {

using Bytes = std::vector<uint8_t>;

// ACPI 6.5 §20.2.4: the largest package a 4-byte PkgLength can say (2^28 - 1).
inline constexpr uint64_t kMaxPkgLength = (uint64_t{1} << 28) - 1;

// PkgLength (§20.2.4) for a package whose contents after the PkgLength are
// `contents` bytes: the encoded length counts the PkgLength's own bytes.
[[nodiscard]] base::Result<Bytes> PkgLength(uint64_t contents);

// NameString (§20.2.2): an optional root prefix '\' and '^' parent prefixes,
// then NameSegs separated by '.'; a segment is 1-4 of [A-Z0-9_], not
// starting with a digit, padded with '_' to 4 ("_SB" -> "_SB_"). Two segments
// use DualNamePrefix, more use MultiNamePrefix. "\" alone is the root.
[[nodiscard]] base::Result<Bytes> NameString(std::string_view path);

// Integer data object (§20.2.3) in the shortest form: ZeroOp, OneOp, then
// Byte/Word/DWord/QWordConst.
Bytes Integer(uint64_t value);

// DWordConst always, whatever the value (for fields a reader expects 32 bits wide).
Bytes DWord(uint32_t value);

// String (§20.2.3): StringPrefix, the ASCII bytes 0x01-0x7f, NUL.
[[nodiscard]] base::Result<Bytes> String(std::string_view text);

// EISAID("PNP0501") (the ASL macro of ACPI 6.5 §19.6, a compressed EISA ID):
// three upper-case letters and four upper-case hex digits, as a DWordConst.
[[nodiscard]] base::Result<Bytes> EisaId(std::string_view id);

// DefName (§20.2.5.1): Name(name, value) where value is a data object.
[[nodiscard]] base::Result<Bytes> Name(std::string_view name, std::span<const uint8_t> value);

// DefScope (§20.2.5.1) and DefDevice (§20.2.5.2): Scope(name) { body },
// Device(name) { body }.
[[nodiscard]] base::Result<Bytes> Scope(std::string_view name, std::span<const uint8_t> body);
[[nodiscard]] base::Result<Bytes> Device(std::string_view name, std::span<const uint8_t> body);

// ResourceTemplate() { descriptors }: a DefBuffer (§20.2.5.4) holding the
// descriptors followed by an End Tag (§6.4.2.9) with checksum 0 ("treated
// as if the checksum operation succeeded"), as iasl writes it.
[[nodiscard]] base::Result<Bytes> ResourceTemplate(std::span<const uint8_t> descriptors);

// Resource descriptors (§6.4):
// IO(Decode16, min, max, alignment, length) — §6.4.2.5, small item 0x47.
Bytes Io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);
// IRQNoFlags() { irq } — §6.4.2.1, small item 0x22: an ISA IRQ 0-15,
// edge-triggered, active high, exclusive.
[[nodiscard]] base::Result<Bytes> IrqNoFlags(uint32_t irq);
// Memory32Fixed(ReadWrite|ReadOnly, base, length) — §6.4.3.4, large item 0x86.
Bytes Memory32Fixed(bool read_write, uint32_t base, uint32_t length);
// Interrupt(ResourceConsumer, Edge|Level, ActiveHigh|ActiveLow,
// Exclusive|Shared) { gsi } — §6.4.3.6, the Extended Interrupt Descriptor,
// large item 0x89, one interrupt number.
struct InterruptFlags {
  bool edge = true;         // false: level-triggered
  bool active_low = false;  // false: active high
  bool shared = false;      // false: exclusive
};
Bytes Interrupt(uint32_t gsi, InterruptFlags flags = {});

}  // namespace firmware::aml
