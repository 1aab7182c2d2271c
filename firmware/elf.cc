#include "firmware/elf.h"

#include <elf.h>

#include <cstring>
#include <limits>

#include "base/layout.h"

namespace firmware {
namespace {

using base::ErrorKind;
using base::MakeError;

// Xen public/elfnote.h: "XEN_ELFNOTE_PHYS32_ENTRY 18", note name "Xen".
constexpr uint32_t kXenElfNotePhys32Entry = 18;

// Overflow-safe "offset + size <= limit".
bool RangeFits(uint64_t offset, uint64_t size, uint64_t limit) {
  return offset <= limit && size <= limit - offset;
}

template <typename T>
T Load(std::span<const uint8_t> file, uint64_t offset) {
  T value;
  std::memcpy(&value, file.data() + offset, sizeof(T));
  return value;
}

struct Elf64Types {
  using Ehdr = Elf64_Ehdr;
  using Phdr = Elf64_Phdr;
  static constexpr uint8_t kClass = ELFCLASS64;
  static constexpr uint16_t kMachine = EM_X86_64;
  static constexpr const char* kName = "ELF64";
  static constexpr const char* kMachineName = "x86-64 (62)";
};

struct Elf32Types {
  using Ehdr = Elf32_Ehdr;
  using Phdr = Elf32_Phdr;
  static constexpr uint8_t kClass = ELFCLASS32;
  static constexpr uint16_t kMachine = EM_386;
  static constexpr const char* kName = "ELF32";
  static constexpr const char* kMachineName = "i386 (3)";
};

// Walks the notes of one PT_NOTE segment (gABI "Note Section"): namesz,
// descsz, type, then name and desc each padded to the segment's alignment.
base::Result<void> ParseNotes(std::span<const uint8_t> notes, uint64_t align, uint32_t phdr_index,
                              std::string_view name, ElfImage& image) {
  uint64_t pos = 0;
  auto pad = [align](uint64_t n) { return (n + align - 1) & ~(align - 1); };
  while (pos < notes.size()) {
    if (!RangeFits(pos, 12, notes.size())) {
      return base::MakeError(
          base::ErrorKind::kBadImage,
          "{}: note at offset {:#x} of program header {} is truncated (segment size "
          "{:#x})",
          name, pos, phdr_index, notes.size());
    }
    const uint32_t namesz = Load<uint32_t>(notes, pos);
    const uint32_t descsz = Load<uint32_t>(notes, pos + 4);
    const uint32_t type = Load<uint32_t>(notes, pos + 8);
    const uint64_t name_at = pos + 12;
    const uint64_t desc_at = name_at + pad(namesz);
    const uint64_t next = desc_at + pad(descsz);  // no overflow: both < 2^33
    if (next > notes.size()) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: note at offset {:#x} of program header {} runs past its segment "
                             "(name size {:#x}, desc size {:#x}, segment size {:#x})",
                             name, pos, phdr_index, namesz, descsz, notes.size());
    }
    const bool is_xen = namesz == 4 && std::memcmp(notes.data() + name_at, "Xen", 4) == 0;
    if (is_xen && type == kXenElfNotePhys32Entry) {
      // Linux emits the address with _ASM_PTR (8 bytes on x86-64); others 4.
      uint64_t entry = 0;
      if (descsz == 4) {
        entry = Load<uint32_t>(notes, desc_at);
      } else if (descsz == 8) {
        entry = Load<uint64_t>(notes, desc_at);
      } else {
        return base::MakeError(base::ErrorKind::kBadImage,
                               "{}: PVH note (XEN_ELFNOTE_PHYS32_ENTRY) has a {}-byte descriptor; "
                               "expected 4 or 8",
                               name, descsz);
      }
      if (entry > std::numeric_limits<uint32_t>::max()) {
        return base::MakeError(
            base::ErrorKind::kBadImage,
            "{}: PVH entry {:#x} (XEN_ELFNOTE_PHYS32_ENTRY) is not a 32-bit address", name, entry);
      }
      if (image.pvh_entry && *image.pvh_entry != entry) {
        return base::MakeError(base::ErrorKind::kBadImage,
                               "{}: two PVH notes disagree on the entry ({:#x} and {:#x})", name,
                               *image.pvh_entry, entry);
      }
      image.pvh_entry = static_cast<uint32_t>(entry);
    }
    pos = next;
  }
  return {};
}

template <typename Types>
base::Result<ElfImage> ParseClass(std::span<const uint8_t> file, std::string_view name,
                                  bool allow_dyn) {
  using Ehdr = typename Types::Ehdr;
  using Phdr = typename Types::Phdr;
  if (file.size() < sizeof(Ehdr)) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: file is too short for an {} header ({:#x} bytes, need {:#x})", name,
                           Types::kName, file.size(), sizeof(Ehdr));
  }
  const auto ehdr = Load<Ehdr>(file, 0);
  if (ehdr.e_ident[EI_DATA] != ELFDATA2LSB) {
    return base::MakeError(base::ErrorKind::kBadImage, "{}: not little-endian (EI_DATA {})", name,
                           ehdr.e_ident[EI_DATA]);
  }
  if (ehdr.e_ident[EI_VERSION] != EV_CURRENT || ehdr.e_version != EV_CURRENT) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: unknown ELF version (EI_VERSION {}, e_version {})", name,
                           ehdr.e_ident[EI_VERSION], ehdr.e_version);
  }
  if (ehdr.e_machine != Types::kMachine) {
    return base::MakeError(base::ErrorKind::kBadImage, "{}: machine {} is not {}", name,
                           ehdr.e_machine, Types::kMachineName);
  }
  if (ehdr.e_type != ET_EXEC && !(allow_dyn && ehdr.e_type == ET_DYN)) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: ELF type {} is not an executable (ET_EXEC); relocatable and shared "
                           "objects cannot be booted",
                           name, ehdr.e_type);
  }
  if (ehdr.e_phnum == 0) {
    return base::MakeError(base::ErrorKind::kBadImage, "{}: no program headers", name);
  }
  if (ehdr.e_phnum == PN_XNUM) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: extended program header numbering (e_phnum {:#x}) is not supported",
                           name, ehdr.e_phnum);
  }
  if (ehdr.e_phentsize != sizeof(Phdr)) {
    return base::MakeError(base::ErrorKind::kBadImage, "{}: program header size {} is not {}", name,
                           ehdr.e_phentsize, sizeof(Phdr));
  }
  const uint64_t table_size = uint64_t{ehdr.e_phnum} * sizeof(Phdr);
  if (!RangeFits(ehdr.e_phoff, table_size, file.size())) {
    return base::MakeError(
        base::ErrorKind::kBadImage,
        "{}: program header table lies outside the file (offset {:#x}, size {:#x}, "
        "file {:#x})",
        name, uint64_t{ehdr.e_phoff}, table_size, file.size());
  }

  ElfImage image;
  image.is64 = Types::kClass == ELFCLASS64;
  image.dyn = ehdr.e_type == ET_DYN;
  image.entry = ehdr.e_entry;
  image.lowest = std::numeric_limits<uint64_t>::max();
  for (uint32_t i = 0; i < ehdr.e_phnum; ++i) {
    const auto phdr = Load<Phdr>(file, ehdr.e_phoff + uint64_t{i} * sizeof(Phdr));
    if (phdr.p_type != PT_LOAD && phdr.p_type != PT_NOTE && phdr.p_type != PT_DYNAMIC) continue;
    if (!RangeFits(phdr.p_offset, phdr.p_filesz, file.size())) {
      return base::MakeError(
          base::ErrorKind::kBadImage,
          "{}: program header {} lies outside the file (offset {:#x}, size {:#x}, "
          "file {:#x})",
          name, i, uint64_t{phdr.p_offset}, uint64_t{phdr.p_filesz}, file.size());
    }
    if (phdr.p_type == PT_DYNAMIC) {
      image.dynamic = ElfSegment{
          i, phdr.p_offset, phdr.p_filesz, phdr.p_paddr, phdr.p_vaddr, phdr.p_memsz, phdr.p_flags};
      continue;
    }
    if (phdr.p_type == PT_NOTE) {
      const uint64_t align = phdr.p_align == 8 ? 8 : 4;
      TRY(ParseNotes(file.subspan(phdr.p_offset, phdr.p_filesz), align, i, name, image));
      continue;
    }
    if (phdr.p_filesz > phdr.p_memsz) {
      return base::MakeError(
          base::ErrorKind::kBadImage,
          "{}: program header {} has a file size {:#x} larger than its memory size "
          "{:#x}",
          name, i, uint64_t{phdr.p_filesz}, uint64_t{phdr.p_memsz});
    }
    if (!RangeFits(phdr.p_paddr, phdr.p_memsz, std::numeric_limits<uint64_t>::max())) {
      return base::MakeError(
          base::ErrorKind::kBadImage,
          "{}: program header {} wraps around the address space (paddr {:#x}, size "
          "{:#x})",
          name, i, uint64_t{phdr.p_paddr}, uint64_t{phdr.p_memsz});
    }
    if (phdr.p_memsz == 0) continue;
    image.loads.push_back(
        {i, phdr.p_offset, phdr.p_filesz, phdr.p_paddr, phdr.p_vaddr, phdr.p_memsz, phdr.p_flags});
    image.lowest = std::min<uint64_t>(image.lowest, phdr.p_paddr);
    image.highest = std::max<uint64_t>(image.highest, phdr.p_paddr + phdr.p_memsz);
  }
  if (image.loads.empty()) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: no loadable segment (PT_LOAD with memory)", name);
  }
  return image;
}

}  // namespace

bool LooksLikeElf(std::span<const uint8_t> file) {
  return file.size() >= SELFMAG && std::memcmp(file.data(), ELFMAG, SELFMAG) == 0;
}

base::Result<ElfImage> ParseElf(std::span<const uint8_t> file, std::string_view name, ElfClass want,
                                bool allow_dyn) {
  if (!LooksLikeElf(file)) {
    return base::MakeError(base::ErrorKind::kBadImage, "{}: not an ELF file (bad magic)", name);
  }
  if (file.size() <= EI_CLASS) {
    return base::MakeError(base::ErrorKind::kBadImage, "{}: ELF header is truncated", name);
  }
  const uint8_t elf_class = file[EI_CLASS];
  if (elf_class == ELFCLASS64 && want != ElfClass::k32) {
    return ParseClass<Elf64Types>(file, name, allow_dyn);
  }
  if (elf_class == ELFCLASS32 && want != ElfClass::k64) {
    return ParseClass<Elf32Types>(file, name, allow_dyn);
  }
  const char* expected = want == ElfClass::k64   ? "ELFCLASS64"
                         : want == ElfClass::k32 ? "ELFCLASS32"
                                                 : "ELFCLASS32 or ELFCLASS64";
  return base::MakeError(base::ErrorKind::kBadImage, "{}: ELF class {} is not {}", name, elf_class,
                         expected);
}

base::Result<void> LoadElfSegments(const base::GuestMemory& memory, std::span<const uint8_t> file,
                                   const ElfImage& image, std::string_view name, uint64_t floor) {
  // Check everything before writing anything.
  for (const auto& segment : image.loads) {
    if (!memory.Contains(segment.paddr, segment.mem_size)) {
      return base::MakeError(base::ErrorKind::kBadImage,
                             "{}: program header {} [{:#x}, {:#x}) lies outside guest RAM ({} MiB)",
                             name, segment.index, segment.paddr, segment.paddr + segment.mem_size,
                             memory.ram_size() / base::MiB);
    }
    if (segment.paddr < base::kHighMemory && segment.paddr + segment.mem_size > base::kEbdaStart) {
      return base::MakeError(
          base::ErrorKind::kBadImage,
          "{}: program header {} [{:#x}, {:#x}) overlaps the reserved legacy area "
          "[{:#x}, {:#x}) (EBDA with the MP table, VGA, BIOS)",
          name, segment.index, segment.paddr, segment.paddr + segment.mem_size, base::kEbdaStart,
          base::kHighMemory);
    }
    if (segment.paddr < floor) {
      return base::MakeError(
          base::ErrorKind::kBadImage,
          "{}: program header {} [{:#x}, {:#x}) overlaps the boot structures below "
          "{:#x}",
          name, segment.index, segment.paddr, segment.paddr + segment.mem_size, floor);
    }
  }
  for (const auto& segment : image.loads) {
    TRY(memory.Write(segment.paddr, file.subspan(segment.offset, segment.file_size)));
    TRY(memory.Fill(segment.paddr + segment.file_size, 0, segment.mem_size - segment.file_size));
  }
  return {};
}

base::Result<void> CheckEntryInExecutableSegment(const ElfImage& image, uint64_t entry,
                                                 std::string_view what, std::string_view name) {
  for (const auto& segment : image.loads) {
    if ((segment.flags & PF_X) == 0) continue;
    if (entry >= segment.paddr && entry - segment.paddr < segment.mem_size) return {};
  }
  return base::MakeError(
      base::ErrorKind::kBadImage,
      "{}: {} {:#x} is not inside a loaded executable segment (by physical address)", name, what,
      entry);
}

}  // namespace firmware
