#include "firmware/page_tables.h"

#include <utility>

namespace firmware {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kLargePage = 2ull << 20;

// Table indexes of a virtual address (SDM Vol. 3A Figure 4-8).
constexpr uint64_t Index(uint64_t virt, int level) { return (virt >> (12 + 9 * level)) & 0x1ff; }

bool Canonical(uint64_t virt) {
  const uint64_t top = virt >> 47;
  return top == 0 || top == 0x1ffff;
}

}  // namespace

base::Result<PageTableBuilder> PageTableBuilder::Create(const base::GuestMemory& memory,
                                                        PageAllocator allocate) {
  const uint64_t root = TRY(allocate());
  return PageTableBuilder(memory, std::move(allocate), root);
}

base::Result<uint64_t> PageTableBuilder::Next(uint64_t table, uint64_t index) {
  const uint64_t at = table + index * 8;
  const uint64_t entry = TRY(memory_->ReadObj<uint64_t>(at));
  if (entry & kPtePresent) {
    if (entry & kPteLarge) {
      return base::MakeError(base::ErrorKind::kInternal,
                             "page table entry at {:#x} is a large page where a table is needed",
                             at);
    }
    return entry & kPteAddressMask;
  }
  const uint64_t page = TRY(allocate_());
  // Intermediate entries allow everything; the leaf decides (SDM §4.6).
  TRY(memory_->WriteObj(at, page | kPtePresent | kPteWrite));
  return page;
}

base::Result<void> PageTableBuilder::Map(uint64_t virt, uint64_t phys, uint64_t size,
                                         uint64_t flags, bool large) {
  if ((virt | phys | size) % kPage != 0 || !Canonical(virt) ||
      (size != 0 && !Canonical(virt + size - 1)) || phys + size < phys) {
    return base::MakeError(base::ErrorKind::kInternal,
                           "cannot map [{:#x}, +{:#x}) to {:#x}: unaligned or not canonical", virt,
                           size, phys);
  }
  const uint64_t leaf_flags = (flags & (kPteWrite | kPteNoExecute)) | kPtePresent;
  for (uint64_t done = 0; done < size;) {
    const uint64_t v = virt + done, p = phys + done;
    const uint64_t pdpt = TRY(Next(root_, Index(v, 3)));
    const uint64_t pd = TRY(Next(pdpt, Index(v, 2)));
    const uint64_t pde_at = pd + Index(v, 1) * 8;
    const uint64_t pde = TRY(memory_->ReadObj<uint64_t>(pde_at));
    if (large && v % kLargePage == 0 && p % kLargePage == 0 && size - done >= kLargePage &&
        (pde & kPtePresent) == 0) {
      TRY(memory_->WriteObj(pde_at, p | leaf_flags | kPteLarge));
      done += kLargePage;
      continue;
    }
    if ((pde & kPtePresent) && (pde & kPteLarge)) {
      // Already mapped by a 2 MiB page: it must be the same frame.
      const uint64_t mapped = (pde & kPteAddressMask & ~(kLargePage - 1)) + v % kLargePage;
      if (mapped != p) {
        return base::MakeError(base::ErrorKind::kInternal,
                               "virtual {:#x} is already mapped to {:#x}, not {:#x}", v, mapped, p);
      }
      done += kPage;
      continue;
    }
    const uint64_t pt = TRY(Next(pd, Index(v, 1)));
    const uint64_t pte_at = pt + Index(v, 0) * 8;
    const uint64_t pte = TRY(memory_->ReadObj<uint64_t>(pte_at));
    uint64_t entry = p | leaf_flags;
    if (pte & kPtePresent) {
      if ((pte & kPteAddressMask) != p) {
        return base::MakeError(base::ErrorKind::kInternal,
                               "virtual {:#x} is already mapped to {:#x}, not {:#x}", v,
                               pte & kPteAddressMask, p);
      }
      // The union of both permissions.
      entry = p | kPtePresent | ((pte | entry) & kPteWrite) | (pte & entry & kPteNoExecute);
    }
    TRY(memory_->WriteObj(pte_at, entry));
    done += kPage;
  }
  return {};
}

base::Result<std::optional<Translation>> TranslateAddress(const base::GuestMemory& memory,
                                                          uint64_t cr3, uint64_t virt) {
  uint64_t table = cr3 & kPteAddressMask;
  bool write = true, execute = true;
  for (int level = 3; level >= 0; --level) {
    const uint64_t entry = TRY(memory.ReadObj<uint64_t>(table + Index(virt, level) * 8));
    if ((entry & kPtePresent) == 0) return std::optional<Translation>();
    write = write && (entry & kPteWrite);
    execute = execute && !(entry & kPteNoExecute);
    if (level == 1 && (entry & kPteLarge)) {
      return std::optional<Translation>(Translation{
          (entry & kPteAddressMask & ~(kLargePage - 1)) + virt % kLargePage, write, execute});
    }
    table = entry & kPteAddressMask;
  }
  return std::optional<Translation>(Translation{table + virt % kPage, write, execute});
}

}  // namespace firmware
