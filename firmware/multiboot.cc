#include "firmware/multiboot.h"

#include <algorithm>
#include <cstring>

#include "firmware/e820.h"

namespace firmware {
namespace {

using base::ErrorKind;
using base::MakeError;

template <typename T>
T Get(std::span<const uint8_t> file, uint64_t offset) {
  T value;
  std::memcpy(&value, file.data() + offset, sizeof(T));
  return value;
}

// Bits 0-15 are requirements (spec §3.1.2): a loader that cannot meet one
// must refuse. We align modules, give memory information, and tolerate a
// video-mode request (no framebuffer: the info has no video fields, which
// the spec allows the kernel to see).
constexpr uint32_t kSupportedRequirements =
    kMultibootPageAlignModules | kMultibootMemoryInfo | kMultibootVideoMode;

// spec §3.3: the boot information structure, up to the VBE fields.
struct MultibootInfo {
  uint32_t flags;
  uint32_t mem_lower;
  uint32_t mem_upper;
  uint32_t boot_device;
  uint32_t cmdline;
  uint32_t mods_count;
  uint32_t mods_addr;
  uint32_t syms[4];
  uint32_t mmap_length;
  uint32_t mmap_addr;
  uint32_t drives_length;
  uint32_t drives_addr;
  uint32_t config_table;
  uint32_t boot_loader_name;
  uint32_t apm_table;
  uint32_t vbe[6];
};
static_assert(sizeof(MultibootInfo) == 96);

struct [[gnu::packed]] MultibootMmapEntry {
  uint32_t size;  // of the rest of the entry: 20
  uint64_t addr;
  uint64_t len;
  uint32_t type;
};
static_assert(sizeof(MultibootMmapEntry) == 24);

struct MultibootModuleEntry {
  uint32_t mod_start;
  uint32_t mod_end;  // exclusive, as GRUB and QEMU set it
  uint32_t string;
  uint32_t reserved;
};
static_assert(sizeof(MultibootModuleEntry) == 16);

}  // namespace

base::Result<std::optional<MultibootHeader>> FindMultibootHeader(std::span<const uint8_t> file,
                                                                 std::string_view name) {
  const uint64_t end = std::min<uint64_t>(file.size(), kMultibootSearchBytes);
  for (uint64_t offset = 0; offset + 4 <= end; offset += 4) {
    if (Get<uint32_t>(file, offset) != kMultibootHeaderMagic) continue;
    if (offset + 12 > file.size()) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: multiboot header at {:#x} is truncated", name, offset);
    }
    MultibootHeader header;
    header.offset = offset;
    header.flags = Get<uint32_t>(file, offset + 4);
    const uint32_t checksum = Get<uint32_t>(file, offset + 8);
    if (static_cast<uint32_t>(kMultibootHeaderMagic + header.flags + checksum) != 0) {
      return base::MakeError(
          base::ErrorKind::kBadImage,
          "{}: multiboot header at {:#x} has a wrong checksum ({:#010x}; magic + "
          "flags + checksum must be 0, expected {:#010x})",
          name, offset, checksum, static_cast<uint32_t>(0u - kMultibootHeaderMagic - header.flags));
    }
    const uint32_t unsupported = header.flags & 0xffff & ~kSupportedRequirements;
    if (unsupported != 0) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: multiboot header requires features {:#x} this loader does not "
                             "provide (flags {:#x})",
                             name, unsupported, header.flags);
    }
    if (header.flags & kMultibootAoutKludge) {
      if (offset + 32 > file.size()) {
        return base::MakeError(
            base::ErrorKind::kBadImage,
            "{}: multiboot header at {:#x} is truncated before its address fields", name, offset);
      }
      header.header_addr = Get<uint32_t>(file, offset + 12);
      header.load_addr = Get<uint32_t>(file, offset + 16);
      header.load_end_addr = Get<uint32_t>(file, offset + 20);
      header.bss_end_addr = Get<uint32_t>(file, offset + 24);
      header.entry_addr = Get<uint32_t>(file, offset + 28);
    }
    return header;
  }
  return std::optional<MultibootHeader>();
}

base::Result<KludgeLoad> LoadMultibootKludge(const base::GuestMemory& memory,
                                             std::span<const uint8_t> file,
                                             const MultibootHeader& header, std::string_view name,
                                             uint64_t floor) {
  // spec §3.1.3: header_addr is where the magic lands; load_addr <= it; the
  // file offset of load_addr is header offset - (header_addr - load_addr).
  if (header.load_addr > header.header_addr) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: multiboot load_addr {:#x} is above header_addr {:#x}", name,
                           header.load_addr, header.header_addr);
  }
  const uint64_t before_header = header.header_addr - header.load_addr;
  if (before_header > header.offset) {
    return base::MakeError(
        base::ErrorKind::kBadImage,
        "{}: multiboot header_addr {:#x} - load_addr {:#x} reaches before the start "
        "of the file (header at offset {:#x})",
        name, header.header_addr, header.load_addr, header.offset);
  }
  const uint64_t file_offset = header.offset - before_header;
  uint64_t load_size = file.size() - file_offset;
  if (header.load_end_addr != 0) {
    if (header.load_end_addr < header.load_addr) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: multiboot load_end_addr {:#x} is below load_addr {:#x}", name,
                             header.load_end_addr, header.load_addr);
    }
    load_size = header.load_end_addr - header.load_addr;
    if (load_size > file.size() - file_offset) {
      return base::MakeError(
          base::ErrorKind::kBadImage,
          "{}: multiboot load range [{:#x}, {:#x}) needs {:#x} bytes from file offset "
          "{:#x}; the file has {:#x}",
          name, header.load_addr, header.load_end_addr, load_size, file_offset, file.size());
    }
  }
  const uint64_t load_end = uint64_t{header.load_addr} + load_size;
  uint64_t end = load_end;
  if (header.bss_end_addr != 0) {
    if (header.bss_end_addr < load_end) {
      return base::MakeError(
          base::ErrorKind::kBadImage,
          "{}: multiboot bss_end_addr {:#x} is below the end of the loaded image "
          "{:#x}",
          name, header.bss_end_addr, load_end);
    }
    end = header.bss_end_addr;
  }
  if (header.entry_addr < header.load_addr || header.entry_addr >= end) {
    return base::MakeError(
        base::ErrorKind::kBadImage,
        "{}: multiboot entry_addr {:#x} is outside the loaded image [{:#x}, {:#x})", name,
        header.entry_addr, header.load_addr, end);
  }
  if (header.load_addr < floor) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: multiboot image [{:#x}, {:#x}) overlaps the boot structures below "
                           "{:#x}",
                           name, header.load_addr, end, floor);
  }
  if (header.load_addr < base::kHighMemory && end > base::kEbdaStart) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: multiboot image [{:#x}, {:#x}) overlaps the reserved legacy area "
                           "[{:#x}, {:#x})",
                           name, header.load_addr, end, base::kEbdaStart, base::kHighMemory);
  }
  if (!memory.Contains(header.load_addr, end - header.load_addr)) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: multiboot image [{:#x}, {:#x}) lies outside guest RAM ({} MiB)",
                           name, header.load_addr, end, memory.ram_size() / base::MiB);
  }
  TRY(memory.Write(header.load_addr, file.subspan(file_offset, load_size)));
  TRY(memory.Fill(load_end, 0, end - load_end));
  return KludgeLoad{header.load_addr, end};
}

MultibootLayout RelocatedMultibootLayout(uint64_t block) {
  // The same order as the fixed page: info, mmap, module list; strings after.
  return {block,
          block + (kMultibootMmapAddress - kMultibootInfoAddress),
          block + (kMultibootModulesAddress - kMultibootInfoAddress),
          block + 0x1000,
          block + 0x1000,
          block + kMultibootBlockSize};
}

base::Result<std::vector<PlacedInitrd>> WriteMultibootInfo(
    const base::GuestMemory& memory, std::string_view cmdline,
    const std::vector<MultibootModule>& modules, uint64_t kernel_end,
    const MultibootLayout& layout) {
  if (modules.size() * sizeof(MultibootModuleEntry) > layout.modules_end - layout.modules) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "{} multiboot modules: at most {} are supported", modules.size(),
                           (layout.modules_end - layout.modules) / sizeof(MultibootModuleEntry));
  }
  // Strings, NUL-terminated, one after another in the string area.
  uint64_t string_at = layout.strings;
  auto put_string = [&](std::string_view text, std::string_view what) -> base::Result<uint32_t> {
    if (text.find('\0') != std::string_view::npos) {
      return base::MakeError(base::ErrorKind::kConfig, "{} contains a NUL byte", what);
    }
    if (text.size() + 1 > layout.strings_end - string_at) {
      return base::MakeError(
          base::ErrorKind::kConfig,
          "multiboot command line and module strings need more than {} bytes ({} "
          "is {} bytes)",
          layout.strings_end - layout.strings, what, text.size());
    }
    const uint64_t at = string_at;
    TRY(memory.Write(at, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
    TRY(memory.WriteObj(at + text.size(), uint8_t{0}));
    string_at += text.size() + 1;
    return static_cast<uint32_t>(at);
  };

  MultibootInfo info{};
  info.flags = kMbiMemory | kMbiCmdline | kMbiMmap | kMbiLoaderName;
  // mem_lower: KiB of RAM from 0 (max 640); mem_upper: KiB from 1 MiB to the
  // first hole (spec §3.3).
  info.mem_lower = static_cast<uint32_t>(std::min(memory.ram_size(), base::kEbdaStart) / 1024);
  const uint64_t low_end = LowRamEnd(memory);
  info.mem_upper =
      low_end > base::kHighMemory ? static_cast<uint32_t>((low_end - base::kHighMemory) / 1024) : 0;
  info.cmdline = TRY(put_string(cmdline, "the kernel command line"));
  info.boot_loader_name = TRY(put_string("vmm", "the boot loader name"));

  std::vector<PlacedInitrd> placed;
  uint64_t floor = kernel_end;
  for (size_t i = 0; i < modules.size(); ++i) {
    const auto& module = modules[i];
    const std::string what = fmt::format("module {} ({})", i, module.string);
    const PlacedInitrd where = TRY(PlaceLow(memory, module.data, what, floor, low_end));
    const uint32_t string = TRY(put_string(module.string, what));
    TRY(memory.WriteObj(
        layout.modules + i * sizeof(MultibootModuleEntry),
        MultibootModuleEntry{static_cast<uint32_t>(where.address),
                             static_cast<uint32_t>(where.address + where.size), string, 0}));
    placed.push_back(where);
    floor = where.address + where.size;
  }
  if (!modules.empty()) {
    info.flags |= kMbiModules;
    info.mods_count = static_cast<uint32_t>(modules.size());
    info.mods_addr = static_cast<uint32_t>(layout.modules);
  }

  const auto map = BuildE820Map(memory.ram_size());
  for (size_t i = 0; i < map.size(); ++i) {
    TRY(memory.WriteObj(layout.mmap + i * sizeof(MultibootMmapEntry),
                        MultibootMmapEntry{20, map[i].addr, map[i].size, map[i].type}));
  }
  info.mmap_addr = static_cast<uint32_t>(layout.mmap);
  info.mmap_length = static_cast<uint32_t>(map.size() * sizeof(MultibootMmapEntry));
  TRY(memory.WriteObj(layout.info, info));
  return placed;
}

}  // namespace firmware
