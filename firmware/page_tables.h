// x86-64 4-level page tables built in guest memory (Intel SDM Vol. 3A §4.5
// "4-Level Paging and 5-Level Paging"), for boot protocols whose kernel
// expects more than vmm's fixed identity map (firmware/cpu_setup.h): the
// Limine protocol's higher-half direct map and its kernel mapped at its link
// address with per-segment permissions (docs/boot-protocols.md, "Limine").
//
// Table pages come from a caller-supplied allocator (zeroed 4 KiB pages in
// guest RAM), so the caller decides where they live and can report that
// memory to the guest (Limine: bootloader-reclaimable).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "base/error.h"
#include "base/guest_memory.h"

namespace firmware {

// Page-table entry bits (Intel SDM Vol. 3A §4.5, Tables 4-15..4-20).
inline constexpr uint64_t kPtePresent = 1ull << 0;
inline constexpr uint64_t kPteWrite = 1ull << 1;
inline constexpr uint64_t kPteLarge = 1ull << 7;  // in a PDE: a 2 MiB page
inline constexpr uint64_t kPteNoExecute = 1ull << 63;
inline constexpr uint64_t kPteAddressMask = 0x000ffffffffff000ull;

class PageTableBuilder {
 public:
  // Returns the guest-physical address of a zeroed, 4 KiB aligned page.
  using PageAllocator = std::function<base::Result<uint64_t>()>;

  // Allocates the PML4.
  [[nodiscard]] static base::Result<PageTableBuilder> Create(const base::GuestMemory& memory,
                                                             PageAllocator allocate);

  uint64_t root() const { return root_; }  // CR3

  // Maps [virt, virt + size) to [phys, phys + size): `flags` is kPteWrite
  // and/or kPteNoExecute (present is implied). Both addresses and the size
  // must be 4 KiB aligned, virt canonical. With `large`, 2 MiB pages where
  // virt, phys and the remaining size allow it. Mapping a page again to the
  // same frame widens its permissions to the union (write if either asks,
  // execute if either asks), as for two ELF segments sharing a page; mapping
  // it to another frame is kInternal.
  [[nodiscard]] base::Result<void> Map(uint64_t virt, uint64_t phys, uint64_t size, uint64_t flags,
                                       bool large);

 private:
  PageTableBuilder(const base::GuestMemory& memory, PageAllocator allocate, uint64_t root)
      : memory_(&memory), allocate_(std::move(allocate)), root_(root) {}
  // The table an entry of `table` at `index` points to, allocated if absent.
  base::Result<uint64_t> Next(uint64_t table, uint64_t index);

  const base::GuestMemory* memory_;
  PageAllocator allocate_;
  uint64_t root_;
};

// A page walk as the CPU does it (4-level, 4 KiB and 2 MiB pages): the
// guest-physical address `virt` maps to and the entry's effective write/NX
// bits, or nullopt when it is not mapped. For tests and diagnostics.
struct Translation {
  uint64_t phys = 0;
  bool write = false;
  bool execute = false;
};
[[nodiscard]] base::Result<std::optional<Translation>> TranslateAddress(
    const base::GuestMemory& memory, uint64_t cr3, uint64_t virt);

}  // namespace firmware
