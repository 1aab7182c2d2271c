// Multiboot2 (Multiboot2 Specification version 2.0): the OS image header
// with its tags, and the boot information a loader hands over in EBX with
// EAX = 0x36d76289 (docs/boot-protocols.md, "Multiboot2").
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/guest_memory.h"
#include "firmware/boot.h"
#include "firmware/initrd.h"
#include "firmware/multiboot.h"

namespace firmware {

inline constexpr uint32_t kMultiboot2HeaderMagic = 0xe85250d6;      // spec §3.1.1
inline constexpr uint32_t kMultiboot2BootloaderMagic = 0x36d76289;  // spec §3.3, in EAX
inline constexpr uint32_t kMultiboot2ArchI386 = 0;                  // 32-bit protected mode
inline constexpr uint64_t kMultiboot2SearchBytes = 32768;           // header in the first 32 KiB

// Header tag types (spec §3.1.3 .. §3.1.13).
inline constexpr uint16_t kMb2HeaderTagEnd = 0;
inline constexpr uint16_t kMb2HeaderTagInfoRequest = 1;
inline constexpr uint16_t kMb2HeaderTagAddress = 2;
inline constexpr uint16_t kMb2HeaderTagEntry = 3;
inline constexpr uint16_t kMb2HeaderTagConsoleFlags = 4;
inline constexpr uint16_t kMb2HeaderTagFramebuffer = 5;
inline constexpr uint16_t kMb2HeaderTagModuleAlign = 6;
inline constexpr uint16_t kMb2HeaderTagEfiBootServices = 7;
inline constexpr uint16_t kMb2HeaderTagEntryEfi32 = 8;
inline constexpr uint16_t kMb2HeaderTagEntryEfi64 = 9;
inline constexpr uint16_t kMb2HeaderTagRelocatable = 10;
inline constexpr uint16_t kMb2HeaderTagOptional = 1;  // the tag's flags bit 0

// Boot information tag types (spec §3.6).
inline constexpr uint32_t kMb2TagEnd = 0;
inline constexpr uint32_t kMb2TagCmdline = 1;
inline constexpr uint32_t kMb2TagLoaderName = 2;
inline constexpr uint32_t kMb2TagModule = 3;
inline constexpr uint32_t kMb2TagBasicMeminfo = 4;
inline constexpr uint32_t kMb2TagMmap = 6;
inline constexpr uint32_t kMb2TagFramebuffer = 8;
inline constexpr uint32_t kMb2TagElfSections = 9;
inline constexpr uint32_t kMb2TagAcpiOld = 14;  // a copy of the RSDP's first 20 bytes
inline constexpr uint32_t kMb2TagAcpiNew = 15;  // a copy of the whole (36-byte) RSDP
inline constexpr uint32_t kMb2TagLoadBaseAddr = 21;

struct Multiboot2Header {
  uint64_t offset = 0;  // file offset of the magic
  uint32_t header_length = 0;
  // The address tag (spec §3.1.5): the image is loaded by these fields.
  bool has_address = false;
  uint32_t header_addr = 0, load_addr = 0, load_end_addr = 0, bss_end_addr = 0;
  std::optional<uint32_t> entry_addr;  // the entry address tag (spec §3.1.6)
  bool relocatable = false;            // tag 10 present (vmm loads at the preferred address)
  uint32_t reloc_min = 0, reloc_max = 0;
  std::vector<uint32_t> requested;  // required info tag types (information request)
  // The framebuffer tag (spec §3.1.10): the kernel wants one, preferably of
  // this size and depth (0: no preference); `framebuffer_required` when the
  // tag is not optional.
  bool framebuffer_tag = false, framebuffer_required = false;
  uint32_t framebuffer_width = 0, framebuffer_height = 0, framebuffer_depth = 0;
};

// Finds the header (8-byte aligned, in the first 32 KiB) and validates it:
// architecture 0, checksum, header_length inside the file, every tag's size,
// and that each required tag (flags bit 0 clear) is one vmm serves.
// nullopt when there is no magic; kBadImage naming the field and value
// otherwise.
[[nodiscard]] base::Result<std::optional<Multiboot2Header>> FindMultiboot2Header(
    std::span<const uint8_t> file, std::string_view name);

// The ELF section header table for the ELF-symbols tag (spec §3.6.7).
struct Multiboot2ElfSections {
  uint32_t num = 0, entsize = 0, shndx = 0;
  std::vector<uint8_t> headers;  // num * entsize bytes as in the file
};

// What the info gets besides the modules.
struct Multiboot2InfoConfig {
  std::string cmdline;  // already beginning with the kernel path
  std::optional<Multiboot2ElfSections> elf_sections;
  uint32_t load_base = 0;  // the load base address tag
  uint64_t kernel_end = 0;
  // The RSDP as written (firmware/acpi.h), 36 bytes; empty without ACPI
  // tables, and then no ACPI tags.
  std::vector<uint8_t> rsdp;
  // The framebuffer tag (type 8, RGB) when there is one.
  std::optional<Framebuffer> framebuffer;
};

struct Multiboot2Placement {
  std::vector<PlacedInitrd> modules;
  uint64_t info_address = 0;
  uint64_t info_size = 0;
};

// Places the modules page-aligned one after another above `kernel_end`,
// then the info structure (page-aligned) above the last module: command
// line, boot loader name "vmm", modules, basic meminfo, memory map (from
// BuildE820Map), ELF sections when given, ACPI old and new RSDP when given,
// load base address, end tag.
// kBadImage (naming the module) when modules or info do not fit below
// min(RAM, 3 GiB).
[[nodiscard]] base::Result<Multiboot2Placement> WriteMultiboot2Info(
    const base::GuestMemory& memory, const Multiboot2InfoConfig& config,
    const std::vector<MultibootModule>& modules);

// The section header table of an ELF file, when it has one inside the file.
std::optional<Multiboot2ElfSections> ReadElfSectionHeaders(std::span<const uint8_t> file);

}  // namespace firmware
