#include "kernel/vm.h"

#include "arch/x86_64/cpu.h"
#include "kernel/console.h"
#include "kernel/machine.h"

extern "C" char __kernel_text_start[], __kernel_text_end[];
extern "C" char __kernel_rodata_start[], __kernel_rodata_end[];
extern "C" char __kernel_data_start[], __kernel_end[];

namespace kernel {
namespace {

constinit KernelPhysMem g_phys;
constinit KernelFrames g_frames;
constinit FrameAllocator g_alloc;
constinit uint64_t g_root = 0;
constinit uint64_t g_kva_next = kKernelVirtualArea;
constinit uint64_t g_mmio_next = kMmioWindow;

void ZeroFrame(uint64_t phys) {
  void* p = PhysPtr<void>(phys);
  uint64_t n = kPageSize / 8;
  asm volatile("rep stosq" : "+D"(p), "+c"(n) : "a"(0) : "memory");
}

void MustMap(PageTable& pt, uint64_t va, uint64_t pa, uint64_t flags, uint64_t size) {
  const PageTable::Status s = pt.Map(va, pa, flags, size);
  if (s != PageTable::Status::kOk && s != PageTable::Status::kAlreadyMapped) {
    Print("[mm] map {:#x} -> {:#x} failed ({})\n", va, pa, static_cast<int>(s));
    Panic("cannot build the kernel address space");
  }
}

void MapImage(PageTable& pt, const char* begin, const char* end, uint64_t flags) {
  const uint64_t va = reinterpret_cast<uint64_t>(begin);
  const uint64_t len = reinterpret_cast<uint64_t>(end) - va;
  if (pt.MapRange(va, va - kKernelImageBase, len, flags | pte::kGlobal) != PageTable::Status::kOk) {
    Panic("cannot map the kernel image");
  }
}

}  // namespace

uint64_t KernelFrames::AllocZeroed() {
  const uint64_t f = g_alloc.Alloc();
  if (f != 0) ZeroFrame(f);
  return f;
}
void KernelFrames::Free(uint64_t phys) { g_alloc.Free(phys); }

KernelPhysMem& Phys() { return g_phys; }
KernelFrames& Frames() { return g_frames; }
FrameAllocator& FrameAlloc() { return g_alloc; }
uint64_t KernelRoot() { return g_root; }
PageTable KernelPageTable() { return PageTable(&g_phys, &g_frames, g_root); }

void VmInit(const BootInfo& info) {
  g_alloc.set_phys(&g_phys);
  uint64_t ram_top = 0;
  for (size_t i = 0; i < info.region_count; ++i) {
    const MemRegion& r = info.regions[i];
    if (r.type != kMemUsable) continue;
    if (!g_alloc.AddRange(r.base, r.size)) Print("[mm] too many ranges, dropped one\n");
    if (r.base + r.size > ram_top) ram_top = r.base + r.size;
  }
  // Not for allocation: everything below 1 MiB (boot structures, legacy
  // areas), the kernel image, the initrd.
  g_alloc.Reserve(0, 0x100000);
  const uint64_t image_end = reinterpret_cast<uint64_t>(__kernel_end) - kKernelImageBase;
  g_alloc.Reserve(0x100000, image_end - 0x100000);
  if (info.initrd.size != 0) g_alloc.Reserve(info.initrd.base, info.initrd.size);
  // Boot page tables must survive until CR3 moves: the frames the allocator
  // hands out lie above the image, and the boot tables are inside it.

  g_root = g_frames.AllocZeroed();
  if (g_root == 0) Panic("out of memory for the kernel page tables");
  PageTable pt = KernelPageTable();

  // Direct map of [0, ram_top) (holes included: nothing reaches them through
  // it): 1 GiB pages when the CPU has them (CPUID.80000001H:EDX[26]), else
  // 2 MiB pages.
  const bool gb_pages = (arch::Cpuid(0x80000000).eax >= 0x80000001) &&
                        (arch::Cpuid(0x80000001).edx & (1u << 26)) != 0;
  const uint64_t dm_flags = pte::kWrite | pte::kNoExecute | pte::kGlobal;
  const uint64_t dm_page = gb_pages ? kPage1G : kPage2M;
  const uint64_t dm_len = (ram_top + dm_page - 1) & ~(dm_page - 1);
  if (pt.MapRange(kDirectMapBase, 0, dm_len, dm_flags, dm_page) != PageTable::Status::kOk) {
    Panic("cannot build the direct map");
  }

  MapImage(pt, __kernel_text_start, __kernel_text_end, 0);
  MapImage(pt, __kernel_rodata_start, __kernel_rodata_end, pte::kNoExecute);
  MapImage(pt, __kernel_data_start, __kernel_end, pte::kWrite | pte::kNoExecute);

  // Pre-create the PML4 entries of the kernel virtual area and MMIO window so
  // that every process's copy of the upper half sees later mappings.
  uint64_t* pml4 = PhysPtr<uint64_t>(g_root);
  const uint64_t precreate[] = {kKernelVirtualArea, kMmioWindow};
  for (const uint64_t va : precreate) {
    const uint64_t t = g_frames.AllocZeroed();
    if (t == 0) Panic("out of memory for the kernel page tables");
    pml4[(va >> 39) & 511] = t | pte::kPresent | pte::kWrite;
  }

  // CR4.PGE for global kernel pages; CR0.WP so ring 0 honours read-only pages.
  arch::WriteCr4(arch::ReadCr4() | (1u << 7));
  arch::WriteCr0(arch::ReadCr0() | (1u << 16));
  arch::WriteCr3(g_root);
  Print("[mm] frames: {} free of {} ({} MiB), direct map with {} pages, ram top {:#x}\n",
        g_alloc.free_frames(), g_alloc.total_frames(), g_alloc.total_frames() >> 8,
        gb_pages ? "1 GiB" : "2 MiB", ram_top);
}

uint64_t MapMmio(uint64_t phys) {
  const uint64_t va = g_mmio_next;
  g_mmio_next += kPageSize;
  PageTable pt = KernelPageTable();
  MustMap(pt, va, phys & ~kPageMask,
          pte::kWrite | pte::kNoExecute | pte::kCacheDisable | pte::kWriteThrough, kPageSize);
  return va + (phys & kPageMask);
}

uint64_t AllocKernelPages(uint64_t pages, bool zero) {
  const uint64_t start = g_kva_next + kPageSize;  // guard page below
  PageTable pt = KernelPageTable();
  for (uint64_t i = 0; i < pages; ++i) {
    const uint64_t f = zero ? g_frames.AllocZeroed() : g_alloc.Alloc();
    if (f == 0 || pt.Map(start + i * kPageSize, f, pte::kWrite | pte::kNoExecute | pte::kOwned) !=
                      PageTable::Status::kOk) {
      if (f != 0) g_frames.Free(f);
      FreeKernelPages(start, i);
      return 0;
    }
  }
  g_kva_next = start + pages * kPageSize;
  return start;
}

void FreeKernelPages(uint64_t start, uint64_t pages) {
  PageTable pt = KernelPageTable();
  for (uint64_t i = 0; i < pages; ++i) {
    const uint64_t e = pt.Unmap(start + i * kPageSize);
    arch::Invlpg(start + i * kPageSize);
    if ((e & pte::kPresent) != 0) g_frames.Free(e & pte::kAddressMask);
  }
}

bool IsKernelGuardPage(uint64_t va) {
  return va >= kKernelVirtualArea && va < g_kva_next && KernelPageTable().Lookup(va) == 0;
}

}  // namespace kernel
