#include "firmware/e820.h"

#include <algorithm>

#include "firmware/layout.h"
#include "vmm/base/guest_memory.h"

namespace firmware {

std::vector<E820Entry> BuildE820Map(uint64_t ram_size) {
  std::vector<E820Entry> map;
  const uint64_t low_end = std::min(ram_size, kEbdaStart);
  if (low_end > 0) map.push_back({0, low_end, kE820Ram});
  map.push_back({kEbdaStart, kHighMemory - kEbdaStart, kE820Reserved});
  const uint64_t below_hole = std::min(ram_size, vmm::kMmioHoleStart);
  if (below_hole > kHighMemory) map.push_back({kHighMemory, below_hole - kHighMemory, kE820Ram});
  if (ram_size > vmm::kMmioHoleStart) {
    map.push_back({vmm::kMmioHoleEnd, ram_size - vmm::kMmioHoleStart, kE820Ram});
  }
  return map;
}

}  // namespace firmware
