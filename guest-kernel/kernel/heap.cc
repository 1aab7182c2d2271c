#include "kernel/heap.h"

#include "kernel/vm.h"

namespace kernel {
namespace {

constexpr size_t kClasses[] = {32, 64, 128, 256, 512, 1024, 2048};
constexpr size_t kClassCount = sizeof(kClasses) / sizeof(kClasses[0]);
constexpr uint64_t kSlabMagic = 0x534c4142;   // "SLAB"
constexpr uint64_t kLargeMagic = 0x4c415247;  // "LARG"
constexpr size_t kHeader = 64;

struct SlabHeader {  // at the start of each slab frame / large block
  uint64_t magic;
  uint64_t class_or_pages;
};
struct FreeBlock {
  FreeBlock* next;
};

constinit FreeBlock* g_free[kClassCount] = {};
constinit HeapStats g_stats = {};

void Zero(void* p, size_t n) { asm volatile("rep stosb" : "+D"(p), "+c"(n) : "a"(0) : "memory"); }

}  // namespace

void* HeapAlloc(size_t size) {
  if (size == 0) size = 1;
  for (size_t c = 0; c < kClassCount; ++c) {
    if (size > kClasses[c]) continue;
    if (g_free[c] == nullptr) {
      const uint64_t frame = Frames().AllocZeroed();
      if (frame == 0) return nullptr;
      auto* page = PhysPtr<uint8_t>(frame);
      auto* h = reinterpret_cast<SlabHeader*>(page);
      h->magic = kSlabMagic;
      h->class_or_pages = c;
      // Thread the blocks of the fresh slab onto the free list.
      for (size_t off = kHeader; off + kClasses[c] <= kPageSize; off += kClasses[c]) {
        auto* b = reinterpret_cast<FreeBlock*>(page + off);
        b->next = g_free[c];
        g_free[c] = b;
      }
      ++g_stats.slab_pages;
    }
    FreeBlock* b = g_free[c];
    g_free[c] = b->next;
    Zero(b, kClasses[c]);
    ++g_stats.allocs;
    return b;
  }
  const uint64_t pages = (size + kHeader + kPageSize - 1) / kPageSize;
  const uint64_t start = AllocKernelPages(pages);  // zeroed
  if (start == 0) return nullptr;
  auto* h = reinterpret_cast<SlabHeader*>(start);
  h->magic = kLargeMagic;
  h->class_or_pages = pages;
  ++g_stats.allocs;
  ++g_stats.large_blocks;
  return reinterpret_cast<uint8_t*>(start) + kHeader;
}

void HeapFree(void* p) {
  if (p == nullptr) return;
  const uint64_t addr = reinterpret_cast<uint64_t>(p);
  auto* h = reinterpret_cast<SlabHeader*>(addr & ~kPageMask);
  ++g_stats.frees;
  if (h->magic == kSlabMagic) {
    auto* b = static_cast<FreeBlock*>(p);
    b->next = g_free[h->class_or_pages];
    g_free[h->class_or_pages] = b;
    return;
  }
  if (h->magic == kLargeMagic) {
    --g_stats.large_blocks;
    FreeKernelPages(addr & ~kPageMask, h->class_or_pages);
  }
}

HeapStats GetHeapStats() { return g_stats; }

}  // namespace kernel
