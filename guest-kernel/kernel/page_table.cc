#include "kernel/page_table.h"

namespace kernel {
namespace {

constexpr size_t Index(uint64_t va, int level) {  // level 3 = PML4 ... 0 = PT
  return (va >> (12 + 9 * level)) & 511;
}

}  // namespace

PageTable::Status PageTable::Map(uint64_t va, uint64_t pa, uint64_t flags, uint64_t size) {
  if (!IsCanonical(va) || ((va | pa) & (size - 1)) != 0 || (pa & ~pte::kAddressMask) != 0) {
    return Status::kBadAddress;
  }
  if ((flags & pte::kWrite) != 0 && (flags & pte::kNoExecute) == 0) return Status::kWriteExec;
  const int leaf_level = size == kPage1G ? 2 : size == kPage2M ? 1 : 0;
  if (size != kPage1G && size != kPage2M && size != kPageSize) return Status::kBadAddress;
  const uint64_t user = flags & pte::kUser;
  uint64_t* table = Table(root_);
  for (int level = 3; level > leaf_level; --level) {
    uint64_t& e = table[Index(va, level)];
    if ((e & pte::kPresent) == 0) {
      const uint64_t frame = frames_->AllocZeroed();
      if (frame == 0) return Status::kNoMemory;
      e = frame | pte::kPresent | pte::kWrite | user;
    } else if ((e & pte::kHuge) != 0) {
      return Status::kHugeInTheWay;
    } else {
      e |= user;
    }
    table = Table(e & pte::kAddressMask);
  }
  uint64_t& leaf = table[Index(va, leaf_level)];
  if ((leaf & pte::kPresent) != 0) return Status::kAlreadyMapped;
  leaf = pa | flags | pte::kPresent | (leaf_level > 0 ? pte::kHuge : 0);
  return Status::kOk;
}

PageTable::Status PageTable::MapRange(uint64_t va, uint64_t pa, uint64_t len, uint64_t flags,
                                      uint64_t size) {
  if (size != kPage1G && size != kPage2M && size != kPageSize) return Status::kBadAddress;
  if (((va | pa | len) & (size - 1)) != 0) return Status::kBadAddress;
  if (len == 0) return Status::kOk;
  if (va + len - 1 < va || !IsCanonical(va) || !IsCanonical(va + len - 1))
    return Status::kBadAddress;
  const int leaf_level = size == kPage1G ? 2 : size == kPage2M ? 1 : 0;
  const uint64_t huge = leaf_level > 0 ? pte::kHuge : 0;
  while (len > 0) {
    // Map the first page the slow way (creates the tables), then fill the
    // rest of that leaf table directly.
    const Status s = Map(va, pa, flags, size);
    if (s != Status::kOk) return s;
    uint64_t* table = Table(root_);
    for (int level = 3; level > leaf_level; --level) {
      table = Table(table[Index(va, level)] & pte::kAddressMask);
    }
    size_t i = Index(va, leaf_level) + 1;
    va += size;
    pa += size;
    len -= size;
    const uint64_t bits = flags | pte::kPresent | huge;
    for (; i < 512 && len > 0; ++i) {
      if ((table[i] & pte::kPresent) != 0) return Status::kAlreadyMapped;
      table[i] = pa | bits;
      va += size;
      pa += size;
      len -= size;
    }
  }
  return Status::kOk;
}

uint64_t PageTable::Lookup(uint64_t va, uint64_t* size) const {
  if (!IsCanonical(va)) return 0;
  const uint64_t* table = Table(root_);
  for (int level = 3; level >= 0; --level) {
    const uint64_t e = table[Index(va, level)];
    if ((e & pte::kPresent) == 0) return 0;
    if (level == 0 || (level <= 2 && (e & pte::kHuge) != 0)) {
      if (size != nullptr) *size = 1ull << (12 + 9 * level);
      return e;
    }
    table = Table(e & pte::kAddressMask);
  }
  return 0;
}

uint64_t PageTable::Unmap(uint64_t va) {
  if (!IsCanonical(va)) return 0;
  uint64_t* table = Table(root_);
  for (int level = 3; level > 0; --level) {
    const uint64_t e = table[Index(va, level)];
    if ((e & pte::kPresent) == 0 || (e & pte::kHuge) != 0) return 0;
    table = Table(e & pte::kAddressMask);
  }
  const uint64_t old = table[Index(va, 0)];
  table[Index(va, 0)] = 0;
  return old;
}

void PageTable::FreeTable(uint64_t table_phys, int level) {
  uint64_t* table = Table(table_phys);
  for (size_t i = 0; i < 512; ++i) {
    const uint64_t e = table[i];
    if ((e & pte::kPresent) == 0) continue;
    const bool leaf = level == 0 || (e & pte::kHuge) != 0;
    if (leaf) {
      if ((e & pte::kOwned) != 0) frames_->Free(e & pte::kAddressMask);
    } else {
      FreeTable(e & pte::kAddressMask, level - 1);
    }
  }
  frames_->Free(table_phys);
}

void PageTable::FreeRange(size_t first_pml4, size_t last_pml4) {
  uint64_t* pml4 = Table(root_);
  for (size_t i = first_pml4; i <= last_pml4 && i < 512; ++i) {
    if ((pml4[i] & pte::kPresent) == 0) continue;
    FreeTable(pml4[i] & pte::kAddressMask, 2);
    pml4[i] = 0;
  }
}

}  // namespace kernel
