// The CPU state a BIOS-less boot starts in: identity page tables, a boot GDT
// and an empty IDT in guest memory, and the matching CpuBootState for the
// two entry modes the boot protocols use.
#pragma once

#include <cstdint>
#include <span>

#include "base/error.h"
#include "base/guest_memory.h"
#include "base/layout.h"
#include "firmware/boot.h"

namespace firmware {

// Page-table pages at kPageTables: PML4, PDPT, then four page directories of
// 2 MiB pages identity-mapping [0, 4 GiB) (Intel SDM Vol. 3A §4.5 "4-Level
// Paging"). 4 GiB covers the low RAM and the MMIO hole (LAPIC, IOAPIC,
// virtio-mmio); a kernel that wants RAM above 4 GiB maps it itself, as Linux
// does.
inline constexpr uint64_t kPml4Address = base::kPageTables;
inline constexpr uint64_t kPdptAddress = base::kPageTables + 0x1000;
inline constexpr uint64_t kPageDirectoriesAddress = base::kPageTables + 0x2000;
inline constexpr uint64_t kIdentityMappedBytes = 4 * base::GiB;
inline constexpr uint64_t kPageTablesEnd = kPageDirectoriesAddress + 4 * 0x1000;
static_assert(kPageTablesEnd <= base::kCmdline, "page tables run into the command line");

// Selectors of the boot GDT. Linux's boot protocol (Documentation/arch/x86/
// boot.rst, "64-bit Boot Protocol" and "32-bit Boot Protocol") names
// __BOOT_CS = 0x10 and __BOOT_DS = 0x18; entries 0 and 1 are null.
inline constexpr uint16_t kBootCodeSelector = 0x10;
inline constexpr uint16_t kBootDataSelector = 0x18;
inline constexpr uint16_t kBootGdtEntries = 4;  // 0x500..0x51f, the IDT follows at 0x520

// Control-register and EFER bits (Intel SDM Vol. 3A §2.5, §2.2.1).
inline constexpr uint64_t kCr0Pe = 1ull << 0;
inline constexpr uint64_t kCr0Mp = 1ull << 1;
inline constexpr uint64_t kCr0Et = 1ull << 4;
inline constexpr uint64_t kCr0Ne = 1ull << 5;
inline constexpr uint64_t kCr0Wp = 1ull << 16;
inline constexpr uint64_t kCr0Pg = 1ull << 31;
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferLma = 1ull << 10;
inline constexpr uint64_t kEferNxe = 1ull << 11;

// A GDT descriptor from base, limit (20 bits) and the flag/access bits laid
// out as in Firecracker's gdt_entry: bits 0-7 access byte, bits 12-15 flags
// (G, D/B, L, AVL). Intel SDM Vol. 3A §3.4.5 "Segment Descriptors".
constexpr uint64_t GdtEntry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t{base} & 0xff000000u) << 32) | ((uint64_t{flags} & 0xf0ffu) << 40) |
         ((uint64_t{limit} & 0x000f0000u) << 32) | ((uint64_t{base} & 0x00ffffffu) << 16) |
         (uint64_t{limit} & 0x0000ffffu);
}

// Access/flag words for GdtEntry.
inline constexpr uint16_t kCode64Flags = 0xa09b;  // G, L; P, DPL 0, S, execute/read accessed
inline constexpr uint16_t kCode32Flags = 0xc09b;  // G, D; P, DPL 0, S, execute/read accessed
inline constexpr uint16_t kDataFlags = 0xc093;    // G, B; P, DPL 0, S, read/write accessed

// The kvm_segment view of a descriptor (limit scaled by G, as the CPU
// caches it).
SegmentState SegmentFromDescriptor(uint16_t selector, uint64_t descriptor);

// The long-mode entry state of the loaders that build their own GDT and page
// tables (Limine, BOOTBOOT): CS/DS.. from `gdt`'s descriptors at
// `code_selector`/`data_selector` (GDTR = `gdt_address`, the table's size),
// IDTR base 0 limit 0, TR a busy TSS with base 0 and limit 0 (VM entry needs
// a usable TR), LDTR null, RFLAGS 0x2, CR0 = PE|ET|WP|PG, CR4 = PAE,
// EFER = LME|LMA|NXE, CR3 = `cr3`. RIP, RSP and extra bits are the caller's.
CpuBootState LongModeEntryState(std::span<const uint64_t> gdt, uint64_t gdt_address,
                                uint16_t code_selector, uint16_t data_selector, uint64_t cr3);

// Writes the identity page tables (described above).
[[nodiscard]] base::Result<void> WriteIdentityPageTables(const base::GuestMemory& memory);

// 64-bit long mode, paging on (CR3 = kPml4Address), CS = 64-bit code at
// 0x10, data segments 0x18, RSP = kBootStackTop, RIP = entry, IF clear.
// Writes the page tables, the GDT and an empty IDT.
[[nodiscard]] base::Result<CpuBootState> SetUpLongMode(const base::GuestMemory& memory,
                                                       uint64_t entry);

// Where SetUpProtectedMode puts the GDT (kBootGdtEntries descriptors), the
// empty IDT (8 bytes) and the initial stack. The fixed layout is base/layout.h's;
// a kernel loaded over it (docs/boot-protocols.md, "Kernels that load low")
// gets them in free memory instead.
struct ProtectedModeLayout {
  uint64_t gdt = base::kGdtAddress;
  uint64_t idt = base::kIdtAddress;
  uint64_t stack_top = base::kBootStackTop;
};
// Bytes a relocated layout needs: GDT and IDT in the first 64 bytes, then a
// 4 KiB page of stack (RelocatedProtectedModeLayout).
inline constexpr uint64_t kRelocatedBootBlock = 2 * 4096;
ProtectedModeLayout RelocatedProtectedModeLayout(uint64_t block);

// 32-bit protected mode, paging off, flat 4 GiB code at 0x10 and data at
// 0x18 (as the PVH and multiboot specs ask), RIP = entry, IF clear. Writes
// the GDT and an empty IDT where `layout` says.
[[nodiscard]] base::Result<CpuBootState> SetUpProtectedMode(const base::GuestMemory& memory,
                                                            uint32_t entry,
                                                            const ProtectedModeLayout& layout = {});

}  // namespace firmware
