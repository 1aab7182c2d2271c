// Access to physical memory by physical address. The kernel implements it
// with the direct map; host unit tests with a fake buffer.
#pragma once

#include <stdint.h>

namespace kernel {

inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kPageMask = kPageSize - 1;

class PhysMem {
 public:
  // A pointer through which the 4 KiB frame at `phys` (page-aligned) can be
  // read and written.
  virtual void* Frame(uint64_t phys) = 0;

 protected:
  ~PhysMem() = default;
};

// A source of zeroed 4 KiB frames (page tables, user pages).
class FrameSource {
 public:
  // 0 when out of memory.
  virtual uint64_t AllocZeroed() = 0;
  virtual void Free(uint64_t phys) = 0;

 protected:
  ~FrameSource() = default;
};

}  // namespace kernel
