#include "firmware/bootboot.h"

#include <elf.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/layout.h"
#include "firmware/boot_memory.h"
#include "firmware/cpu_setup.h"
#include "firmware/elf.h"
#include "firmware/image_file.h"
#include "firmware/mptable.h"
#include "firmware/page_tables.h"

namespace firmware {
namespace {

using base::ErrorKind;
using base::MakeError;
using File = std::span<const uint8_t>;

constexpr uint64_t kPage = kBootPage;
constexpr uint64_t kLargePage = 2 * base::MiB;
constexpr uint64_t kCr4Osfxsr = 1ull << 9;
constexpr uint64_t kCr4Osxmmexcpt = 1ull << 10;
constexpr uint16_t kCodeSelector = 0x08, kDataSelector = 0x10;

// The fixed 128-byte header of bootboot.h, x86-64 flavour; the memory map's
// 16-byte entries follow it.
struct Header {
  char magic[4];
  uint32_t size;
  uint8_t protocol;
  uint8_t fb_type;
  uint16_t numcores;
  uint16_t bspid;
  int16_t timezone;
  uint8_t datetime[8];
  uint64_t initrd_ptr, initrd_size;
  uint64_t fb_ptr;
  uint32_t fb_size, fb_width, fb_height, fb_scanline;
  uint64_t acpi_ptr, smbi_ptr, efi_ptr, mp_ptr;
  uint64_t unused[4];
};
static_assert(sizeof(Header) == 128);

struct MmapEntry {
  uint64_t ptr;
  uint64_t size;  // bytes, a multiple of 16, with the type in bits 0-3
};
static_assert(sizeof(MmapEntry) == 16);

// The symbols BOOTBOOT level 2 reads, from the first SHT_SYMTAB.
std::map<std::string, uint64_t> ReadSymbols(File file) {
  std::map<std::string, uint64_t> found;
  if (file.size() < sizeof(Elf64_Ehdr)) return found;
  Elf64_Ehdr ehdr;
  std::memcpy(&ehdr, file.data(), sizeof(ehdr));
  if (ehdr.e_shentsize != sizeof(Elf64_Shdr) || ehdr.e_shoff == 0 || ehdr.e_shoff > file.size() ||
      uint64_t{ehdr.e_shnum} * sizeof(Elf64_Shdr) > file.size() - ehdr.e_shoff) {
    return found;
  }
  auto section = [&](uint32_t i) {
    Elf64_Shdr shdr;
    std::memcpy(&shdr, file.data() + ehdr.e_shoff + uint64_t{i} * sizeof(Elf64_Shdr), sizeof(shdr));
    return shdr;
  };
  auto inside = [&](uint64_t offset, uint64_t size) {
    return offset <= file.size() && size <= file.size() - offset;
  };
  for (uint32_t i = 0; i < ehdr.e_shnum; ++i) {
    const Elf64_Shdr symtab = section(i);
    if (symtab.sh_type != SHT_SYMTAB || symtab.sh_link >= ehdr.e_shnum) continue;
    const Elf64_Shdr strtab = section(symtab.sh_link);
    if (!inside(symtab.sh_offset, symtab.sh_size) || !inside(strtab.sh_offset, strtab.sh_size)) {
      break;
    }
    for (uint64_t at = 0; at + sizeof(Elf64_Sym) <= symtab.sh_size; at += sizeof(Elf64_Sym)) {
      Elf64_Sym sym;
      std::memcpy(&sym, file.data() + symtab.sh_offset + at, sizeof(sym));
      if (sym.st_name >= strtab.sh_size || sym.st_shndx == SHN_UNDEF) continue;
      const char* text = reinterpret_cast<const char*>(file.data() + strtab.sh_offset);
      const std::string_view symbol_name(text + sym.st_name,
                                         strnlen(text + sym.st_name, strtab.sh_size - sym.st_name));
      for (const char* wanted : {"bootboot", "environment", "fb", "mmio"}) {
        if (symbol_name == wanted) found.emplace(wanted, sym.st_value);
      }
    }
    break;
  }
  return found;
}

uint8_t Bcd(int value) { return static_cast<uint8_t>(((value / 10) % 10) << 4 | (value % 10)); }

}  // namespace

bool LooksLikeBootboot(File file) {
  if (!LooksLikeElf(file)) return false;
  auto elf = ParseElf(file, "", ElfClass::k64);
  if (!elf) return false;
  if (ReadSymbols(file).contains("bootboot")) return true;
  uint64_t lowest = UINT64_MAX;
  for (const auto& segment : elf->loads) lowest = std::min(lowest, segment.vaddr);
  return lowest >= kBootbootStruct;
}

base::Result<BootInfo> BootBootboot(const base::GuestMemory& memory, const BootConfig& config,
                                    uint64_t rsdp, File file, std::string_view name) {
  const ElfImage elf = TRY(ParseElf(file, name, ElfClass::k64));
  const auto symbols = ReadSymbols(file);
  const bool dynamic = symbols.contains("bootboot");
  auto symbol = [&](const char* n, uint64_t fallback) {
    auto it = symbols.find(n);
    return it == symbols.end() ? fallback : it->second;
  };
  const uint64_t struct_va = symbol("bootboot", kBootbootStruct);
  const uint64_t env_va = symbol("environment", kBootbootEnvironment);
  const uint64_t fb_va = symbol("fb", kBootbootFramebuffer);
  const uint32_t cpus = config.cpus;
  const uint64_t stack_bytes = BootAlignUp(uint64_t{cpus} * kBootbootStackPerCore, kPage);
  // The framebuffer: vmm's (the user's or the default: a BOOTBOOT kernel
  // always has one), else a headless buffer in guest RAM (--framebuffer off).
  const std::optional<Framebuffer> framebuffer =
      config.framebuffer ? config.framebuffer : config.framebuffer_on_request;
  const uint32_t fb_width = framebuffer ? framebuffer->width : kBootbootFbWidth;
  const uint32_t fb_height = framebuffer ? framebuffer->height : kBootbootFbHeight;
  const uint64_t fb_scanline = framebuffer ? framebuffer->pitch : uint64_t{kBootbootFbWidth} * 4;
  const uint64_t fb_bytes = BootAlignUp(fb_scanline * fb_height, kPage);

  // Every virtual range vmm maps besides the identity map, to check them
  // against each other: the segments, the structure, the environment, the
  // framebuffer and the stacks.
  struct Mapping {
    std::string what;
    uint64_t begin, end;  // page-aligned, end may be 0 (= 2^64) for the stacks
  };
  std::vector<Mapping> mappings;
  uint64_t min_vaddr = UINT64_MAX, max_vaddr = 0;
  for (const auto& s : elf.loads) {
    if (s.vaddr < kBootbootHigherHalf || s.vaddr + s.mem_size < s.vaddr) {
      return MakeError(ErrorKind::kBadImage,
                       "{}: program header {} at {:#x} (size {:#x}) is not in the higher half: "
                       "BOOTBOOT identity-maps the lower half and maps the kernel above {:#x}",
                       name, s.index, s.vaddr, s.mem_size, kBootbootHigherHalf);
    }
    min_vaddr = std::min(min_vaddr, BootAlignDown(s.vaddr, kPage));
    max_vaddr = std::max(max_vaddr, BootAlignUp(s.vaddr + s.mem_size, kPage));
    mappings.push_back({fmt::format("program header {}", s.index), BootAlignDown(s.vaddr, kPage),
                        BootAlignUp(s.vaddr + s.mem_size, kPage)});
  }
  for (auto [what, va] : {std::pair{"bootboot", struct_va}, std::pair{"environment", env_va},
                          std::pair{"fb", fb_va}}) {
    if (va % kPage != 0 || va < kBootbootHigherHalf) {
      return MakeError(ErrorKind::kBadImage,
                       "{}: symbol '{}' is at {:#x}: BOOTBOOT maps it page-aligned in the higher "
                       "half",
                       name, what, va);
    }
  }
  if (fb_va + fb_bytes < fb_va || env_va + kPage < env_va || struct_va + kPage < struct_va) {
    return MakeError(ErrorKind::kBadImage, "{}: a symbol's mapping wraps the address space", name);
  }
  mappings.push_back({"the bootboot structure", struct_va, struct_va + kPage});
  mappings.push_back({"the environment", env_va, env_va + kPage});
  mappings.push_back({"the framebuffer", fb_va, fb_va + fb_bytes});
  mappings.push_back({"the stacks", 0 - stack_bytes, 0});
  std::sort(mappings.begin(), mappings.end(),
            [](const Mapping& a, const Mapping& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < mappings.size(); ++i) {
    const Mapping& a = mappings[i - 1];
    if (a.end == 0 || mappings[i].begin < a.end) {
      return MakeError(ErrorKind::kBadImage, "{}: {} [{:#x}, {:#x}) and {} [{:#x}, {:#x}) overlap",
                       name, a.what, a.begin, a.end, mappings[i].what, mappings[i].begin,
                       mappings[i].end);
    }
  }
  bool entry_ok = false;
  for (const auto& s : elf.loads) {
    if ((s.flags & PF_X) && elf.entry >= s.vaddr && elf.entry - s.vaddr < s.mem_size) {
      entry_ok = true;
    }
  }
  if (!entry_ok) {
    return MakeError(ErrorKind::kBadImage,
                     "{}: e_entry {:#x} is not inside an executable (PF_X) segment", name,
                     elf.entry);
  }

  // The environment: the command line's words, one per line.
  std::string environment;
  for (size_t at = 0; at < config.cmdline.size();) {
    const size_t start = config.cmdline.find_first_not_of(" \t\n", at);
    if (start == std::string::npos) break;
    const size_t stop =
        std::min(config.cmdline.find_first_of(" \t\n", start), config.cmdline.size());
    environment += config.cmdline.substr(start, stop - start) + "\n";
    at = stop;
  }
  if (environment.size() + 1 > kBootbootEnvironmentMax) {
    return MakeError(ErrorKind::kConfig,
                     "the BOOTBOOT environment (the command line, a word per line) is {} bytes; "
                     "it must fit in one page with its NUL ({} bytes)",
                     environment.size(), kBootbootEnvironmentMax);
  }
  if (config.initrd_paths.size() > 1) {
    return MakeError(ErrorKind::kConfig, "{} initrds given: BOOTBOOT hands the kernel one initrd",
                     config.initrd_paths.size());
  }

  // Physical layout: the segments at 2 MiB with one offset, the initrd, then
  // vmm's own pages (structure, environment, framebuffer, stacks, GDT, page
  // tables), all below min(RAM, 3 GiB).
  const uint64_t low_end = std::min(memory.ram_size(), base::kMmioHoleStart);
  const uint64_t kernel_phys = 2 * base::MiB;
  const uint64_t image_size = max_vaddr - min_vaddr;
  if (image_size > low_end || kernel_phys > low_end - image_size) {
    return MakeError(ErrorKind::kConfig,
                     "guest memory of {} MiB is too small for {}: its segments span {:#x} bytes",
                     memory.ram_size() / base::MiB, name, image_size);
  }
  std::vector<uint8_t> image(image_size, 0);
  for (const auto& s : elf.loads) {
    std::memcpy(image.data() + (s.vaddr - min_vaddr), file.data() + s.offset, s.file_size);
  }
  uint64_t cursor = kernel_phys + image_size;
  std::vector<uint8_t> initrd;
  uint64_t initrd_phys = 0;
  if (!config.initrd_paths.empty()) {
    initrd = TRY(ReadImageFile(config.initrd_paths[0], "initrd", memory.ram_size()));
    initrd_phys = cursor;
    cursor = BootAlignUp(cursor + initrd.size(), kPage);
    if (cursor > low_end) {
      return MakeError(ErrorKind::kConfig,
                       "guest memory of {} MiB is too small for the initrd {} ({} bytes)",
                       memory.ram_size() / base::MiB, config.initrd_paths[0], initrd.size());
    }
  }
  BootArena arena(memory, cursor, low_end, "the BOOTBOOT structures");
  const uint64_t struct_phys = TRY(arena.Alloc(kPage, kPage));
  const uint64_t env_phys = TRY(arena.Alloc(kPage, kPage));
  const uint64_t fb_phys = framebuffer ? framebuffer->address : TRY(arena.Alloc(fb_bytes, kPage));
  const uint64_t stacks_phys = TRY(arena.Alloc(stack_bytes, kPage));
  const std::array<uint64_t, 3> gdt = {0, GdtEntry(kCode64Flags, 0, 0xfffff),
                                       GdtEntry(kDataFlags, 0, 0xfffff)};
  const uint64_t gdt_phys = TRY(arena.PutObj(gdt));

  // Page tables last: their pages are in the arena too.
  auto tables = TRY(PageTableBuilder::Create(memory, [&]() { return arena.Alloc(kPage, kPage); }));
  const uint64_t ram_top = memory.ram_size() <= base::kMmioHoleStart
                               ? memory.ram_size()
                               : base::kMmioHoleEnd + (memory.ram_size() - base::kMmioHoleStart);
  const uint64_t identity_end =
      BootAlignUp(std::min(std::max(ram_top, 4 * base::GiB), kBootbootIdentityMax), kLargePage);
  TRY(tables.Map(0, 0, identity_end, kPteWrite, true));
  for (const auto& s : elf.loads) {
    const uint64_t v = BootAlignDown(s.vaddr, kPage);
    const uint64_t e = BootAlignUp(s.vaddr + s.mem_size, kPage);
    const uint64_t flags =
        ((s.flags & PF_W) ? kPteWrite : 0) | ((s.flags & PF_X) ? 0 : kPteNoExecute);
    TRY(tables.Map(v, kernel_phys + (v - min_vaddr), e - v, flags, false));
  }
  TRY(tables.Map(struct_va, struct_phys, kPage, kPteWrite | kPteNoExecute, false));
  TRY(tables.Map(env_va, env_phys, kPage, kPteWrite | kPteNoExecute, false));
  TRY(tables.Map(fb_va, fb_phys, fb_bytes, kPteWrite | kPteNoExecute, true));
  TRY(tables.Map(0 - stack_bytes, stacks_phys, stack_bytes, kPteWrite | kPteNoExecute, false));

  // The memory map: free RAM, the ACPI tables, and everything vmm put in
  // RAM as used.
  using T = BootbootMemoryType;
  RegionMap<T> map(memory.ram_size(), T::kFree, T::kUsed);
  if (rsdp != 0) {
    map.Paint(base::kAcpiTables, base::kAcpiTables + base::kAcpiTablesSize, T::kAcpi);
  }
  map.Paint(kernel_phys, arena.end(), T::kUsed);
  if (framebuffer) map.Paint(fb_phys, fb_phys + fb_bytes, T::kMmio);
  std::vector<MmapEntry> mmap;
  for (const auto& r : map.entries()) {
    mmap.push_back({r.begin, ((r.end - r.begin) & ~uint64_t{15}) | static_cast<uint8_t>(r.type)});
  }
  if (sizeof(Header) + mmap.size() * sizeof(MmapEntry) > kPage) {
    return MakeError(ErrorKind::kInternal, "BOOTBOOT memory map of {} entries does not fit a page",
                     mmap.size());
  }

  Header header{};
  std::memcpy(header.magic, "BOOT", 4);
  header.size = static_cast<uint32_t>(sizeof(Header) + mmap.size() * sizeof(MmapEntry));
  header.protocol = dynamic ? kBootbootProtocolDynamic : kBootbootProtocolStatic;  // | LOADER_BIOS
  header.fb_type = kBootbootFbArgb;
  header.numcores = static_cast<uint16_t>(cpus);
  header.bspid = 0;
  header.timezone = 0;
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  const int year = utc.tm_year + 1900;
  const uint8_t datetime[8] = {
      Bcd(year / 100),  Bcd(year % 100), Bcd(utc.tm_mon + 1), Bcd(utc.tm_mday),
      Bcd(utc.tm_hour), Bcd(utc.tm_min), Bcd(utc.tm_sec),     0};
  std::memcpy(header.datetime, datetime, sizeof(datetime));
  header.initrd_ptr = initrd_phys;
  header.initrd_size = initrd.size();
  header.fb_ptr = fb_phys;
  header.fb_size = static_cast<uint32_t>(fb_scanline * fb_height);
  header.fb_width = fb_width;
  header.fb_height = fb_height;
  header.fb_scanline = static_cast<uint32_t>(fb_scanline);
  if (rsdp != 0) {
    // acpi_ptr: the XSDT (the RSDP's XsdtAddress, ACPI 6.5 §5.2.5.3), as
    // BOOTBOOT kernels read it.
    header.acpi_ptr = TRY(memory.ReadObj<uint64_t>(rsdp + 24));
  }
  if (memory.Contains(kMpTableAddress, MpTableSize(cpus))) header.mp_ptr = kMpTableAddress;
  TRY(memory.WriteObj(struct_phys, header));
  for (size_t i = 0; i < mmap.size(); ++i) {
    TRY(memory.WriteObj(struct_phys + sizeof(Header) + i * sizeof(MmapEntry), mmap[i]));
  }
  TRY(memory.Write(env_phys, std::span(reinterpret_cast<const uint8_t*>(environment.data()),
                                       environment.size())));
  TRY(memory.Write(kernel_phys, image));
  if (!initrd.empty()) TRY(memory.Write(initrd_phys, initrd));

  // Every core enters the kernel at once, long mode with SSE on, its 1 KiB
  // stack at -1024 * core.
  auto state = [&](uint32_t core) {
    CpuBootState cpu =
        LongModeEntryState(gdt, gdt_phys, kCodeSelector, kDataSelector, tables.root());
    cpu.rip = elf.entry;
    cpu.rsp = 0 - uint64_t{core} * kBootbootStackPerCore;
    cpu.cr0 |= kCr0Mp | kCr0Ne;  // the co-processor on, and SSE:
    cpu.cr4 |= kCr4Osfxsr | kCr4Osxmmexcpt;
    return cpu;
  };
  BootInfo info;
  info.protocol = BootProtocol::kBootboot;
  info.cpu = state(0);
  info.framebuffer = framebuffer;
  for (uint32_t core = 1; core < cpus; ++core) info.aps.push_back(state(core));
  info.kernel_start = kernel_phys;
  info.kernel_end = kernel_phys + image_size;
  if (!initrd.empty()) {
    info.initrd_start = initrd_phys;
    info.initrd_end = initrd_phys + initrd.size();
  }
  info.description = fmt::format(
      "BOOTBOOT level {} ({}), entry {:#x}, bootboot at {:#x}, environment at {:#x}, fb at {:#x} "
      "({}x{}{}), {} core{}",
      dynamic ? 2 : 1, dynamic ? "symbols" : "static addresses", elf.entry, struct_va, env_va,
      fb_va, fb_width, fb_height, framebuffer ? "" : ", headless in RAM", cpus,
      cpus == 1 ? "" : "s");
  return info;
}

}  // namespace firmware
