// PVH boot: struct hvm_start_info and its tables (Xen
// xen/include/public/arch-x86/hvm/start_info.h, version 1), written at
// kPvhStartInfo. The kernel is entered in 32-bit protected mode with paging
// off and EBX pointing here (Xen docs/misc/pvh.pandoc).
#pragma once

#include <cstdint>
#include <optional>

#include "base/error.h"
#include "base/guest_memory.h"
#include "base/layout.h"
#include "firmware/initrd.h"

namespace firmware {

inline constexpr uint32_t kHvmStartMagic = 0x336ec578;  // "xEn3" with the top bit set
inline constexpr uint32_t kHvmStartInfoVersion = 1;     // has memmap_paddr/memmap_entries

// Layout inside the 4 KiB at kPvhStartInfo: the 56-byte start info, the
// module list (one 32-byte hvm_modlist_entry: the initrd), then the memory
// map (24-byte hvm_memmap_table_entry each, up to the zero page).
inline constexpr uint64_t kPvhModlistAddress = base::kPvhStartInfo + 0x40;
inline constexpr uint64_t kPvhMemmapAddress = base::kPvhStartInfo + 0x80;
inline constexpr uint64_t kPvhMemmapEnd = base::kZeroPage;

// Fills hvm_start_info: magic, version 1, cmdline_paddr, the initrd as
// module 0 (when there is one), rsdp_paddr (`rsdp`: 0 without ACPI tables),
// and the memory map
// from BuildE820Map (same types as e820).
[[nodiscard]] base::Result<void> WritePvhStartInfo(const base::GuestMemory& memory,
                                                   uint64_t cmdline_address,
                                                   const std::optional<PlacedInitrd>& initrd,
                                                   uint64_t rsdp);

}  // namespace firmware
