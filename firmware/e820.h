// The guest's physical memory map as a BIOS's INT 15h/E820 would report it
// (ACPI 6.5 §15 "System Address Map Interfaces"). Shared by the zero page,
// PVH's hvm_memmap_table and multiboot's mmap.
#pragma once

#include <cstdint>
#include <vector>

namespace firmware {

// ACPI 6.5 Table 15.1 "Address Range Types".
inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

struct E820Entry {
  uint64_t addr = 0;
  uint64_t size = 0;
  uint32_t type = 0;
  friend bool operator==(const E820Entry&, const E820Entry&) = default;
};

// docs/architecture.md "Machine layout": RAM [0, 0x9fc00), reserved [0x9fc00, 1 MiB)
// (EBDA, VGA window, BIOS ROM — always reported, as a PC does), RAM
// [1 MiB, min(ram_size, 3 GiB)), and the RAM above 3 GiB relocated to
// [4 GiB, 4 GiB + ram_size - 3 GiB). The 3–4 GiB MMIO hole is not listed
// (Firecracker does not list it either). Entries are sorted and disjoint.
std::vector<E820Entry> BuildE820Map(uint64_t ram_size);

}  // namespace firmware
