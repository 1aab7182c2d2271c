#include "firmware/multiboot2.h"

#include <algorithm>
#include <cstring>

#include "firmware/e820.h"
#include "firmware/elf.h"

namespace firmware {
namespace {

template <typename T>
T Get(std::span<const uint8_t> file, uint64_t offset) {
  T value;
  std::memcpy(&value, file.data() + offset, sizeof(T));
  return value;
}

constexpr uint64_t Align8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

// Info tags vmm can fill in; ELF sections only for an ELF image and the
// ACPI RSDP copies only with ACPI tables (both checked at boot).
bool ServedInfoTag(uint32_t type) {
  switch (type) {
    case kMb2TagCmdline:
    case kMb2TagLoaderName:
    case kMb2TagModule:
    case kMb2TagBasicMeminfo:
    case kMb2TagMmap:
    case kMb2TagElfSections:
    case kMb2TagAcpiOld:
    case kMb2TagAcpiNew:
    case kMb2TagFramebuffer:
    case kMb2TagLoadBaseAddr:
      return true;
    default:
      return false;
  }
}

// The info structure built in host memory, then copied in one write.
class InfoBuilder {
 public:
  InfoBuilder() { bytes_.resize(8); }  // total_size, reserved

  template <typename T>
  void Put(const T& value) {
    const size_t at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &value, sizeof(T));
  }
  void PutBytes(std::span<const uint8_t> data) {
    bytes_.insert(bytes_.end(), data.begin(), data.end());
  }
  void PutString(std::string_view text) {
    bytes_.insert(bytes_.end(), text.begin(), text.end());
    bytes_.push_back(0);
  }
  // Starts a tag: type and a size patched by EndTag.
  void BeginTag(uint32_t type) {
    tag_start_ = bytes_.size();
    Put(type);
    Put(uint32_t{0});
  }
  void EndTag() {
    const uint32_t size = static_cast<uint32_t>(bytes_.size() - tag_start_);
    std::memcpy(bytes_.data() + tag_start_ + 4, &size, 4);
    bytes_.resize(Align8(bytes_.size()));  // tags are 8-byte aligned (spec §3.6.1)
  }
  std::vector<uint8_t> Finish() {
    BeginTag(kMb2TagEnd);
    EndTag();
    const uint32_t total = static_cast<uint32_t>(bytes_.size());
    std::memcpy(bytes_.data(), &total, 4);
    return std::move(bytes_);
  }

 private:
  std::vector<uint8_t> bytes_;
  size_t tag_start_ = 0;
};

}  // namespace

base::Result<std::optional<Multiboot2Header>> FindMultiboot2Header(std::span<const uint8_t> file,
                                                                   std::string_view name) {
  const uint64_t end = std::min<uint64_t>(file.size(), kMultiboot2SearchBytes);
  for (uint64_t offset = 0; offset + 4 <= end; offset += 8) {
    if (Get<uint32_t>(file, offset) != kMultiboot2HeaderMagic) continue;
    if (offset + 16 > file.size()) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: multiboot2 header at {:#x} is truncated", name, offset);
    }
    Multiboot2Header header;
    header.offset = offset;
    const uint32_t architecture = Get<uint32_t>(file, offset + 4);
    header.header_length = Get<uint32_t>(file, offset + 8);
    const uint32_t checksum = Get<uint32_t>(file, offset + 12);
    const uint32_t sum = kMultiboot2HeaderMagic + architecture + header.header_length + checksum;
    if (sum != 0) {
      return base::MakeError(
          base::ErrorKind::kBadImage,
          "{}: multiboot2 header at {:#x}: checksum {:#010x} is wrong (magic + architecture + "
          "header_length + checksum must be 0, expected {:#010x})",
          name, offset, checksum, static_cast<uint32_t>(checksum - sum));
    }
    if (architecture != kMultiboot2ArchI386) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: multiboot2 header at {:#x}: architecture {} is not supported "
                             "(only 0, i386 protected mode)",
                             name, offset, architecture);
    }
    if (header.header_length < 16 + 8 || header.header_length > file.size() - offset) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: multiboot2 header at {:#x}: header_length {:#x} is out of range "
                             "(at least 0x18, the file has {:#x} bytes from the header)",
                             name, offset, header.header_length, file.size() - offset);
    }
    const uint64_t tags_end = offset + header.header_length;
    uint64_t at = offset + 16;
    bool ended = false;
    while (at + 8 <= tags_end) {
      const uint16_t type = Get<uint16_t>(file, at);
      const uint16_t flags = Get<uint16_t>(file, at + 2);
      const uint32_t size = Get<uint32_t>(file, at + 4);
      const bool optional = (flags & kMb2HeaderTagOptional) != 0;
      if (size < 8 || size > tags_end - at) {
        return base::MakeError(base::ErrorKind::kBadImage,
                               "{}: multiboot2 header tag {} at {:#x}: size {} is out of range "
                               "(8 to the end of the header at {:#x})",
                               name, type, at, size, tags_end);
      }
      auto want_size = [&](uint32_t expected) -> base::Result<void> {
        if (size == expected) return {};
        return base::MakeError(base::ErrorKind::kBadImage,
                               "{}: multiboot2 header tag {} at {:#x}: size {} (expected {})", name,
                               type, at, size, expected);
      };
      auto refuse = [&](std::string_view why) {
        return base::MakeError(base::ErrorKind::kBadImage,
                               "{}: multiboot2 header tag {} at {:#x} is required (flags {:#x}) "
                               "but {}",
                               name, type, at, flags, why);
      };
      if (type == kMb2HeaderTagEnd) {
        ended = true;
        break;
      }
      switch (type) {
        case kMb2HeaderTagInfoRequest:
          if ((size - 8) % 4 != 0) {
            return base::MakeError(base::ErrorKind::kBadImage,
                                   "{}: multiboot2 information request tag at {:#x}: size {} is "
                                   "not 8 + a multiple of 4",
                                   name, at, size);
          }
          for (uint64_t i = at + 8; i < at + size; i += 4) {
            const uint32_t requested = Get<uint32_t>(file, i);
            if (optional) continue;  // spec §3.1.4: the loader may ignore them
            if (!ServedInfoTag(requested)) {
              return base::MakeError(
                  base::ErrorKind::kBadImage,
                  "{}: multiboot2 information request tag at {:#x} requires info tag {}, which "
                  "vmm cannot provide (it serves 1, 2, 3, 4, 6, 8, 9, 14, 15 and 21)",
                  name, at, requested);
            }
            header.requested.push_back(requested);
          }
          break;
        case kMb2HeaderTagAddress:
          TRY(want_size(24));
          header.has_address = true;
          header.header_addr = Get<uint32_t>(file, at + 8);
          header.load_addr = Get<uint32_t>(file, at + 12);
          header.load_end_addr = Get<uint32_t>(file, at + 16);
          header.bss_end_addr = Get<uint32_t>(file, at + 20);
          break;
        case kMb2HeaderTagEntry:
          TRY(want_size(12));
          header.entry_addr = Get<uint32_t>(file, at + 8);
          break;
        case kMb2HeaderTagConsoleFlags: {
          TRY(want_size(12));
          const uint32_t console_flags = Get<uint32_t>(file, at + 8);
          // Bit 0: a console the image supports must be present and
          // described; vmm has no EGA text console (only COM1).
          if ((console_flags & 1) != 0 && !optional) {
            return refuse(
                fmt::format("console_flags {:#x} require a console vmm does not have (no EGA text)",
                            console_flags));
          }
          break;
        }
        case kMb2HeaderTagFramebuffer:
          TRY(want_size(20));
          header.framebuffer_tag = true;
          header.framebuffer_required = !optional;
          header.framebuffer_width = Get<uint32_t>(file, at + 8);
          header.framebuffer_height = Get<uint32_t>(file, at + 12);
          header.framebuffer_depth = Get<uint32_t>(file, at + 16);
          break;
        case kMb2HeaderTagModuleAlign:
          break;  // modules are always page-aligned
        case kMb2HeaderTagRelocatable:
          TRY(want_size(24));
          header.relocatable = true;
          header.reloc_min = Get<uint32_t>(file, at + 8);
          header.reloc_max = Get<uint32_t>(file, at + 12);
          break;
        case kMb2HeaderTagEfiBootServices:
        case kMb2HeaderTagEntryEfi32:
        case kMb2HeaderTagEntryEfi64:
          if (!optional) return refuse("vmm boots without EFI");
          break;
        default:
          if (!optional) return refuse("vmm does not know this tag type");
          break;
      }
      at += Align8(size);
    }
    if (!ended) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: multiboot2 header at {:#x} has no end tag (type 0) within "
                             "header_length {:#x}",
                             name, offset, header.header_length);
    }
    return header;
  }
  return std::optional<Multiboot2Header>();
}

std::optional<Multiboot2ElfSections> ReadElfSectionHeaders(std::span<const uint8_t> file) {
  if (!LooksLikeElf(file) || file.size() < 0x40) return std::nullopt;
  const bool is64 = file[4] == 2;
  const uint64_t shoff = is64 ? Get<uint64_t>(file, 0x28) : Get<uint32_t>(file, 0x20);
  const uint16_t entsize = Get<uint16_t>(file, is64 ? 0x3a : 0x2e);
  const uint16_t num = Get<uint16_t>(file, is64 ? 0x3c : 0x30);
  const uint16_t shndx = Get<uint16_t>(file, is64 ? 0x3e : 0x32);
  if (num == 0 || entsize == 0 || shoff > file.size() ||
      uint64_t{num} * entsize > file.size() - shoff) {
    return std::nullopt;
  }
  Multiboot2ElfSections sections;
  sections.num = num;
  sections.entsize = entsize;
  sections.shndx = shndx;
  const auto table = file.subspan(shoff, uint64_t{num} * entsize);
  sections.headers.assign(table.begin(), table.end());
  return sections;
}

base::Result<Multiboot2Placement> WriteMultiboot2Info(const base::GuestMemory& memory,
                                                      const Multiboot2InfoConfig& config,
                                                      const std::vector<MultibootModule>& modules) {
  const uint64_t low_end = LowRamEnd(memory);
  Multiboot2Placement placement;
  uint64_t floor = config.kernel_end;
  for (size_t i = 0; i < modules.size(); ++i) {
    const std::string what = fmt::format("multiboot2 module {} ({})", i, modules[i].string);
    auto where = PlaceLow(memory, modules[i].data, what, floor, low_end);
    if (!where) return base::MakeError(base::ErrorKind::kBadImage, "{}", where.error().message());
    placement.modules.push_back(*where);
    floor = where->address + where->size;
  }

  InfoBuilder info;
  info.BeginTag(kMb2TagCmdline);
  info.PutString(config.cmdline);
  info.EndTag();
  info.BeginTag(kMb2TagLoaderName);
  info.PutString("vmm");
  info.EndTag();
  for (size_t i = 0; i < modules.size(); ++i) {
    info.BeginTag(kMb2TagModule);
    info.Put(static_cast<uint32_t>(placement.modules[i].address));
    info.Put(static_cast<uint32_t>(placement.modules[i].address + placement.modules[i].size));
    info.PutString(modules[i].string);
    info.EndTag();
  }
  // As in multiboot v1: mem_lower KiB from 0 (at most 640), mem_upper KiB
  // from 1 MiB to the first hole.
  info.BeginTag(kMb2TagBasicMeminfo);
  info.Put(static_cast<uint32_t>(std::min(memory.ram_size(), base::kEbdaStart) / 1024));
  info.Put(static_cast<uint32_t>(low_end > base::kHighMemory ? (low_end - base::kHighMemory) / 1024
                                                             : 0));
  info.EndTag();
  info.BeginTag(kMb2TagMmap);
  info.Put(uint32_t{24});  // entry_size
  info.Put(uint32_t{0});   // entry_version
  for (const auto& entry : BuildE820Map(memory.ram_size())) {
    info.Put(entry.addr);
    info.Put(entry.size);
    info.Put(entry.type);  // e820 types are the spec's types 1..5
    info.Put(uint32_t{0});
  }
  info.EndTag();
  if (config.elf_sections) {
    // GRUB's layout (u32 num, entsize, shndx), which kernels read; the
    // spec's text shows u16 fields.
    info.BeginTag(kMb2TagElfSections);
    info.Put(config.elf_sections->num);
    info.Put(config.elf_sections->entsize);
    info.Put(config.elf_sections->shndx);
    info.PutBytes(config.elf_sections->headers);
    info.EndTag();
  }
  if (config.framebuffer) {
    // Spec §3.6.11: direct RGB colour, the field positions and sizes of
    // XRGB8888.
    const Framebuffer& fb = *config.framebuffer;
    info.BeginTag(kMb2TagFramebuffer);
    info.Put(fb.address);
    info.Put(fb.pitch);
    info.Put(fb.width);
    info.Put(fb.height);
    info.Put(uint8_t{32});  // bpp
    info.Put(uint8_t{1});   // framebuffer_type: direct RGB
    info.Put(uint16_t{0});  // reserved
    for (uint8_t v : {uint8_t{16}, uint8_t{8}, uint8_t{8}, uint8_t{8}, uint8_t{0}, uint8_t{8}}) {
      info.Put(v);  // red position, size; green position, size; blue position, size
    }
    info.EndTag();
  }
  if (!config.rsdp.empty()) {
    // Spec §3.6.12-13: copies of the RSDP, not its address. The first 20
    // bytes are the ACPI 1.0 structure, with its own checksum.
    constexpr size_t kRsdpV1Bytes = 20;
    info.BeginTag(kMb2TagAcpiOld);
    info.PutBytes(std::span(config.rsdp).first(std::min(kRsdpV1Bytes, config.rsdp.size())));
    info.EndTag();
    info.BeginTag(kMb2TagAcpiNew);
    info.PutBytes(config.rsdp);
    info.EndTag();
  }
  info.BeginTag(kMb2TagLoadBaseAddr);
  info.Put(config.load_base);
  info.EndTag();
  const std::vector<uint8_t> bytes = info.Finish();

  constexpr uint64_t kPage = 4096;
  const uint64_t address = (std::max(floor, base::kHighMemory) + kPage - 1) & ~(kPage - 1);
  if (address > low_end || bytes.size() > low_end - address) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "multiboot2 boot information ({} bytes) does not fit in guest memory "
                           "between {:#x} (end of the kernel and modules) and {:#x}",
                           bytes.size(), address, low_end);
  }
  TRY(memory.Write(address, bytes));
  placement.info_address = address;
  placement.info_size = bytes.size();
  return placement;
}

}  // namespace firmware
