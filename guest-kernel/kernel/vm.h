// Kernel virtual memory: frame allocator set-up, the kernel address space
// (direct physical map, kernel image with per-section permissions, a kernel
// virtual area for stacks and large allocations, an MMIO window) and helpers.
//
// Kernel virtual layout (PML4 index in brackets):
//   0xffff800000000000 [256]  direct map of usable RAM (NX, 1 GiB or 2 MiB pages)
//   0xffffc00000000000 [384]  kernel virtual area: stacks (with guard pages), large heap blocks
//   0xffffd00000000000 [416]  MMIO window (uncached 4 KiB pages: LAPIC, IOAPIC)
//   0xffffffff80000000 [511]  kernel image: text R-X, rodata R--, data/bss RW- (4 KiB pages)
// The lower half (PML4 0..255) belongs to the current process.
#pragma once

#include <stdint.h>

#include "kernel/boot_info.h"
#include "kernel/frame_allocator.h"
#include "kernel/page_table.h"

namespace kernel {

inline constexpr uint64_t kDirectMapBase = 0xffff800000000000;
inline constexpr uint64_t kKernelVirtualArea = 0xffffc00000000000;
inline constexpr uint64_t kMmioWindow = 0xffffd00000000000;
inline constexpr uint64_t kKernelImageBase = 0xffffffff80000000;

inline uint64_t PhysToVirt(uint64_t phys) { return kDirectMapBase + phys; }
template <typename T>
T* PhysPtr(uint64_t phys) {
  return reinterpret_cast<T*>(kDirectMapBase + phys);
}

class KernelPhysMem final : public PhysMem {
 public:
  void* Frame(uint64_t phys) override { return PhysPtr<void>(phys); }
};

class KernelFrames final : public FrameSource {
 public:
  uint64_t AllocZeroed() override;
  void Free(uint64_t phys) override;
};

KernelPhysMem& Phys();
KernelFrames& Frames();
FrameAllocator& FrameAlloc();

// Sets up the frame allocator from `info`, builds the kernel address space,
// switches CR3 to it and prints the [mm] lines.
void VmInit(const BootInfo& info);
uint64_t KernelRoot();
PageTable KernelPageTable();

// Maps an MMIO page uncached in the MMIO window; returns its virtual address.
uint64_t MapMmio(uint64_t phys);
// `pages` 4 KiB pages in the kernel virtual area, preceded by an unmapped
// guard page, zeroed when `zero` (stacks need not be: zeroing a frame costs
// ~0.25 ms under an emulating KVM). Returns the start (0 when out of memory).
uint64_t AllocKernelPages(uint64_t pages, bool zero = true);
void FreeKernelPages(uint64_t start, uint64_t pages);

// Where a ring-0 page fault hit a guard page, for the panic report.
bool IsKernelGuardPage(uint64_t va);

}  // namespace kernel
