// The machine's layout in one place: every guest-physical address, port and
// IRQ line vmm gives the guest (docs/architecture.md, "Machine layout").
// Low-memory boot structures follow Firecracker and Cloud Hypervisor
// (arch/x86_64/layout.rs), so guests built for them find things where they
// expect. Nothing else in the tree spells one of these numbers.
#pragma once

#include <cstdint>

namespace base {

inline constexpr uint64_t KiB = 1024;
inline constexpr uint64_t MiB = 1024 * KiB;
inline constexpr uint64_t GiB = 1024 * MiB;

// The most vCPUs a VM may have, for every layer (config, MP table, suite).
// The MP table (MP spec 1.4) and the xAPIC give each CPU an 8-bit APIC ID:
// the CPUs take IDs 0..cpus-1, the IOAPIC the ID after them, and 0xff is the
// broadcast ID, so 254 CPUs (IDs 0..253, IOAPIC 254) is the ceiling; the
// ACPI MADT (firmware/acpi.h) keeps it. More would need x2APIC and the
// MADT's x2APIC entries, which vmm does not build.
inline constexpr uint32_t kMaxCpus = 254;

// 32-bit MMIO hole below 4 GiB (as Firecracker's MMIO32 gap): RAM runs from 0
// to min(size, kMmioHoleStart) and resumes at kMmioHoleEnd.
inline constexpr uint64_t kMmioHoleStart = 3 * GiB;
inline constexpr uint64_t kMmioHoleEnd = 4 * GiB;

inline constexpr uint64_t kGdtAddress = 0x500;     // boot GDT
inline constexpr uint64_t kIdtAddress = 0x520;     // empty boot IDT (limit 0)
inline constexpr uint64_t kPvhStartInfo = 0x6000;  // hvm_start_info + memmap
inline constexpr uint64_t kZeroPage = 0x7000;      // Linux boot_params (4 KiB)
inline constexpr uint64_t kBootStackTop = 0x8ff0;  // initial RSP
inline constexpr uint64_t kPageTables = 0x9000;    // PML4, then PDPT, then PDs
inline constexpr uint64_t kCmdline = 0x20000;      // kernel command line
inline constexpr uint64_t kCmdlineMax = 0x10000;   // 64 KiB incl. NUL
inline constexpr uint64_t kEbdaStart = 0x9fc00;    // e820: RAM ends here in low memory
inline constexpr uint64_t kHighMemory = 0x100000;  // 1 MiB: RAM resumes here
// ACPI tables (firmware/acpi.h, docs/acpi.md): the RSDP at the start, then
// RSDT, XSDT, FADT, MADT, DSDT. The BIOS read-only area 0xe0000-0xfffff,
// where ACPI 6.5 §5.2.5.1 has an OS search for the RSDP when no boot
// protocol hands it over; inside e820's reserved [kEbdaStart, kHighMemory),
// above the MP table at kEbdaStart (at most 5300 bytes, 254 CPUs), and no
// loader may place anything there (firmware/elf.cc, multiboot.cc).
inline constexpr uint64_t kAcpiTables = 0xe0000;
inline constexpr uint64_t kAcpiTablesSize = 0x20000;  // 128 KiB, up to kHighMemory
// Everything below kBootStructuresEnd belongs to the boot structures above;
// a kernel image may not load there.
inline constexpr uint64_t kBootStructuresEnd = kCmdline + kCmdlineMax;

// Devices: COM1, i8042, CMOS, exit port, boot-phase port, virtio-mmio.
inline constexpr uint16_t kCom1Port = 0x3f8;  // 16550A, PC/AT I/O map
inline constexpr uint32_t kCom1Irq = 4;
inline constexpr uint16_t kI8042DataPort = 0x60;
inline constexpr uint16_t kI8042CommandPort = 0x64;
inline constexpr uint32_t kI8042Irq = 1;          // keyboard, PC/AT IRQ 1
inline constexpr uint16_t kCmosPort = 0x70;       // index 0x70, data 0x71
inline constexpr uint16_t kExitPort = 0xf4;       // isa-debug-exit's place, 4 bytes
inline constexpr uint16_t kBootPhasePort = 0x80;  // POST code port
inline constexpr uint16_t kDebugconPort = 0xe9;   // Bochs/QEMU debug console, 1 byte
inline constexpr uint64_t kVirtioMmioBase = 0xd0000000;
inline constexpr uint64_t kVirtioMmioStride = 0x1000;
inline constexpr uint32_t kVirtioMmioFirstIrq = 5;
// The linear framebuffer (docs/framebuffer.md): 32-bit XRGB, in the MMIO hole
// above the virtio-mmio windows and below the IOAPIC, at most 256 MiB.
inline constexpr uint64_t kFramebufferBase = 0xe0000000;
inline constexpr uint64_t kFramebufferMaxBytes = 256 * MiB;
inline constexpr uint32_t kFramebufferMaxSide = 8192;
inline constexpr uint32_t kFramebufferDefaultWidth = 1024, kFramebufferDefaultHeight = 768;

// Boot-phase codes the bundled kernel writes to kBootPhasePort.
inline constexpr uint8_t kPhaseKernelEntry = 0x40;
inline constexpr uint8_t kPhaseUserSpaceReady = 0x41;

}  // namespace base
