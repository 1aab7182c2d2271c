// ACPI tables for vmm's machine (docs/acpi.md): what a PC BIOS would leave
// in memory for an ACPI operating system, so that a boot protocol can hand
// the guest an RSDP (Linux boot_params.acpi_rsdp_addr, PVH
// start_info.rsdp_paddr, multiboot2's ACPI tags, Limine's RSDP request).
//
// The tables, at base::kAcpiTables in this order, each 16-byte aligned:
//   RSDP  revision 2: both checksums, the RSDT and XSDT addresses
//   RSDT, XSDT  the FADT and the MADT
//   FADT  revision 6 (ACPI 6.3 layout, 276 bytes), HW_REDUCED_ACPI: vmm has
//         none of ACPI's fixed hardware (no PM1 event/control blocks, no PM
//         timer, no GPE blocks, no SCI), so a full FADT would describe
//         registers that do not exist. No FACS (allowed when hardware-
//         reduced), DSDT and X_DSDT both set. RESET_REG is the i8042's
//         0xfe to port 0x64; IAPC_BOOT_ARCH says legacy devices (COM1) and
//         an 8042 exist, VGA and MSI do not; CENTURY is CMOS index 0x32.
//   MADT  revision 5: the local APIC address, PCAT_COMPAT (there is an
//         8259 pair), one enabled Processor Local APIC per vCPU (UID = APIC
//         ID = index), the IOAPIC, an Interrupt Source Override for each ISA
//         IRQ the MP table routes to another pin (none today: IRQ n is pin
//         n), and one Local APIC NMI on LINT1 for all processors.
//   DSDT  revision 2, AML from firmware/aml.h: \_SB.COM1 (PNP0501, IO
//         0x3f8-0x3ff, IRQ 4) and one \_SB.Vnnn (LNRO0005, Memory32Fixed +
//         Interrupt) per virtio-mmio device.
// Every interrupt fact is the MP table's own (firmware/mptable.h), so the
// two descriptions cannot disagree.
//
// firmware::LoadKernel writes them unless BootConfig::acpi is off (--acpi
// off) and hands the RSDP to the guest (docs/boot-protocols.md).
// Pure functions of their arguments; any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/guest_memory.h"
#include "base/layout.h"

namespace firmware {

// The RSDP's size at revision 2 (ACPI 6.5 §5.2.5.3); its first 20 bytes are
// the revision 0 structure.
inline constexpr size_t kAcpiRsdpBytes = 36;

// One virtio-mmio device as the device manager placed it.
struct AcpiVirtioMmio {
  uint64_t base = 0;  // first byte of its register window, below 4 GiB
  uint64_t size = 0;  // bytes, non-zero
  uint32_t irq = 0;   // its IOAPIC input (GSI), edge-triggered, active high
};

// What the tables describe. The COM1, i8042, CMOS and interrupt-controller
// facts are fixed (base/layout.h, firmware/mptable.h); the vCPU count and
// the virtio devices are the configuration's.
struct AcpiMachine {
  uint32_t cpus = 1;  // 1..base::kMaxCpus
  std::vector<AcpiVirtioMmio> virtio_mmio;
};

// One table as written: its signature ("RSD PTR " for the RSDP), its guest
// address and its bytes.
struct AcpiTable {
  std::string signature;
  uint64_t address = 0;
  std::vector<uint8_t> bytes;
};

// All tables, in memory order (RSDP, RSDT, XSDT, FACP, APIC, DSDT).
struct AcpiTables {
  uint64_t rsdp_address = 0;
  std::vector<AcpiTable> tables;
  // Bytes from base::kAcpiTables to the end of the last table.
  uint64_t used = 0;
};

// Builds the tables for `machine` without writing them. kConfig when the vCPU
// count is outside 1..kMaxCpus, a virtio device has no size, does not fit
// below 4 GiB, overlaps another, has an IRQ that is not an IOAPIC input or
// that another device (the PIT, the i8042, the 8259 cascade, COM1, another
// virtio device) already uses — so at most 20 devices, GSIs 3 and 5-23 — or
// when the tables do not fit in base::kAcpiTablesSize (they cannot: the
// largest machine needs about 4 KiB, tests/unit/firmware/acpi_test.cc).
[[nodiscard]] base::Result<AcpiTables> BuildAcpiTables(const AcpiMachine& machine);

// Builds the tables and writes them to guest memory at base::kAcpiTables
// (zeroing the rest of the region); returns the RSDP's guest-physical
// address, the value every boot protocol hands over.
[[nodiscard]] base::Result<uint64_t> WriteAcpiTables(const base::GuestMemory& memory,
                                                     const AcpiMachine& machine);

}  // namespace firmware
