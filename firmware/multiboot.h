// Multiboot v1 (Multiboot Specification 0.6.96): the OS image header and the
// boot information a loader hands over in EBX with EAX = 0x2BADB002.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/guest_memory.h"
#include "base/layout.h"
#include "firmware/initrd.h"

namespace firmware {

inline constexpr uint32_t kMultibootHeaderMagic = 0x1badb002;      // spec §3.1.2
inline constexpr uint32_t kMultibootBootloaderMagic = 0x2badb002;  // spec §3.2, in EAX
inline constexpr uint64_t kMultibootSearchBytes = 8192;            // header lies in the first 8 KiB
// Header flags (spec §3.1.2).
inline constexpr uint32_t kMultibootPageAlignModules = 1u << 0;
inline constexpr uint32_t kMultibootMemoryInfo = 1u << 1;
inline constexpr uint32_t kMultibootVideoMode = 1u << 2;
inline constexpr uint32_t kMultibootAoutKludge = 1u << 16;
// Info flags (spec §3.3).
inline constexpr uint32_t kMbiMemory = 1u << 0;
inline constexpr uint32_t kMbiCmdline = 1u << 2;
inline constexpr uint32_t kMbiModules = 1u << 3;
inline constexpr uint32_t kMbiMmap = 1u << 6;
inline constexpr uint32_t kMbiLoaderName = 1u << 9;

// Where the info goes: the 4 KiB at kPvhStartInfo (the two protocols never
// share a boot). Info structure, then the mmap, then the module list. Strings
// (command line, module strings, loader name) go to the command-line area.
inline constexpr uint64_t kMultibootInfoAddress = base::kPvhStartInfo;
inline constexpr uint64_t kMultibootMmapAddress = base::kPvhStartInfo + 0x100;
inline constexpr uint64_t kMultibootModulesAddress = base::kPvhStartInfo + 0x400;
inline constexpr uint64_t kMultibootModulesEnd = base::kZeroPage;  // 192 modules of 16 bytes

struct MultibootHeader {
  uint64_t offset = 0;  // file offset of the magic
  uint32_t flags = 0;
  // Address fields, valid when flags has kMultibootAoutKludge.
  uint32_t header_addr = 0, load_addr = 0, load_end_addr = 0, bss_end_addr = 0, entry_addr = 0;
};

// Finds the header (4-byte aligned, in the first 8 KiB) whose checksum
// matches. nullopt when there is no magic at all; kBadImage when the magic is
// there but the checksum is wrong, the header is truncated, or it asks for
// features this loader cannot provide (flags bits 3-15).
[[nodiscard]] base::Result<std::optional<MultibootHeader>> FindMultibootHeader(
    std::span<const uint8_t> file, std::string_view name);

// An image loaded by its address fields (a.out kludge): validates them against
// the file and guest RAM and copies [load_addr, load_end_addr) from the file,
// zeroing up to bss_end_addr. Returns [load_addr, end).
struct KludgeLoad {
  uint64_t start = 0, end = 0;
};
// `floor` as for LoadElfSegments: multiboot kernels may load low (0).
[[nodiscard]] base::Result<KludgeLoad> LoadMultibootKludge(
    const base::GuestMemory& memory, std::span<const uint8_t> file, const MultibootHeader& header,
    std::string_view name, uint64_t floor = base::kBootStructuresEnd);

// One boot module: its bytes and its string.
struct MultibootModule {
  std::vector<uint8_t> data;
  std::string string;
};

// Where the info, its memory map, its module list and its strings go: the
// fixed addresses above, or (a kernel loaded over them) a block of
// kMultibootBlockSize bytes in free memory.
struct MultibootLayout {
  uint64_t info = kMultibootInfoAddress;
  uint64_t mmap = kMultibootMmapAddress;
  uint64_t modules = kMultibootModulesAddress;
  uint64_t modules_end = kMultibootModulesEnd;
  uint64_t strings = base::kCmdline;
  uint64_t strings_end = base::kCmdline + base::kCmdlineMax;
};
inline constexpr uint64_t kMultibootBlockSize = 0x1000 + base::kCmdlineMax;
MultibootLayout RelocatedMultibootLayout(uint64_t block);

// Places the modules page-aligned one after another above `kernel_end` (and
// 1 MiB), writes the command line and module strings and the info structure
// (mem_lower/mem_upper, cmdline, mods, mmap from BuildE820Map,
// boot_loader_name "vmm") where `layout` says. kConfig when strings exceed
// the string area or modules do not fit in memory.
[[nodiscard]] base::Result<std::vector<PlacedInitrd>> WriteMultibootInfo(
    const base::GuestMemory& memory, std::string_view cmdline,
    const std::vector<MultibootModule>& modules, uint64_t kernel_end,
    const MultibootLayout& layout = {});

}  // namespace firmware
