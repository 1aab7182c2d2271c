#include "firmware/boot.h"

#include <span>
#include <string_view>

#include "firmware/cpu_setup.h"
#include "firmware/elf.h"
#include "firmware/image_file.h"
#include "firmware/layout.h"
#include "firmware/zero_page.h"

namespace firmware {
namespace {

using vmm::ErrorKind;
using vmm::MakeError;

// The 64-bit ELF path (design.md "Boot protocols"): segments by p_paddr, long
// mode at e_entry, RSI = zero page.
vmm::Result<BootInfo> BootElf64(const vmm::GuestMemory& memory, const BootConfig& config,
                                std::span<const uint8_t> file, const ElfImage& elf,
                                std::string_view name) {
  TRY(CheckEntryInExecutableSegment(elf, elf.entry, "e_entry", name));
  TRY(LoadElfSegments(memory, file, elf, name));
  const uint64_t cmdline_size = TRY(WriteCmdline(memory, config.cmdline, kCmdline, kCmdlineMax));
  ZeroPageConfig zero_page;
  zero_page.ram_size = memory.ram_size();
  zero_page.cmdline_address = kCmdline;
  zero_page.cmdline_size = cmdline_size;
  TRY(WriteZeroPage(memory, zero_page));

  BootInfo info;
  info.protocol = BootProtocol::kElf64;
  info.cpu = TRY(SetUpLongMode(memory, elf.entry));
  info.cpu.rsi = kZeroPage;
  info.kernel_start = elf.lowest;
  info.kernel_end = elf.highest;
  info.description = fmt::format("ELF64 entry {:#x}, {} segment{}", elf.entry, elf.loads.size(),
                                 elf.loads.size() == 1 ? "" : "s");
  return info;
}

}  // namespace

vmm::Result<BootInfo> LoadKernel(const vmm::GuestMemory& memory, const BootConfig& config) {
  if (!memory.Contains(0, kBootStructuresEnd)) {
    return MakeError(ErrorKind::kConfig,
                     "guest memory of {} KiB is too small: the boot structures need the first "
                     "{} KiB",
                     memory.ram_size() / vmm::KiB, kBootStructuresEnd / vmm::KiB);
  }
  const std::vector<uint8_t> file = TRY(ReadImageFile(config.kernel_path, "kernel image"));
  const std::string name = "kernel image " + config.kernel_path;

  if (LooksLikeElf(file)) {
    const ElfImage elf = TRY(ParseElf(file, name));
    if (elf.is64 && (config.protocol == BootProtocol::kAuto ||
                     config.protocol == BootProtocol::kElf64)) {
      return BootElf64(memory, config, file, elf, name);
    }
  }
  if (config.protocol != BootProtocol::kAuto) {
    return MakeError(ErrorKind::kBadImage, "{}: cannot be booted with the {} protocol", name,
                     BootProtocolName(config.protocol));
  }
  return MakeError(ErrorKind::kBadImage,
                   "{}: not a bootable image (not an x86-64 ELF executable)", name);
}

const char* BootProtocolName(BootProtocol protocol) {
  switch (protocol) {
    case BootProtocol::kAuto: return "auto";
    case BootProtocol::kElf64: return "elf64";
    case BootProtocol::kPvh: return "pvh";
    case BootProtocol::kBzImage: return "bzimage";
    case BootProtocol::kMultiboot: return "multiboot";
  }
  return "unknown";
}

}  // namespace firmware
