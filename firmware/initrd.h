// Reading initrds and finding them a place in guest memory.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/error.h"
#include "base/guest_memory.h"

namespace firmware {

// Where an initrd went.
struct PlacedInitrd {
  uint64_t address = 0;
  uint64_t size = 0;
};

// Top of the RAM below the MMIO hole: min(ram_size, 3 GiB).
uint64_t LowRamEnd(const base::GuestMemory& memory);

// Reads `path` and copies it to the highest 4 KiB-aligned address in
// [max(floor, 1 MiB), limit) where it fits (Linux boot.rst: "as high as possible" below
// initrd_addr_max). When it does not fit there and `above_4g` allows it (the
// kernel reads a 64-bit address: bzImage XLF_CAN_BE_LOADED_ABOVE_4G,
// boot_params.ext_ramdisk_image of an ELF64 kernel, PVH's 64-bit module
// address), it goes to the top of the RAM above the MMIO hole instead (the
// guest needs more than 3 GiB for there to be any). kNoInput when the file
// cannot be read; kConfig naming the file, its size and the window(s) when it
// does not fit.
[[nodiscard]] base::Result<PlacedInitrd> LoadInitrdHigh(const base::GuestMemory& memory,
                                                        const std::string& path, uint64_t floor,
                                                        uint64_t limit, bool above_4g = false);

// Copies `data` (an image already read) to the lowest 4 KiB-aligned address at
// or above `floor` below `limit`; used for multiboot modules, which go one
// after another above the kernel. kConfig when it does not fit.
[[nodiscard]] base::Result<PlacedInitrd> PlaceLow(const base::GuestMemory& memory,
                                                  std::span<const uint8_t> data,
                                                  std::string_view name, uint64_t floor,
                                                  uint64_t limit);

}  // namespace firmware
