// Kernel heap. Blocks up to 2048 bytes come from per-size-class slabs (one
// 4 KiB frame each, reached through the direct map, a 64-byte header in
// front); larger blocks are whole pages in the kernel virtual area. All
// blocks are 16-byte aligned and zeroed. Allocation failure returns nullptr
// (callers check: the kernel's `new (nothrow)` rule). Interrupts off.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kernel {

void* HeapAlloc(size_t size);
void HeapFree(void* p);

struct HeapStats {
  uint64_t allocs, frees, slab_pages, large_blocks;
};
HeapStats GetHeapStats();

template <typename T>
T* New() {
  void* p = HeapAlloc(sizeof(T));
  return p != nullptr ? new (p) T() : nullptr;
}
template <typename T>
void Delete(T* p) {
  if (p == nullptr) return;
  p->~T();
  HeapFree(p);
}

}  // namespace kernel

// Placement new (freestanding: <new> may not be available).
inline void* operator new(size_t, void* p) noexcept { return p; }
