#include "firmware/zero_page.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "base/layout.h"
#include "firmware/e820.h"

namespace firmware {
namespace {

using Page = std::array<uint8_t, boot_params::kSize>;

template <typename T>
void Put(Page& page, uint64_t offset, T value) {
  std::memcpy(page.data() + offset, &value, sizeof(T));
}

}  // namespace

base::Result<void> WriteZeroPage(const base::GuestMemory& memory, const ZeroPageConfig& config) {
  namespace bp = boot_params;
  Page page{};
  if (!config.setup_header.empty()) {
    const uint64_t n =
        std::min<uint64_t>(config.setup_header.size(), bp::kSetupHeaderMaxEnd - bp::kSetupHeader);
    std::memcpy(page.data() + bp::kSetupHeader, config.setup_header.data(), n);
  } else {
    Put<uint16_t>(page, bp::kBootFlag, bp::kBootFlagValue);
    Put<uint32_t>(page, bp::kHeader, bp::kHeaderMagic);
    Put<uint16_t>(page, bp::kVersion, kSyntheticProtocolVersion);
    Put<uint32_t>(page, bp::kKernelAlignment, 0x01000000);  // as Firecracker: 16 MiB
  }
  Put<uint8_t>(page, bp::kTypeOfLoader, bp::kLoaderUndefined);
  const uint8_t loadflags = page[bp::kLoadFlags];
  Put<uint8_t>(page, bp::kLoadFlags, static_cast<uint8_t>(loadflags | bp::kLoadedHigh));
  Put<uint32_t>(page, bp::kCmdLinePtr, static_cast<uint32_t>(config.cmdline_address));
  Put<uint32_t>(page, bp::kExtCmdLinePtr, static_cast<uint32_t>(config.cmdline_address >> 32));
  Put<uint32_t>(page, bp::kCmdlineSize, static_cast<uint32_t>(config.cmdline_size));
  Put<uint32_t>(page, bp::kRamdiskImage, static_cast<uint32_t>(config.initrd_address));
  Put<uint32_t>(page, bp::kExtRamdiskImage, static_cast<uint32_t>(config.initrd_address >> 32));
  Put<uint32_t>(page, bp::kRamdiskSize, static_cast<uint32_t>(config.initrd_size));
  Put<uint32_t>(page, bp::kExtRamdiskSize, static_cast<uint32_t>(config.initrd_size >> 32));
  Put<uint64_t>(page, bp::kAcpiRsdpAddr, config.acpi_rsdp);
  if (config.framebuffer) {
    const Framebuffer& fb = *config.framebuffer;
    Put<uint8_t>(page, bp::kOrigVideoIsVga, bp::kVideoTypeVlfb);
    Put<uint16_t>(page, bp::kLfbWidth, static_cast<uint16_t>(fb.width));
    Put<uint16_t>(page, bp::kLfbHeight, static_cast<uint16_t>(fb.height));
    Put<uint16_t>(page, bp::kLfbDepth, 32);
    Put<uint32_t>(page, bp::kLfbBase, static_cast<uint32_t>(fb.address));
    Put<uint32_t>(page, bp::kExtLfbBase, static_cast<uint32_t>(fb.address >> 32));
    Put<uint32_t>(page, bp::kLfbSize, static_cast<uint32_t>((fb.size() + 0xffff) >> 16));
    Put<uint16_t>(page, bp::kLfbLineLength, static_cast<uint16_t>(fb.pitch));
    // XRGB8888: red 8 at 16, green 8 at 8, blue 8 at 0, reserved 8 at 24.
    const uint8_t fields[8] = {8, 16, 8, 8, 8, 0, 8, 24};
    for (size_t i = 0; i < 8; ++i) Put<uint8_t>(page, bp::kLfbColourFields + i, fields[i]);
  }
  const uint64_t below_hole = std::min(config.ram_size, base::kMmioHoleStart);
  if (below_hole > base::kHighMemory) {
    Put<uint32_t>(page, bp::kAltMemK,
                  static_cast<uint32_t>((below_hole - base::kHighMemory) / 1024));
  }

  const auto map = BuildE820Map(config.ram_size);
  if (map.size() > bp::kE820MaxEntries) {
    return base::MakeError(base::ErrorKind::kInternal,
                           "e820 map has {} entries; the zero page holds {}", map.size(),
                           bp::kE820MaxEntries);
  }
  Put<uint8_t>(page, bp::kE820Entries, static_cast<uint8_t>(map.size()));
  for (size_t i = 0; i < map.size(); ++i) {
    const uint64_t at = bp::kE820Table + i * bp::kE820EntrySize;
    Put<uint64_t>(page, at, map[i].addr);
    Put<uint64_t>(page, at + 8, map[i].size);
    Put<uint32_t>(page, at + 16, map[i].type);
  }
  return memory.WriteObj(base::kZeroPage, page);
}

base::Result<uint64_t> WriteCmdline(const base::GuestMemory& memory, std::string_view cmdline,
                                    uint64_t address, uint64_t limit) {
  if (cmdline.find('\0') != std::string_view::npos) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "kernel command line contains a NUL byte at offset {}",
                           cmdline.find('\0'));
  }
  if (cmdline.size() + 1 > limit) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "kernel command line is {} bytes; the limit is {} bytes (including the "
                           "terminating NUL)",
                           cmdline.size(), limit);
  }
  TRY(memory.Write(address,
                   std::span(reinterpret_cast<const uint8_t*>(cmdline.data()), cmdline.size())));
  TRY(memory.WriteObj(address + cmdline.size(), uint8_t{0}));
  return cmdline.size();
}

}  // namespace firmware
