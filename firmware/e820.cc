#include "firmware/e820.h"

#include <algorithm>

#include "base/guest_memory.h"
#include "base/layout.h"

namespace firmware {

std::vector<E820Entry> BuildE820Map(uint64_t ram_size) {
  std::vector<E820Entry> map;
  const uint64_t low_end = std::min(ram_size, base::kEbdaStart);
  if (low_end > 0) map.push_back({0, low_end, kE820Ram});
  map.push_back({base::kEbdaStart, base::kHighMemory - base::kEbdaStart, kE820Reserved});
  const uint64_t below_hole = std::min(ram_size, base::kMmioHoleStart);
  if (below_hole > base::kHighMemory)
    map.push_back({base::kHighMemory, below_hole - base::kHighMemory, kE820Ram});
  if (ram_size > base::kMmioHoleStart) {
    map.push_back({base::kMmioHoleEnd, ram_size - base::kMmioHoleStart, kE820Ram});
  }
  return map;
}

}  // namespace firmware
