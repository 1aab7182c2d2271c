#include "firmware/initrd.h"

#include <algorithm>
#include <string>

#include "base/layout.h"
#include "firmware/image_file.h"

namespace firmware {
namespace {

constexpr uint64_t kPage = 4096;

constexpr uint64_t AlignDown(uint64_t value) { return value & ~(kPage - 1); }

}  // namespace

uint64_t LowRamEnd(const base::GuestMemory& memory) {
  return std::min(memory.ram_size(), base::kMmioHoleStart);
}

base::Result<PlacedInitrd> LoadInitrdHigh(const base::GuestMemory& memory, const std::string& path,
                                          uint64_t floor, uint64_t limit, bool above_4g) {
  const std::vector<uint8_t> data = TRY(ReadImageFile(path, "initrd", memory.ram_size()));
  limit = std::min(limit, LowRamEnd(memory));
  floor = std::max(floor, base::kHighMemory);  // never in the boot structures or legacy area
  const uint64_t size = data.size();
  if (limit >= size && AlignDown(limit - size) >= floor) {
    const uint64_t address = AlignDown(limit - size);
    TRY(memory.Write(address, data));
    return PlacedInitrd{address, size};
  }
  // The RAM above the hole, when the kernel can take an initrd there.
  std::string high_window;
  if (above_4g) {
    for (const base::MemoryRegion& region : memory.regions()) {
      if (region.guest_phys < base::kMmioHoleEnd) continue;
      const uint64_t end = region.guest_phys + region.size;
      high_window = fmt::format(" or between {:#x} and {:#x}", region.guest_phys, end);
      if (region.size >= size) {
        const uint64_t address = AlignDown(end - size);
        TRY(memory.Write(address, data));
        return PlacedInitrd{address, size};
      }
    }
  }
  return base::MakeError(base::ErrorKind::kConfig,
                         "initrd {} ({} bytes) does not fit in guest memory between {:#x} (end "
                         "of the kernel) and {:#x}{}; give the guest more memory",
                         path, size, floor, limit, high_window);
}

base::Result<PlacedInitrd> PlaceLow(const base::GuestMemory& memory, std::span<const uint8_t> data,
                                    std::string_view name, uint64_t floor, uint64_t limit) {
  limit = std::min(limit, LowRamEnd(memory));
  floor = std::max(floor, base::kHighMemory);  // never in the boot structures or legacy area
  const uint64_t address = (floor + kPage - 1) & ~(kPage - 1);
  if (address < floor || address > limit || data.size() > limit - address) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "{} ({} bytes) does not fit in guest memory between {:#x} and {:#x}; "
                           "give the guest more memory",
                           name, data.size(), floor, limit);
  }
  TRY(memory.Write(address, data));
  return PlacedInitrd{address, data.size()};
}

}  // namespace firmware
