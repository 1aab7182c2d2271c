// x86-64 4-level page tables (Intel SDM vol. 3A §4.5), built over PhysMem
// and FrameSource so that the same code runs in the kernel and in host unit
// tests over fake memory.
//
// Invariants: a table frame is referenced from exactly one parent entry;
// intermediate entries carry P|W (and U in the user half), leaves carry the
// permissions; no leaf is both writable and executable (Map rejects W
// without NX). Not thread-safe: callers run with interrupts off.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "kernel/phys.h"

namespace kernel {

namespace pte {
inline constexpr uint64_t kPresent = 1ull << 0;
inline constexpr uint64_t kWrite = 1ull << 1;
inline constexpr uint64_t kUser = 1ull << 2;
inline constexpr uint64_t kWriteThrough = 1ull << 3;
inline constexpr uint64_t kCacheDisable = 1ull << 4;
inline constexpr uint64_t kAccessed = 1ull << 5;
inline constexpr uint64_t kDirty = 1ull << 6;
inline constexpr uint64_t kHuge = 1ull << 7;
inline constexpr uint64_t kGlobal = 1ull << 8;
inline constexpr uint64_t kOwned = 1ull << 9;  // software: the leaf frame is freed with the space
inline constexpr uint64_t kNoExecute = 1ull << 63;
inline constexpr uint64_t kAddressMask = 0x000ffffffffff000ull;
}  // namespace pte

inline constexpr uint64_t kPage2M = 2ull << 20;
inline constexpr uint64_t kPage1G = 1ull << 30;

// Canonical 48-bit address? (SDM vol. 1 §3.3.7.1)
constexpr bool IsCanonical(uint64_t va) {
  const uint64_t top = va >> 47;
  return top == 0 || top == 0x1ffff;
}

class PageTable {
 public:
  PageTable(PhysMem* phys, FrameSource* frames, uint64_t root)
      : phys_(phys), frames_(frames), root_(root) {}

  uint64_t root() const { return root_; }

  enum class Status : uint8_t {
    kOk,
    kNoMemory,
    kBadAddress,
    kAlreadyMapped,
    kWriteExec,
    kHugeInTheWay
  };

  // Maps one page of `size` (4 KiB, 2 MiB or 1 GiB) at `va` to `pa` with
  // leaf `flags` (kPresent added). Both must be aligned to `size`.
  Status Map(uint64_t va, uint64_t pa, uint64_t flags, uint64_t size = kPageSize);
  // Maps [va, va + len) to [pa, pa + len) with pages of `size`, walking the
  // upper levels once per leaf table (cheap where memory accesses are dear).
  // Stops at the first failure (earlier pages stay mapped).
  Status MapRange(uint64_t va, uint64_t pa, uint64_t len, uint64_t flags,
                  uint64_t size = kPageSize);
  // The leaf entry mapping `va` (any size), or 0; `*size` receives its size.
  uint64_t Lookup(uint64_t va, uint64_t* size = nullptr) const;
  // Clears the 4 KiB leaf at `va`, returns the old entry (0 when none).
  // The caller flushes the TLB.
  uint64_t Unmap(uint64_t va);
  // Frees every table of entries [first, last] of the PML4 and every leaf
  // frame marked kOwned beneath them; clears those PML4 entries.
  void FreeRange(size_t first_pml4, size_t last_pml4);

 private:
  uint64_t* Table(uint64_t phys) const { return static_cast<uint64_t*>(phys_->Frame(phys)); }
  void FreeTable(uint64_t table, int level);

  PhysMem* phys_;
  FrameSource* frames_;
  uint64_t root_;
};

}  // namespace kernel
