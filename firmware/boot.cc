#include "firmware/boot.h"

#include <algorithm>
#include <iterator>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include "base/layout.h"
#include "firmware/bootboot.h"
#include "firmware/bzimage.h"
#include "firmware/cpu_setup.h"
#include "firmware/elf.h"
#include "firmware/image_file.h"
#include "firmware/initrd.h"
#include "firmware/limine.h"
#include "firmware/mptable.h"
#include "firmware/multiboot.h"
#include "firmware/multiboot2.h"
#include "firmware/pvh.h"
#include "firmware/unpack.h"
#include "firmware/zero_page.h"

namespace firmware {
namespace {

using base::ErrorKind;
using base::MakeError;

using File = std::span<const uint8_t>;

// The one initrd of a non-multiboot protocol, placed high in [floor, limit),
// or above the MMIO hole when it does not fit there and `above_4g`.
base::Result<std::optional<PlacedInitrd>> LoadSingleInitrd(const base::GuestMemory& memory,
                                                           const BootConfig& config,
                                                           BootProtocol protocol, uint64_t floor,
                                                           uint64_t limit, bool above_4g) {
  if (config.initrd_paths.empty()) return std::optional<PlacedInitrd>();
  if (config.initrd_paths.size() > 1) {
    return base::MakeError(
        base::ErrorKind::kConfig,
        "{} initrds given: the {} protocol takes one (only multiboot takes several, "
        "as modules)",
        config.initrd_paths.size(), BootProtocolName(protocol));
  }
  return TRY(LoadInitrdHigh(memory, config.initrd_paths[0], floor, limit, above_4g));
}

// The zero page of the Linux-style paths (elf64, bzimage, bzimage-unpacked):
// the command line at kCmdline, the initrd, and the bzImage's setup header
// (empty for a vmlinux, which gets a synthetic one).
base::Result<void> WriteLinuxZeroPage(const base::GuestMemory& memory,
                                      std::span<const uint8_t> setup_header, uint64_t cmdline_size,
                                      const std::optional<PlacedInitrd>& initrd, uint64_t rsdp,
                                      const std::optional<Framebuffer>& framebuffer) {
  ZeroPageConfig zero_page;
  zero_page.setup_header = setup_header;
  zero_page.ram_size = memory.ram_size();
  zero_page.cmdline_address = base::kCmdline;
  zero_page.cmdline_size = cmdline_size;
  zero_page.acpi_rsdp = rsdp;
  zero_page.framebuffer = framebuffer;
  if (initrd) {
    zero_page.initrd_address = initrd->address;
    zero_page.initrd_size = initrd->size;
  }
  return WriteZeroPage(memory, zero_page);
}

void NoteInitrd(BootInfo& info, const std::optional<PlacedInitrd>& initrd) {
  if (!initrd) return;
  info.initrd_start = initrd->address;
  info.initrd_end = initrd->address + initrd->size;
  info.description += fmt::format(", initrd at {:#x} ({} bytes)", initrd->address, initrd->size);
}

// ELF64 without PVH (or with, when the 64-bit path wins; docs/architecture.md "Boot
// protocols"): segments by p_paddr, long mode at e_entry, RSI = zero page.
base::Result<BootInfo> BootElf64(const base::GuestMemory& memory, const BootConfig& config,
                                 uint64_t rsdp, File file, const ElfImage& elf,
                                 std::string_view name) {
  TRY(CheckEntryInExecutableSegment(elf, elf.entry, "e_entry", name));
  TRY(LoadElfSegments(memory, file, elf, name));
  const uint64_t cmdline_size =
      TRY(WriteCmdline(memory, config.cmdline, base::kCmdline, base::kCmdlineMax));
  // boot_params.ext_ramdisk_image carries bits 63:32 (boot.rst).
  const auto initrd =
      TRY(LoadSingleInitrd(memory, config, BootProtocol::kElf64,
                           std::max(elf.highest, base::kHighMemory), UINT64_MAX, true));
  TRY(WriteLinuxZeroPage(memory, {}, cmdline_size, initrd, rsdp, config.framebuffer));

  BootInfo info;
  info.protocol = BootProtocol::kElf64;
  info.cpu = TRY(SetUpLongMode(memory, elf.entry));
  info.cpu.rsi = base::kZeroPage;
  info.boot_params = base::kZeroPage;
  info.kernel_start = elf.lowest;
  info.kernel_end = elf.highest;
  info.description = fmt::format("ELF64 entry {:#x}, {} segment{}", elf.entry, elf.loads.size(),
                                 elf.loads.size() == 1 ? "" : "s");
  NoteInitrd(info, initrd);
  return info;
}

// PVH (Xen docs/misc/pvh.pandoc): segments by p_paddr, 32-bit protected mode
// at the note's entry, EBX = hvm_start_info.
base::Result<BootInfo> BootPvh(const base::GuestMemory& memory, const BootConfig& config,
                               uint64_t rsdp, File file, const ElfImage& elf,
                               std::string_view name) {
  const uint32_t entry = *elf.pvh_entry;
  TRY(CheckEntryInExecutableSegment(elf, entry, "PVH entry", name));
  TRY(LoadElfSegments(memory, file, elf, name));
  TRY(WriteCmdline(memory, config.cmdline, base::kCmdline, base::kCmdlineMax));
  // hvm_modlist_entry.paddr is 64 bits wide.
  const auto initrd =
      TRY(LoadSingleInitrd(memory, config, BootProtocol::kPvh,
                           std::max(elf.highest, base::kHighMemory), UINT64_MAX, true));
  TRY(WritePvhStartInfo(memory, base::kCmdline, initrd, rsdp));

  BootInfo info;
  info.protocol = BootProtocol::kPvh;
  info.cpu = TRY(SetUpProtectedMode(memory, entry));
  info.cpu.rbx = base::kPvhStartInfo;
  info.boot_params = base::kPvhStartInfo;
  info.kernel_start = elf.lowest;
  info.kernel_end = elf.highest;
  info.description =
      fmt::format("PVH entry {:#x} ({}), {} segment{}", entry, elf.is64 ? "ELF64" : "ELF32",
                  elf.loads.size(), elf.loads.size() == 1 ? "" : "s");
  NoteInitrd(info, initrd);
  return info;
}

// What the bzImage paths share: the command line (within the header's
// cmdline_size), the initrd (above `kernel_end`, below initrd_addr_max, or
// above 4 GiB with XLF_CAN_BE_LOADED_ABOVE_4G) and the zero page built from
// the image's setup header.
base::Result<std::optional<PlacedInitrd>> WriteBzImageBootParams(
    const base::GuestMemory& memory, const BootConfig& config, File file,
    const BzImageHeader& header, std::string_view name, BootProtocol protocol, uint64_t kernel_end,
    uint64_t rsdp) {
  // boot.rst "cmdline_size": the maximum size without the terminating zero.
  const uint64_t cmdline_limit =
      std::min<uint64_t>(uint64_t{header.cmdline_size} + 1, base::kCmdlineMax);
  const uint64_t cmdline_size =
      TRY_CTX(WriteCmdline(memory, config.cmdline, base::kCmdline, cmdline_limit),
              fmt::format("{} (cmdline_size {:#x})", name, header.cmdline_size));
  // initrd_addr_max is the address of the highest byte the initrd may use.
  const auto initrd = TRY(
      LoadSingleInitrd(memory, config, protocol, kernel_end, uint64_t{header.initrd_addr_max} + 1,
                       (header.xloadflags & boot_params::kXlfCanBeLoadedAbove4G) != 0));
  TRY(WriteLinuxZeroPage(
      memory,
      file.subspan(boot_params::kSetupHeader, header.header_end - boot_params::kSetupHeader),
      cmdline_size, initrd, rsdp, config.framebuffer));
  return initrd;
}

// Linux 64-bit boot protocol (boot.rst "64-bit Boot Protocol"): the
// protected-mode kernel at pref_address, zero page from the setup header,
// entry at load address + 0x200 in long mode, RSI = zero page.
base::Result<BootInfo> BootBzImage(const base::GuestMemory& memory, const BootConfig& config,
                                   uint64_t rsdp, File file, std::string_view name) {
  const BzImageHeader header = TRY(ParseBzImage(file, name));
  const uint64_t load = header.load_address();
  const uint64_t load_end = header.load_end();
  if (load_end > LowRamEnd(memory) || !memory.Contains(load, load_end - load)) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "guest memory of {} MiB is too small for {}: the kernel needs RAM over "
                           "[{:#x}, {:#x}) (pref_address + init_size)",
                           memory.ram_size() / base::MiB, name, load, load_end);
  }
  TRY(memory.Write(load, file.subspan(header.setup_size)));
  const auto initrd = TRY(WriteBzImageBootParams(memory, config, file, header, name,
                                                 BootProtocol::kBzImage, load_end, rsdp));

  BootInfo info;
  info.protocol = BootProtocol::kBzImage;
  info.cpu = TRY(SetUpLongMode(memory, load + kBzImage64BitEntryOffset));
  info.cpu.rsi = base::kZeroPage;
  info.boot_params = base::kZeroPage;
  info.kernel_start = load;
  info.kernel_end = load_end;
  info.description =
      fmt::format("bzImage protocol {}.{:02} \"{}\", 64-bit entry {:#x}", header.version >> 8,
                  header.version & 0xff, header.kernel_version, load + kBzImage64BitEntryOffset);
  NoteInitrd(info, initrd);
  return info;
}

// A bzImage unpacked on the host (firmware/unpack.h): the vmlinux in its
// payload loaded by p_paddr and entered at e_entry in long mode, as an ELF64
// kernel, with the zero page and the command-line and initrd limits of the
// bzImage's setup header, as the kernel's own decompressor would leave them.
base::Result<BootInfo> BootBzImageUnpacked(const base::GuestMemory& memory,
                                           const BootConfig& config, uint64_t rsdp, File file,
                                           std::string_view name) {
  const BzImageHeader header = TRY(ParseBzImage(file, name));
  if (header.payload_length == 0) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: the setup header names no payload (payload_length 0); use "
                           "--boot-protocol bzimage",
                           name);
  }
  const File payload =
      file.subspan(header.setup_size + header.payload_offset, header.payload_length);
  const PayloadFormat format = DetectPayloadFormat(payload);
  const std::vector<uint8_t> vmlinux = TRY(UnpackPayload(payload, name));
  const std::string inner = fmt::format("{} (its {} payload)", name, PayloadFormatName(format));
  const ElfImage elf = TRY(ParseElf(vmlinux, inner, ElfClass::k64));
  TRY(CheckEntryInExecutableSegment(elf, elf.entry, "e_entry", inner));
  // The kernel uses init_size bytes from where it runs (its BSS, brk and
  // page tables), which may reach past the ELF's last segment.
  const uint64_t end = std::max(elf.highest, elf.lowest + header.init_size);
  if (end > LowRamEnd(memory) || !memory.Contains(elf.lowest, end - elf.lowest)) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "guest memory of {} MiB is too small for {}: the kernel needs RAM over "
                           "[{:#x}, {:#x})",
                           memory.ram_size() / base::MiB, inner, elf.lowest, end);
  }
  TRY(LoadElfSegments(memory, vmlinux, elf, inner));
  const auto initrd = TRY(WriteBzImageBootParams(memory, config, file, header, name,
                                                 BootProtocol::kBzImageUnpacked, end, rsdp));

  BootInfo info;
  info.protocol = BootProtocol::kBzImageUnpacked;
  info.cpu = TRY(SetUpLongMode(memory, elf.entry));
  info.cpu.rsi = base::kZeroPage;
  info.boot_params = base::kZeroPage;
  info.kernel_start = elf.lowest;
  info.kernel_end = end;
  info.description = fmt::format(
      "bzImage protocol {}.{:02} \"{}\" unpacked by vmm ({}, {} MiB), ELF64 entry {:#x}",
      header.version >> 8, header.version & 0xff, header.kernel_version, PayloadFormatName(format),
      vmlinux.size() >> 20, elf.entry);
  NoteInitrd(info, initrd);
  return info;
}

// A kernel that loads low (below kBootStructuresEnd, docs/boot-protocols.md
// "Kernels that load low") gets the boot structures in a block of `size`
// bytes at the first page boundary above `floor` (its end, its modules,
// 1 MiB), below min(RAM, 3 GiB).
base::Result<uint64_t> RelocatedBlock(const base::GuestMemory& memory, uint64_t floor,
                                      uint64_t size, std::string_view name) {
  constexpr uint64_t kPage = 4096;
  const uint64_t block = (std::max(floor, base::kHighMemory) + kPage - 1) & ~(kPage - 1);
  const uint64_t limit = LowRamEnd(memory);
  if (block > limit || size > limit - block) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "guest memory of {} MiB is too small for {}: the boot structures moved "
                           "out of its way need {:#x} bytes from {:#x}",
                           memory.ram_size() / base::MiB, name, size, block);
  }
  TRY(memory.Fill(block, 0, size));
  return block;
}

// Where the modules of a multiboot v1 kernel ending at `kernel_end` end
// (WriteMultibootInfo places them page-aligned, one after another, from 1 MiB
// up).
uint64_t MultibootModulesEnd(uint64_t kernel_end, const std::vector<MultibootModule>& modules) {
  uint64_t floor = std::max(kernel_end, base::kHighMemory);
  for (const auto& module : modules)
    floor = ((floor + 4095) & ~uint64_t{4095}) + module.data.size();
  return floor;
}

// Multiboot v1 (spec §3.2 "Machine state"): the image by its address fields
// or as ELF32, 32-bit protected mode, EAX = 0x2BADB002, EBX = info.
base::Result<BootInfo> BootMultiboot(const base::GuestMemory& memory, const BootConfig& config,
                                     File file, const MultibootHeader& header,
                                     std::string_view name) {
  uint64_t start = 0, end = 0, entry = 0;
  std::string how;
  if (header.flags & kMultibootAoutKludge) {
    const KludgeLoad load = TRY(LoadMultibootKludge(memory, file, header, name, 0));
    start = load.start;
    end = load.end;
    entry = header.entry_addr;
    how = "address fields";
  } else {
    if (!LooksLikeElf(file)) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: multiboot image is not ELF and its header has no address fields "
                             "(flags bit 16 clear)",
                             name);
    }
    const ElfImage elf = TRY(ParseElf(file, name, ElfClass::k32));
    if (elf.entry > UINT32_MAX || elf.highest > UINT32_MAX) {
      return base::MakeError(base::ErrorKind::kBadImage, "{}: multiboot ELF image lies above 4 GiB",
                             name);
    }
    TRY(CheckEntryInExecutableSegment(elf, elf.entry, "e_entry", name));
    TRY(LoadElfSegments(memory, file, elf, name, 0));
    start = elf.lowest;
    end = elf.highest;
    entry = elf.entry;
    how = "ELF32";
  }
  std::vector<MultibootModule> modules;
  for (const auto& path : config.initrd_paths) {
    modules.push_back({TRY(ReadImageFile(path, "initrd", memory.ram_size())), path});
  }
  // As GRUB and QEMU: the command line starts with the kernel's path.
  std::string cmdline = config.kernel_path;
  if (!config.cmdline.empty()) cmdline += " " + config.cmdline;
  MultibootLayout layout;
  ProtectedModeLayout cpu_layout;
  const bool low = start < base::kBootStructuresEnd;
  if (low) {
    const uint64_t block = TRY(RelocatedBlock(memory, MultibootModulesEnd(end, modules),
                                              kMultibootBlockSize + kRelocatedBootBlock, name));
    layout = RelocatedMultibootLayout(block);
    cpu_layout = RelocatedProtectedModeLayout(block + kMultibootBlockSize);
  }
  const auto placed = TRY(WriteMultibootInfo(memory, cmdline, modules, end, layout));

  BootInfo info;
  info.protocol = BootProtocol::kMultiboot;
  info.cpu = TRY(SetUpProtectedMode(memory, static_cast<uint32_t>(entry), cpu_layout));
  info.cpu.rax = kMultibootBootloaderMagic;
  info.cpu.rbx = layout.info;
  info.boot_params = layout.info;
  info.kernel_start = start;
  info.kernel_end = end;
  info.description =
      fmt::format("multiboot ({}) entry {:#x}, {} module{}{}", how, entry, placed.size(),
                  placed.size() == 1 ? "" : "s",
                  low ? fmt::format(", loaded low: boot structures at {:#x}", layout.info) : "");
  if (!placed.empty()) {
    info.initrd_start = placed.front().address;
    info.initrd_end = placed.back().address + placed.back().size;
  }
  return info;
}

// Multiboot2 (spec §3.3 "I386 machine state"): the image by its address tag
// or as ELF by program headers, 32-bit protected mode with flat segments and
// paging off, EAX = 0x36d76289, EBX = the info, placed above the kernel and
// modules.
base::Result<BootInfo> BootMultiboot2(const base::GuestMemory& memory, const BootConfig& config,
                                      uint64_t rsdp, File file, const Multiboot2Header& header,
                                      std::string_view name) {
  uint64_t start = 0, end = 0, entry = 0;
  std::string how;
  std::optional<Multiboot2ElfSections> sections;
  if (header.has_address) {
    if (!header.entry_addr) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: multiboot2 header has an address tag but no entry address tag "
                             "(type 3)",
                             name);
    }
    // The address tag's fields mean what multiboot v1's do (spec §3.1.5).
    MultibootHeader v1;
    v1.offset = header.offset;
    v1.header_addr = header.header_addr;
    v1.load_addr = header.load_addr;
    v1.load_end_addr = header.load_end_addr;
    v1.bss_end_addr = header.bss_end_addr;
    v1.entry_addr = *header.entry_addr;
    const KludgeLoad load = TRY(LoadMultibootKludge(memory, file, v1, name, 0));
    start = load.start;
    end = load.end;
    entry = *header.entry_addr;
    how = "address tag";
  } else {
    if (!LooksLikeElf(file)) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: multiboot2 image is not ELF and its header has no address tag "
                             "(type 2)",
                             name);
    }
    const ElfImage elf = TRY(ParseElf(file, name));
    if (elf.highest > UINT32_MAX) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: multiboot2 ELF image reaches {:#x}, above 4 GiB", name,
                             elf.highest);
    }
    entry = header.entry_addr ? *header.entry_addr : elf.entry;
    TRY(CheckEntryInExecutableSegment(
        elf, entry, header.entry_addr ? "multiboot2 entry_addr" : "e_entry", name));
    // Segments that overlap would overwrite each other (spec §3.1.5: the
    // image is loaded as its program headers say, once).
    std::vector<ElfSegment> loads = elf.loads;
    std::sort(loads.begin(), loads.end(),
              [](const ElfSegment& a, const ElfSegment& b) { return a.paddr < b.paddr; });
    for (size_t i = 1; i < loads.size(); ++i) {
      const ElfSegment& prev = loads[i - 1];
      if (prev.mem_size != 0 && loads[i].mem_size != 0 &&
          loads[i].paddr < prev.paddr + prev.mem_size) {
        return base::MakeError(base::ErrorKind::kBadImage,
                               "{}: program headers {} [{:#x}, {:#x}) and {} [{:#x}, {:#x}) "
                               "overlap",
                               name, prev.index, prev.paddr, prev.paddr + prev.mem_size,
                               loads[i].index, loads[i].paddr, loads[i].paddr + loads[i].mem_size);
      }
    }
    TRY(LoadElfSegments(memory, file, elf, name, 0));
    start = elf.lowest;
    end = elf.highest;
    sections = ReadElfSectionHeaders(file);
    how = elf.is64 ? "ELF64" : "ELF32";
  }
  for (uint32_t type : header.requested) {
    if (type == kMb2TagElfSections && !sections) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: multiboot2 information request requires ELF sections (tag 9) but "
                             "the image has no ELF section headers",
                             name);
    }
    if (type == kMb2TagFramebuffer && !config.framebuffer && !config.framebuffer_on_request) {
      return base::MakeError(base::ErrorKind::kConfig,
                             "{}: multiboot2 information request requires a framebuffer (tag 8) "
                             "but it is off (--framebuffer off)",
                             name);
    }
    if ((type == kMb2TagAcpiOld || type == kMb2TagAcpiNew) && rsdp == 0) {
      return base::MakeError(base::ErrorKind::kConfig,
                             "{}: multiboot2 information request requires the ACPI RSDP (tag {}) "
                             "but the machine has no ACPI tables (--acpi off)",
                             name, type);
    }
  }
  std::vector<MultibootModule> modules;
  for (const auto& path : config.initrd_paths) {
    modules.push_back({TRY(ReadImageFile(path, "initrd", memory.ram_size())), path});
  }
  Multiboot2InfoConfig info_config;
  // As GRUB: the command line starts with the kernel's path.
  info_config.cmdline = config.kernel_path;
  if (!config.cmdline.empty()) info_config.cmdline += " " + config.cmdline;
  if (info_config.cmdline.find('\0') != std::string::npos) {
    return base::MakeError(base::ErrorKind::kConfig, "the kernel command line contains a NUL byte");
  }
  info_config.elf_sections = std::move(sections);
  // The framebuffer: the user's; else, when the kernel's framebuffer tag or
  // information request asks, the default one in the size it prefers.
  const bool wants_framebuffer =
      header.framebuffer_tag || std::find(header.requested.begin(), header.requested.end(),
                                          kMb2TagFramebuffer) != header.requested.end();
  if (config.framebuffer) {
    info_config.framebuffer = config.framebuffer;
  } else if (wants_framebuffer && config.framebuffer_on_request) {
    Framebuffer fb = *config.framebuffer_on_request;
    const uint32_t w = header.framebuffer_width, h = header.framebuffer_height;
    if (w > 0 && h > 0 && w <= base::kFramebufferMaxSide && h <= base::kFramebufferMaxSide &&
        uint64_t{w} * h * 4 <= base::kFramebufferMaxBytes) {
      fb = MakeFramebuffer(w, h);
    }
    info_config.framebuffer = fb;
  } else if (header.framebuffer_required) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: its multiboot2 framebuffer tag is required (flags 0x0) but the "
                           "framebuffer is off (--framebuffer off)",
                           name);
  }
  info_config.load_base = static_cast<uint32_t>(start);
  info_config.kernel_end = end;
  if (rsdp != 0) {
    info_config.rsdp.resize(kAcpiRsdpBytes);
    TRY(memory.Read(rsdp, std::span(info_config.rsdp)));
  }
  const Multiboot2Placement placed = TRY(WriteMultiboot2Info(memory, info_config, modules));
  // The info is above the kernel and modules already; a kernel that loads
  // low also gets its GDT and stack moved above the info.
  ProtectedModeLayout cpu_layout;
  const bool low = start < base::kBootStructuresEnd;
  if (low) {
    cpu_layout = RelocatedProtectedModeLayout(TRY(
        RelocatedBlock(memory, placed.info_address + placed.info_size, kRelocatedBootBlock, name)));
  }

  BootInfo info;
  info.protocol = BootProtocol::kMultiboot2;
  info.framebuffer = info_config.framebuffer;
  info.cpu = TRY(SetUpProtectedMode(memory, static_cast<uint32_t>(entry), cpu_layout));
  info.cpu.rax = kMultiboot2BootloaderMagic;
  info.cpu.rbx = placed.info_address;
  info.boot_params = placed.info_address;
  info.kernel_start = start;
  info.kernel_end = end;
  info.description =
      fmt::format("multiboot2 ({}) entry {:#x}, {} module{}, info at {:#x} ({} bytes){}", how,
                  entry, placed.modules.size(), placed.modules.size() == 1 ? "" : "s",
                  placed.info_address, placed.info_size,
                  low ? fmt::format(", loaded low: GDT and stack at {:#x}", cpu_layout.gdt) : "");
  if (!placed.modules.empty()) {
    info.initrd_start = placed.modules.front().address;
    info.initrd_end = placed.modules.back().address + placed.modules.back().size;
  }
  return info;
}

base::Result<BootInfo> Dispatch(const base::GuestMemory& memory, const BootConfig& config,
                                uint64_t rsdp, File file, std::string_view name) {
  // Multiboot2 first: an OS developer's ELF64 with a multiboot2 header
  // expects its 32-bit entry, not long mode at e_entry.
  if (config.protocol == BootProtocol::kAuto || config.protocol == BootProtocol::kMultiboot2) {
    const auto multiboot2 = TRY(FindMultiboot2Header(file, name));
    if (multiboot2) return BootMultiboot2(memory, config, rsdp, file, *multiboot2, name);
    if (config.protocol == BootProtocol::kMultiboot2) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: no multiboot2 header (magic 0xe85250d6, 8-byte aligned) in the "
                             "first 32 KiB (--boot-protocol multiboot2)",
                             name);
    }
  }
  // Limine next: its executables are ELF64 linked in the top 2 GiB, which
  // the ELF64 path (by p_paddr) could not load.
  if (config.protocol == BootProtocol::kAuto || config.protocol == BootProtocol::kLimine) {
    if (LooksLikeLimine(file)) return BootLimine(memory, config, rsdp, file, name);
    if (config.protocol == BootProtocol::kLimine) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: not a Limine executable (an ELF64 holding a base revision tag "
                             "or a request with the common magic) (--boot-protocol limine)",
                             name);
    }
  }
  // BOOTBOOT: an ELF64 naming `bootboot`, or a level 1 kernel at -2 MiB.
  if (config.protocol == BootProtocol::kAuto || config.protocol == BootProtocol::kBootboot) {
    if (LooksLikeBootboot(file)) return BootBootboot(memory, config, rsdp, file, name);
    if (config.protocol == BootProtocol::kBootboot) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: not a BOOTBOOT kernel (an ELF64 executable with a 'bootboot' "
                             "symbol, or with its segments at or above -2 MiB) "
                             "(--boot-protocol bootboot)",
                             name);
    }
  }
  std::optional<ElfImage> elf;
  if (LooksLikeElf(file)) elf = TRY(ParseElf(file, name));
  const bool elf64 = elf && elf->is64;
  const bool pvh = elf && elf->pvh_entry;
  const bool bzimage = !elf && LooksLikeBzImage(file);

  switch (config.protocol) {
    case BootProtocol::kAuto:
      // docs/architecture.md: the 64-bit path wins when an image offers several.
      if (elf64) return BootElf64(memory, config, rsdp, file, *elf, name);
      if (bzimage) return BootBzImage(memory, config, rsdp, file, name);
      if (pvh) return BootPvh(memory, config, rsdp, file, *elf, name);
      break;
    case BootProtocol::kElf64:
      if (!elf64) {
        return base::MakeError(base::ErrorKind::kBadImage,
                               "{}: not an ELF64 image (--boot-protocol elf64)", name);
      }
      return BootElf64(memory, config, rsdp, file, *elf, name);
    case BootProtocol::kPvh:
      if (!pvh) {
        return base::MakeError(base::ErrorKind::kBadImage,
                               "{}: no PVH entry (an ELF note XEN_ELFNOTE_PHYS32_ENTRY) "
                               "(--boot-protocol pvh)",
                               name);
      }
      return BootPvh(memory, config, rsdp, file, *elf, name);
    case BootProtocol::kBzImage:
      return BootBzImage(memory, config, rsdp, file, name);  // ParseBzImage says what is wrong
    case BootProtocol::kBzImageUnpacked:
      return BootBzImageUnpacked(memory, config, rsdp, file, name);
    case BootProtocol::kMultiboot:
    case BootProtocol::kMultiboot2:  // handled above
    case BootProtocol::kLimine:
    case BootProtocol::kBootboot:
      break;
  }
  const auto multiboot = TRY(FindMultibootHeader(file, name));
  if (multiboot) return BootMultiboot(memory, config, file, *multiboot, name);
  if (config.protocol == BootProtocol::kMultiboot) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: no multiboot header in the first 8 KiB (--boot-protocol multiboot)",
                           name);
  }
  if (elf) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: ELF32 image with neither a PVH note nor a multiboot header", name);
  }
  return base::MakeError(base::ErrorKind::kBadImage,
                         "{}: not a bootable image (not ELF, not a bzImage, no multiboot header)",
                         name);
}

}  // namespace

base::Result<BootInfo> LoadKernel(const base::GuestMemory& memory, const BootConfig& config) {
  if (!memory.Contains(0, base::kBootStructuresEnd)) {
    return base::MakeError(
        base::ErrorKind::kConfig,
        "guest memory of {} KiB is too small: the boot structures need the first "
        "{} KiB",
        memory.ram_size() / base::KiB, base::kBootStructuresEnd / base::KiB);
  }
  if (config.cpus == 0 || config.cpus > kMaxMpCpus) {
    return base::MakeError(base::ErrorKind::kConfig, "{} CPUs: between 1 and {} are supported",
                           config.cpus, kMaxMpCpus);
  }
  const std::vector<uint8_t> file =
      TRY(ReadImageFile(config.kernel_path, "kernel image", kMaxKernelImageBytes));
  const std::string name = "kernel image " + config.kernel_path;
  // ACPI first: the protocols hand over the RSDP's address (or a copy).
  // Guest memory below 1 MiB has no BIOS area to hold the tables.
  uint64_t rsdp = 0;
  if (config.acpi && memory.Contains(base::kAcpiTables, base::kAcpiTablesSize)) {
    rsdp = TRY(WriteAcpiTables(memory, AcpiMachine{config.cpus, config.virtio_mmio}));
  }
  BootInfo info = TRY(Dispatch(memory, config, rsdp, file, name));
  info.acpi_rsdp = rsdp;
  const BootProtocol used = info.protocol;
  if (used == BootProtocol::kElf64 || used == BootProtocol::kBzImage ||
      used == BootProtocol::kBzImageUnpacked) {
    info.framebuffer = config.framebuffer;  // screen_info (WriteLinuxZeroPage)
  }
  if (info.framebuffer) {
    info.description += fmt::format("; framebuffer {}x{} at {:#x}", info.framebuffer->width,
                                    info.framebuffer->height, info.framebuffer->address);
  }
  if (rsdp != 0) info.description += fmt::format("; ACPI RSDP at {:#x}", rsdp);
  // The MP table is how Linux finds CPUs and the IOAPIC without ACPI; it
  // lives in the reserved EBDA, which tiny guests (< 1 MiB) do not have.
  if (memory.Contains(kMpTableAddress, MpTableSize(config.cpus))) {
    TRY(WriteMpTable(memory, config.cpus));
  }
  return info;
}

namespace {

// Every protocol with its name for --boot-protocol and the config's
// "boot_protocol"; a new protocol is one line here.
constexpr std::pair<BootProtocol, const char*> kBootProtocolNames[] = {
    {BootProtocol::kAuto, "auto"},
    {BootProtocol::kElf64, "elf64"},
    {BootProtocol::kPvh, "pvh"},
    {BootProtocol::kBzImage, "bzimage"},
    {BootProtocol::kMultiboot, "multiboot"},
    {BootProtocol::kMultiboot2, "multiboot2"},
    {BootProtocol::kBzImageUnpacked, "bzimage-unpacked"},
    {BootProtocol::kLimine, "limine"},
    {BootProtocol::kBootboot, "bootboot"},
};

}  // namespace

Framebuffer MakeFramebuffer(uint32_t width, uint32_t height) {
  return Framebuffer{base::kFramebufferBase, width, height, width * 4};
}

const char* BootProtocolName(BootProtocol protocol) {
  for (const auto& [value, name] : kBootProtocolNames) {
    if (value == protocol) return name;
  }
  return "unknown";
}

std::string BootProtocolChoices() {
  std::string choices;
  const size_t count = std::size(kBootProtocolNames);
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) choices += i + 1 == count ? " or " : ", ";
    choices += kBootProtocolNames[i].second;
  }
  return choices;
}

base::Result<BootProtocol> ParseBootProtocol(std::string_view name) {
  for (const auto& [value, protocol_name] : kBootProtocolNames) {
    if (name == protocol_name) return value;
  }
  return base::MakeError(base::ErrorKind::kUsage, "unknown boot protocol '{}': expected {}", name,
                         BootProtocolChoices());
}

}  // namespace firmware
