// An Intel MultiProcessor Specification 1.4 table (MP floating pointer and
// MP configuration table), which is how Linux finds the CPUs, the IOAPIC and
// the ISA interrupt routing on a machine without ACPI (arch/x86/kernel/
// mpparse.c). Placed at the start of the EBDA, inside the first KiB of the
// last KiB of base memory that MP spec §4 tells the OS to scan, as Firecracker
// and kvmtool do.
#pragma once

#include <cstdint>

#include "base/error.h"
#include "base/guest_memory.h"
#include "base/layout.h"

namespace firmware {

inline constexpr uint64_t kMpTableAddress = base::kEbdaStart;  // 0x9fc00, reserved in e820
inline constexpr uint32_t kLapicAddress = 0xfee00000;          // Intel SDM Vol. 3A §11.4.1
inline constexpr uint32_t kIoapicAddress = 0xfec00000;         // 82093AA datasheet, default base
// APIC IDs are 8 bits and 0xff is broadcast; the IOAPIC takes the ID after
// the CPUs (base/layout.h).
inline constexpr uint32_t kMaxMpCpus = base::kMaxCpus;

// The interrupt facts the MP table states, shared with the ACPI MADT
// (firmware/acpi.h) so that both describe one machine:
// the IOAPIC's ID is the one after the CPUs' (0..cpus-1);
inline constexpr uint8_t IoapicId(uint32_t cpus) { return static_cast<uint8_t>(cpus); }
// its first input is GSI 0 and it has 24 inputs (82093AA; KVM's in-kernel
// IOAPIC, KVM_IOAPIC_NUM_PINS);
inline constexpr uint32_t kIoapicGsiBase = 0;
inline constexpr uint32_t kIoapicPins = 24;
// ISA IRQ n (0-15) reaches IOAPIC pin n, polarity and trigger those of the
// ISA bus (edge, active high): KVM's default GSI routing
// (kvm_setup_default_irq_routing) that vmm keeps, so no IRQ is redirected.
inline constexpr uint32_t kIsaIrqs = 16;
inline constexpr uint32_t IsaIrqToIoapicPin(uint32_t irq) { return irq; }
// LINT1 of every local APIC is the NMI input, LINT0 the 8259's ExtINT.
inline constexpr uint8_t kNmiLint = 1;

// Entry types (MP spec 1.4 Table 4-3) and sizes.
inline constexpr uint8_t kMpProcessor = 0;       // 20 bytes
inline constexpr uint8_t kMpBus = 1;             // 8 bytes
inline constexpr uint8_t kMpIoapic = 2;          // 8 bytes
inline constexpr uint8_t kMpIoInterrupt = 3;     // 8 bytes
inline constexpr uint8_t kMpLocalInterrupt = 4;  // 8 bytes

// Bytes WriteMpTable writes from kMpTableAddress for `cpus` CPUs.
uint64_t MpTableSize(uint32_t cpus);

// Writes the floating pointer at kMpTableAddress and the configuration table
// right after it: one processor entry per CPU (APIC IDs 0..cpus-1, CPU 0 the
// bootstrap processor), bus 0 "ISA", the IOAPIC (IoapicId(cpus), version
// 0x11, kIoapicAddress), an I/O interrupt entry per ISA IRQ 0-15 to pin
// IsaIrqToIoapicPin(irq), LINT0 ExtINT and LINT1 (kNmiLint) NMI. kConfig when cpus is 0 or above
// kMaxMpCpus.
[[nodiscard]] base::Result<void> WriteMpTable(const base::GuestMemory& memory, uint32_t cpus);

}  // namespace firmware
