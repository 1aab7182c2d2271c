#include "firmware/limine.h"

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/layout.h"
#include "firmware/boot_memory.h"
#include "firmware/cpu_setup.h"
#include "firmware/e820.h"
#include "firmware/elf.h"
#include "firmware/image_file.h"
#include "firmware/page_tables.h"

namespace firmware {
namespace {

using base::ErrorKind;
using base::MakeError;

constexpr uint64_t kPage = kBootPage;
constexpr uint64_t kLargePage = 2 * base::MiB;
constexpr auto AlignUp = BootAlignUp;
constexpr auto AlignDown = BootAlignDown;

// ELF constants used here (System V gABI; x86-64 psABI §4.4 relocations).
constexpr uint32_t kPfX = 1, kPfW = 2;
constexpr int64_t kDtNull = 0, kDtRela = 7, kDtRelaSz = 8, kDtRelaEnt = 9, kDtRel = 17;
constexpr uint32_t kRX8664None = 0, kRX8664Relative = 8;

// Request delimiters (PROTOCOL.md "Requests Delimiters").
constexpr std::array<uint64_t, 4> kStartMarker = {0xf6b8f4b39de7d1ae, 0xfab91a6940fcb9cf,
                                                  0x785c6ed015d3e316, 0x181e920a7852b9d9};
constexpr std::array<uint64_t, 2> kEndMarker = {0xadc0e0531bb10d03, 0x9572709f31764c62};

// Every request the specification defines, by the last two words of its ID.
enum class Request {
  kBootloaderInfo,
  kExecutableCmdline,
  kFirmwareType,
  kStackSize,
  kHhdm,
  kFramebuffer,
  kPagingMode,
  kMp,
  kRiscvBspHartid,
  kMemmap,
  kEntryPoint,
  kExecutableFile,
  kModule,
  kRsdp,
  kSmbios,
  kEfiSystemTable,
  kTpmEventLog,
  kEfiMemmap,
  kDateAtBoot,
  kExecutableAddress,
  kDtb,
  kBootloaderPerformance,
  kKeepIommu,
  kTscFrequency,
  kFlantermFbInitParams,
  kEntropy,
};

struct KnownRequest {
  uint64_t id2, id3;
  Request request;
  const char* name;
};

constexpr KnownRequest kKnownRequests[] = {
    {0xf55038d8e2a1202f, 0x279426fcf5f59740, Request::kBootloaderInfo, "bootloader info"},
    {0x4b161536e598651e, 0xb390ad4a2f1f303a, Request::kExecutableCmdline, "executable cmdline"},
    {0x8c2f75d90bef28a8, 0x7045a4688eac00c3, Request::kFirmwareType, "firmware type"},
    {0x224ef0460a8e8926, 0xe1cb0fc25f46ea3d, Request::kStackSize, "stack size"},
    {0x48dcf1cb8ad2b852, 0x63984e959a98244b, Request::kHhdm, "hhdm"},
    {0x9d5827dcd881dd75, 0xa3148604f6fab11b, Request::kFramebuffer, "framebuffer"},
    {0x95c1a0edab0944cb, 0xa4e5cb3842f7488a, Request::kPagingMode, "paging mode"},
    {0x95a67b819a1b857e, 0xa0b61b723b6a73e0, Request::kMp, "mp"},
    {0x1369359f025525f9, 0x2ff2a56178391bb6, Request::kRiscvBspHartid, "riscv bsp hartid"},
    {0x67cf3d9d378a806f, 0xe304acdfc50c3c62, Request::kMemmap, "memmap"},
    {0x13d86c035a1cd3e1, 0x2b0caa89d8f3026a, Request::kEntryPoint, "entry point"},
    {0xad97e90e83f1ed67, 0x31eb5d1c5ff23b69, Request::kExecutableFile, "executable file"},
    {0x3e7e279702be32af, 0xca1c4f3bd1280cee, Request::kModule, "module"},
    {0xc5e77b6b397e7b43, 0x27637845accdcf3c, Request::kRsdp, "rsdp"},
    {0x9e9046f11e095391, 0xaa4a520fefbde5ee, Request::kSmbios, "smbios"},
    {0x5ceba5163eaaf6d6, 0x0a6981610cf65fcc, Request::kEfiSystemTable, "efi system table"},
    {0x98e094fc7e76e979, 0xee8d8775c54e1d1f, Request::kTpmEventLog, "tpm event log"},
    {0x7df62a431d6872d5, 0xa4fcdfb3e57306c8, Request::kEfiMemmap, "efi memmap"},
    {0x502746e184c088aa, 0xfbc5ec83e6327893, Request::kDateAtBoot, "date at boot"},
    {0x71ba76863cc55f63, 0xb2644a48c516a487, Request::kExecutableAddress, "executable address"},
    {0xb40ddb48fb54bac7, 0x545081493f81ffb7, Request::kDtb, "dtb"},
    {0x6b50ad9bf36d13ad, 0xdc4c7e88fc759e17, Request::kBootloaderPerformance,
     "bootloader performance"},
    {0x8ebaabe51f490179, 0x2aa86a59ffb4ab0f, Request::kKeepIommu, "x86-64 keep iommu"},
    {0x10f2ee1d87d195e4, 0xf747a2b78f6ddb31, Request::kTscFrequency, "tsc frequency"},
    {0x3259399fe7c5f126, 0xe01c1c8c5db9d1a9, Request::kFlantermFbInitParams,
     "flanterm fb init params"},
    {0x65ea80255d5682c5, 0x9117240723f493eb, Request::kEntropy, "entropy"},
};

// Offsets inside every request (PROTOCOL.md "Request").
constexpr uint64_t kRequestRevision = 32;
constexpr uint64_t kRequestResponse = 40;
constexpr uint64_t kRequestFirstField = 48;

// Response and data structures, from the specification's C declarations.
struct MemmapEntry {
  uint64_t base, length, type;
};
static_assert(sizeof(MemmapEntry) == 24);

struct MpInfo {
  uint32_t processor_id;
  uint32_t lapic_id;
  uint64_t reserved;
  uint64_t goto_address;
  uint64_t extra_argument;
};
static_assert(sizeof(MpInfo) == 32);
constexpr uint64_t kMpInfoGotoAddress = 16;

struct MpResponse {
  uint64_t revision;
  uint32_t flags;
  uint32_t bsp_lapic_id;
  uint64_t cpu_count;
  uint64_t cpus;
};
static_assert(sizeof(MpResponse) == 32);

// struct limine_framebuffer (response revision 1: with its modes) and
// struct limine_video_mode.
struct LimineFramebuffer {
  uint64_t address, width, height, pitch;
  uint16_t bpp;
  uint8_t memory_model, red_mask_size, red_mask_shift, green_mask_size, green_mask_shift,
      blue_mask_size, blue_mask_shift;
  uint8_t unused[7];
  uint64_t edid_size, edid;
  uint64_t mode_count, modes;
};
static_assert(sizeof(LimineFramebuffer) == 80);
struct LimineVideoMode {
  uint64_t pitch, width, height;
  uint16_t bpp;
  uint8_t memory_model, red_mask_size, red_mask_shift, green_mask_size, green_mask_shift,
      blue_mask_size, blue_mask_shift;
};
static_assert(sizeof(LimineVideoMode) == 40);
constexpr uint8_t kLimineFramebufferRgb = 1;

struct Uuid {
  uint32_t a;
  uint16_t b, c;
  uint8_t d[8];
};
struct File {
  uint64_t revision, address, size, path, string;
  uint32_t media_type, unused;
  uint8_t tftp_ipv4[4];
  uint32_t tftp_port, partition_index, mbr_disk_id;
  Uuid gpt_disk_uuid, gpt_part_uuid, part_uuid;
};
static_assert(sizeof(File) == 112);

// The AP parking loop, run by every application processor in long mode with
// RDI = its limine_mp_info (HHDM address) and RSP = the top of its stack:
//   1: mov rax, [rdi + 16]   ; goto_address
//      test rax, rax
//      jnz 2f
//      pause
//      jmp 1b
//   2: push 0                ; the invalid return address the BSP gets too
//      push rax
//      xor eax, eax          ; every GPR but RDI is 0, as on the BSP
//      push 2
//      popfq                 ; RFLAGS = 0x2
//      ret                   ; to goto_address
// x86-64 loads are acquire: the kernel's release store to goto_address is
// seen with everything it published before it.
constexpr std::array<uint8_t, 22> kApParkCode = {
    0x48, 0x8b, 0x47, 0x10,  // mov rax, [rdi + 0x10]
    0x48, 0x85, 0xc0,        // test rax, rax
    0x75, 0x04,              // jnz +4
    0xf3, 0x90,              // pause
    0xeb, 0xf3,              // jmp -13
    0x6a, 0x00,              // push 0
    0x50,                    // push rax
    0x31, 0xc0,              // xor eax, eax
    0x6a, 0x02,              // push 2
    0x9d,                    // popfq
    0xc3,                    // ret
};
static_assert(kMpInfoGotoAddress == 0x10, "the parking loop reads goto_address at +0x10");

// The loaded image in host memory: request answers are patched into it
// before it is copied to guest RAM.
struct Image {
  ElfImage elf;
  uint64_t min_vaddr = 0;  // page-aligned, before the slide
  uint64_t slide = 0;
  std::vector<uint8_t> bytes;  // [min_vaddr, max_vaddr) page-aligned

  uint64_t Get(uint64_t offset) const {
    uint64_t value;
    std::memcpy(&value, bytes.data() + offset, 8);
    return value;
  }
  void Set(uint64_t offset, uint64_t value) { std::memcpy(bytes.data() + offset, &value, 8); }
  bool Holds(uint64_t offset, uint64_t size) const {
    return offset <= bytes.size() && size <= bytes.size() - offset;
  }
};

// `room`: the guest RAM the image may take (from where it is loaded to
// min(RAM, 3 GiB)), checked before the host buffer is allocated: an image's
// span comes from its program headers, which a hostile file sets to 2 GiB.
base::Result<Image> LoadImage(std::span<const uint8_t> file, std::string_view name,
                              const base::GuestMemory& memory, uint64_t room) {
  Image image;
  image.elf = TRY(ParseElf(file, name, ElfClass::k64, /*allow_dyn=*/true));
  std::vector<ElfSegment> loads = image.elf.loads;
  std::sort(loads.begin(), loads.end(),
            [](const ElfSegment& a, const ElfSegment& b) { return a.vaddr < b.vaddr; });
  for (const auto& segment : loads) {
    if (segment.vaddr + segment.mem_size < segment.vaddr) {
      return MakeError(ErrorKind::kBadImage,
                       "{}: program header {} wraps around the address space (vaddr {:#x}, size "
                       "{:#x})",
                       name, segment.index, segment.vaddr, segment.mem_size);
    }
  }
  for (size_t i = 1; i < loads.size(); ++i) {
    if (loads[i].vaddr < loads[i - 1].vaddr + loads[i - 1].mem_size) {
      return MakeError(ErrorKind::kBadImage,
                       "{}: program headers {} [{:#x}, {:#x}) and {} [{:#x}, {:#x}) overlap", name,
                       loads[i - 1].index, loads[i - 1].vaddr,
                       loads[i - 1].vaddr + loads[i - 1].mem_size, loads[i].index, loads[i].vaddr,
                       loads[i].vaddr + loads[i].mem_size);
    }
  }
  image.min_vaddr = AlignDown(loads.front().vaddr, kPage);
  const uint64_t end = loads.back().vaddr + loads.back().mem_size;
  if (end > UINT64_MAX - kPage + 1) {
    return MakeError(ErrorKind::kBadImage, "{}: the image ends at the top of the address space",
                     name);
  }
  const uint64_t max_vaddr = AlignUp(end, kPage);
  if (image.min_vaddr < kLimineKernelFloor) {
    if (!image.elf.dyn) {
      return MakeError(ErrorKind::kBadImage,
                       "{}: program header {} is linked at {:#x}, below {:#x}: the Limine "
                       "protocol loads non-relocatable executables in the top 2 GiB",
                       name, loads.front().index, loads.front().vaddr, kLimineKernelFloor);
    }
    image.slide = kLimineKernelFloor - image.min_vaddr;
  }
  const uint64_t size = max_vaddr - image.min_vaddr;
  if (size > 2 * base::GiB - kPage || image.min_vaddr + image.slide + size < size) {
    return MakeError(ErrorKind::kBadImage,
                     "{}: the loaded image spans {:#x} bytes; the top 2 GiB cannot hold it", name,
                     size);
  }
  if (size > room) {
    return MakeError(ErrorKind::kConfig,
                     "guest memory of {} MiB is too small for {}: its segments span {:#x} bytes "
                     "and {:#x} are free for it",
                     memory.ram_size() / base::MiB, name, size, room);
  }
  image.bytes.assign(size, 0);
  for (const auto& segment : loads) {
    std::memcpy(image.bytes.data() + (segment.vaddr - image.min_vaddr),
                file.data() + segment.offset, segment.file_size);
  }
  return image;
}

// R_X86_64_RELATIVE relocations of a position-independent executable
// (psABI §4.4: B + A, B = the slide), from DT_RELA. Applied even with a
// slide of 0: linkers need not leave the addend in place.
base::Result<void> Relocate(Image& image, std::span<const uint8_t> file, std::string_view name) {
  if (!image.elf.dyn || !image.elf.dynamic) return {};
  const ElfSegment& dynamic = *image.elf.dynamic;
  uint64_t rela = 0, rela_size = 0, rela_entry = 24;
  bool have_rela = false;
  for (uint64_t at = 0; at + 16 <= dynamic.file_size; at += 16) {
    int64_t tag;
    uint64_t value;
    std::memcpy(&tag, file.data() + dynamic.offset + at, 8);
    std::memcpy(&value, file.data() + dynamic.offset + at + 8, 8);
    if (tag == kDtNull) break;
    if (tag == kDtRela) rela = value, have_rela = true;
    if (tag == kDtRelaSz) rela_size = value;
    if (tag == kDtRelaEnt) rela_entry = value;
    if (tag == kDtRel) {
      return MakeError(ErrorKind::kBadImage,
                       "{}: DT_REL relocations (without addends) are not x86-64's; vmm applies "
                       "DT_RELA only",
                       name);
    }
  }
  if (!have_rela || rela_size == 0) return {};
  if (rela_entry != 24 || rela < image.min_vaddr ||
      !image.Holds(rela - image.min_vaddr, rela_size) || rela_size % 24 != 0) {
    return MakeError(ErrorKind::kBadImage,
                     "{}: DT_RELA {:#x} (size {:#x}, entry size {}) does not lie in the image",
                     name, rela, rela_size, rela_entry);
  }
  const uint64_t table = rela - image.min_vaddr;
  for (uint64_t i = 0; i < rela_size / 24; ++i) {
    const uint64_t offset = image.Get(table + i * 24);
    const uint64_t info = image.Get(table + i * 24 + 8);
    const uint64_t addend = image.Get(table + i * 24 + 16);
    const uint32_t type = static_cast<uint32_t>(info);
    if (type == kRX8664None) continue;
    if (type != kRX8664Relative) {
      return MakeError(ErrorKind::kBadImage,
                       "{}: relocation {} has type {} at {:#x}; vmm applies only "
                       "R_X86_64_RELATIVE (8), as for a static position-independent executable",
                       name, i, type, offset);
    }
    if (offset < image.min_vaddr || !image.Holds(offset - image.min_vaddr, 8)) {
      return MakeError(ErrorKind::kBadImage, "{}: relocation {} at {:#x} lies outside the image",
                       name, i, offset);
    }
    image.Set(offset - image.min_vaddr, addend + image.slide);
  }
  return {};
}

struct Scan {
  std::optional<uint64_t> base_revision_tag;  // image offset
  std::map<Request, uint64_t> requests;       // request -> image offset
  uint64_t unknown = 0;                       // requests with the common magic vmm does not know
};

// Base revision tag and requests, 8-byte aligned by virtual address, between
// the last start marker and the first end marker after it.
base::Result<Scan> ScanRequests(const Image& image, std::string_view name) {
  // min_vaddr is page-aligned, so image offsets and vaddrs agree mod 8.
  const uint64_t size = image.bytes.size() & ~uint64_t{7};
  uint64_t from = 0, to = size;
  for (uint64_t at = 0; at + 32 <= size; at += 8) {
    if (image.Get(at) == kStartMarker[0] && image.Get(at + 8) == kStartMarker[1] &&
        image.Get(at + 16) == kStartMarker[2] && image.Get(at + 24) == kStartMarker[3]) {
      from = at + 32;
    }
  }
  for (uint64_t at = from; at + 16 <= size; at += 8) {
    if (image.Get(at) == kEndMarker[0] && image.Get(at + 8) == kEndMarker[1]) {
      to = at;
      break;
    }
  }
  Scan scan;
  for (uint64_t at = from; at + 24 <= to; at += 8) {
    const uint64_t w0 = image.Get(at), w1 = image.Get(at + 8);
    if (w0 == kLimineBaseRevisionMagic0 && w1 == kLimineBaseRevisionMagic1) {
      if (!scan.base_revision_tag) scan.base_revision_tag = at;
      continue;
    }
    if (w0 != kLimineCommonMagic0 || w1 != kLimineCommonMagic1 || at + 48 > to) continue;
    const uint64_t id2 = image.Get(at + 16), id3 = image.Get(at + 24);
    bool known = false;
    for (const auto& request : kKnownRequests) {
      if (request.id2 != id2 || request.id3 != id3) continue;
      known = true;
      if (auto [it, fresh] = scan.requests.emplace(request.request, at); !fresh) {
        return MakeError(
            ErrorKind::kBadImage,
            "{}: two {} requests (at {:#x} and {:#x}); the protocol allows one of each", name,
            request.name, image.min_vaddr + it->second, image.min_vaddr + at);
      }
    }
    if (!known) ++scan.unknown;
  }
  return scan;
}

const char* RequestName(Request request) {
  for (const auto& known : kKnownRequests) {
    if (known.request == request) return known.name;
  }
  return "?";
}

// The Limine memory map: the e820 map (RAM usable, the rest reserved) with
// vmm's own regions painted over it.
class MemoryMap : public RegionMap<LimineMemoryType> {
 public:
  explicit MemoryMap(uint64_t ram_size)
      : RegionMap(ram_size, LimineMemoryType::kUsable, LimineMemoryType::kReserved) {}
  // Usable and bootloader-reclaimable entries are 4 KiB aligned at both
  // ends (PROTOCOL.md "Memory Map Feature"): partial pages become reserved.
  void AlignUsable() {
    AlignTypes({LimineMemoryType::kUsable, LimineMemoryType::kBootloaderReclaimable},
               LimineMemoryType::kReserved);
  }
};

// Which physical ranges the HHDM maps for `revision` (PROTOCOL.md "Memory
// Layout at Entry"), given the final memory map.
std::vector<std::pair<uint64_t, uint64_t>> HhdmRanges(const MemoryMap& map, uint64_t revision) {
  using T = LimineMemoryType;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  if (revision <= 2) ranges.push_back({0, 4 * base::GiB});
  for (const auto& r : map.entries()) {
    bool mapped;
    if (revision == 0) {
      mapped = true;
    } else if (revision <= 2) {
      mapped = r.type != T::kReserved && r.type != T::kBadMemory;
    } else {
      mapped = r.type == T::kUsable || r.type == T::kBootloaderReclaimable ||
               r.type == T::kExecutableAndModules || r.type == T::kFramebuffer ||
               (revision >= 4 && (r.type == T::kReservedMapped || r.type == T::kAcpiReclaimable ||
                                  r.type == T::kAcpiNvs));
    }
    if (!mapped) continue;
    // 4 KiB granularity, overshooting unaligned ends as the spec allows.
    const uint64_t begin = AlignDown(r.begin, kPage), end = AlignUp(r.end, kPage);
    if (revision <= 2 && end <= 4 * base::GiB) continue;  // inside the first 4 GiB already
    ranges.push_back({std::max(begin, revision <= 2 ? 4 * base::GiB : begin), end});
  }
  return ranges;
}

base::Result<void> MapRanges(PageTableBuilder& tables,
                             const std::vector<std::pair<uint64_t, uint64_t>>& ranges,
                             uint64_t offset, uint64_t skip_below) {
  for (auto [begin, end] : ranges) {
    begin = std::max(begin, skip_below);
    if (begin >= end) continue;
    // 4 KiB pages up to the first 2 MiB boundary, large pages after.
    const uint64_t head = std::min(end, AlignUp(begin, kLargePage));
    TRY(tables.Map(offset + begin, begin, head - begin, kPteWrite, false));
    if (head < end) TRY(tables.Map(offset + head, head, end - head, kPteWrite, true));
  }
  return {};
}

std::string AbsolutePath(const std::string& path) {
  std::error_code error;
  auto absolute = std::filesystem::absolute(path, error);
  return error ? path : absolute.lexically_normal().string();
}

}  // namespace

bool LooksLikeLimine(std::span<const uint8_t> file) {
  if (!LooksLikeElf(file)) return false;
  auto elf = ParseElf(file, "", ElfClass::k64, /*allow_dyn=*/true);
  if (!elf) return false;
  for (const auto& segment : elf->loads) {
    // The first 8-byte boundary by virtual address inside the file part.
    const uint64_t skip = (8 - segment.vaddr % 8) % 8;
    for (uint64_t at = skip; at + 16 <= segment.file_size; at += 8) {
      uint64_t w0, w1;
      std::memcpy(&w0, file.data() + segment.offset + at, 8);
      std::memcpy(&w1, file.data() + segment.offset + at + 8, 8);
      if ((w0 == kLimineBaseRevisionMagic0 && w1 == kLimineBaseRevisionMagic1) ||
          (w0 == kLimineCommonMagic0 && w1 == kLimineCommonMagic1)) {
        return true;
      }
    }
  }
  return false;
}

base::Result<BootInfo> BootLimine(const base::GuestMemory& memory, const BootConfig& config,
                                  uint64_t rsdp, std::span<const uint8_t> file,
                                  std::string_view name) {
  using T = LimineMemoryType;
  // The executable goes to kernel_phys (below), under min(RAM, 3 GiB).
  const uint64_t image_room =
      std::min(memory.ram_size(), base::kMmioHoleStart) > 2 * base::MiB
          ? std::min(memory.ram_size(), base::kMmioHoleStart) - 2 * base::MiB
          : 0;
  Image image = TRY(LoadImage(file, name, memory, image_room));
  TRY(Relocate(image, file, name));
  const Scan scan = TRY(ScanRequests(image, name));
  auto request_at = [&](Request r) -> std::optional<uint64_t> {
    auto it = scan.requests.find(r);
    return it == scan.requests.end() ? std::nullopt : std::optional<uint64_t>(it->second);
  };
  auto request_field = [&](Request r, uint64_t field) -> uint64_t {
    const uint64_t at = *request_at(r) + field;
    return image.Holds(at, 8) ? image.Get(at) : 0;
  };
  auto request_revision = [&](Request r) { return request_field(r, kRequestRevision); };

  // Base revision: no tag means 0; newer than vmm knows: loaded as the
  // newest, the tag's 3rd word left as it was.
  uint64_t asked = 0;
  if (scan.base_revision_tag) asked = image.Get(*scan.base_revision_tag + 16);
  const uint64_t revision = std::min(asked, kLimineMaxBaseRevision);
  if (scan.base_revision_tag) {
    image.Set(*scan.base_revision_tag + 8, revision);
    if (asked <= kLimineMaxBaseRevision) image.Set(*scan.base_revision_tag + 16, 0);
  }

  // Paging mode: vmm builds 4-level tables (LIMINE_PAGING_MODE_X86_64_4LVL).
  if (request_at(Request::kPagingMode) && request_revision(Request::kPagingMode) >= 1) {
    const uint64_t min_mode = request_field(Request::kPagingMode, kRequestFirstField + 16);
    if (min_mode > 0) {
      return MakeError(ErrorKind::kBadImage,
                       "{}: its paging mode request asks for min_mode {} (5-level paging); vmm "
                       "builds 4-level page tables only",
                       name, min_mode);
    }
  }

  // Entry: e_entry, or the entry point request's, inside an executable segment.
  uint64_t entry = image.elf.entry + image.slide;
  if (request_at(Request::kEntryPoint)) {
    entry = request_field(Request::kEntryPoint, kRequestFirstField);
  }
  bool entry_ok = false;
  for (const auto& segment : image.elf.loads) {
    const uint64_t v = segment.vaddr + image.slide;
    if ((segment.flags & kPfX) && entry >= v && entry - v < segment.mem_size) entry_ok = true;
  }
  if (!entry_ok) {
    return MakeError(ErrorKind::kBadImage,
                     "{}: entry point {:#x}{} is not inside an executable (PF_X) segment", name,
                     entry, request_at(Request::kEntryPoint) ? " (entry point request)" : "");
  }

  // Physical layout: the executable 2 MiB-aligned from 2 MiB, its file copy
  // (executable file request) and the modules after it, each 4 KiB aligned,
  // then the bootloader-reclaimable arena, all below min(RAM, 3 GiB).
  const uint64_t low_end = std::min(memory.ram_size(), base::kMmioHoleStart);
  const uint64_t kernel_phys = 2 * base::MiB;
  uint64_t cursor = kernel_phys + image.bytes.size();
  if (cursor > low_end) {
    return MakeError(ErrorKind::kConfig,
                     "guest memory of {} MiB is too small for {}: its image needs [{:#x}, {:#x})",
                     memory.ram_size() / base::MiB, name, kernel_phys, cursor);
  }
  std::optional<uint64_t> file_copy;
  if (request_at(Request::kExecutableFile)) {
    file_copy = cursor;
    cursor = AlignUp(cursor + file.size(), kPage);
  }
  struct Module {
    std::vector<uint8_t> data;
    std::string path;
    uint64_t address = 0;
  };
  std::vector<Module> modules;
  for (const auto& path : config.initrd_paths) {
    Module module{TRY(ReadImageFile(path, "initrd", memory.ram_size())), path, cursor};
    cursor = AlignUp(cursor + module.data.size(), kPage);
    modules.push_back(std::move(module));
  }
  if (cursor > low_end) {
    return MakeError(ErrorKind::kConfig,
                     "guest memory of {} MiB is too small for {} and its {} module(s): they need "
                     "[{:#x}, {:#x}) below {:#x}",
                     memory.ram_size() / base::MiB, name, modules.size(), kernel_phys, cursor,
                     low_end);
  }
  const uint64_t exec_end = cursor;
  BootArena arena(memory, cursor, low_end, "the Limine boot structures");
  auto virt = [](uint64_t phys) { return phys + kLimineHhdmOffset; };

  // GDT: null, 16-bit code/data, 32-bit code/data, 64-bit code/data.
  const std::array<uint64_t, 7> gdt = {
      0,
      GdtEntry(0x009b, 0, 0xffff),         // 16-bit code, readable
      GdtEntry(0x0093, 0, 0xffff),         // 16-bit data, writable
      GdtEntry(kCode32Flags, 0, 0xfffff),  // 32-bit code
      GdtEntry(kDataFlags, 0, 0xfffff),    // 32-bit data
      GdtEntry(kCode64Flags, 0, 0xfffff),  // 64-bit code (L)
      GdtEntry(kDataFlags, 0, 0xfffff),    // 64-bit data
  };
  const uint64_t gdt_at = TRY(arena.PutObj(gdt));

  uint64_t stack_size = kLimineDefaultStack;
  if (request_at(Request::kStackSize)) {
    stack_size = std::max(stack_size,
                          AlignUp(request_field(Request::kStackSize, kRequestFirstField), kPage));
  }
  const uint64_t bsp_stack_top = TRY(arena.Alloc(stack_size, kPage)) + stack_size;

  std::vector<std::string> answered, unanswered;
  auto answer = [&](Request r, uint64_t response_phys) {
    image.Set(*request_at(r) + kRequestResponse, virt(response_phys));
    answered.push_back(RequestName(r));
  };
  const uint64_t cmdline = TRY(arena.PutString(config.cmdline));
  // The framebuffer: the user's, or the default one when the kernel asks.
  const std::optional<Framebuffer> framebuffer = config.framebuffer ? config.framebuffer
                                                 : request_at(Request::kFramebuffer)
                                                     ? config.framebuffer_on_request
                                                     : std::nullopt;

  for (const auto& [request, at] : scan.requests) {
    switch (request) {
      case Request::kBootloaderInfo: {
        const uint64_t name_at = TRY(arena.PutString("vmm"));
        const uint64_t version_at = TRY(arena.PutString(VMM_VERSION_STRING));
        answer(request,
               TRY(arena.PutObj(std::array<uint64_t, 3>{0, virt(name_at), virt(version_at)})));
        break;
      }
      case Request::kExecutableCmdline:
        answer(request, TRY(arena.PutObj(std::array<uint64_t, 2>{0, virt(cmdline)})));
        break;
      case Request::kFirmwareType:  // LIMINE_FIRMWARE_TYPE_X86BIOS: vmm plays the BIOS
        answer(request, TRY(arena.PutObj(std::array<uint64_t, 2>{0, 0})));
        break;
      case Request::kStackSize:
      case Request::kEntryPoint:
      case Request::kKeepIommu:  // no IOMMU to disable: it is kept by definition
        answer(request, TRY(arena.PutObj(uint64_t{0})));
        break;
      case Request::kHhdm:
        answer(request, TRY(arena.PutObj(std::array<uint64_t, 2>{0, kLimineHhdmOffset})));
        break;
      case Request::kPagingMode:
        answer(request, TRY(arena.PutObj(std::array<uint64_t, 2>{0, 0})));
        break;
      case Request::kFramebuffer: {
        if (!framebuffer) {
          unanswered.push_back(RequestName(request));  // --framebuffer off
          break;
        }
        const Framebuffer& fb = *framebuffer;
        // XRGB8888: red 16-23, green 8-15, blue 0-7.
        const LimineVideoMode mode{fb.pitch, fb.width, fb.height, 32, kLimineFramebufferRgb, 8, 16,
                                   8,        8,        8,         0};
        const uint64_t mode_at = TRY(arena.PutObj(mode));
        const uint64_t modes = TRY(arena.PutObj(virt(mode_at)));
        LimineFramebuffer entry{};
        entry.address = virt(fb.address);
        entry.width = fb.width;
        entry.height = fb.height;
        entry.pitch = fb.pitch;
        entry.bpp = 32;
        entry.memory_model = kLimineFramebufferRgb;
        entry.red_mask_size = 8;
        entry.red_mask_shift = 16;
        entry.green_mask_size = 8;
        entry.green_mask_shift = 8;
        entry.blue_mask_size = 8;
        entry.blue_mask_shift = 0;
        entry.mode_count = 1;
        entry.modes = virt(modes);
        const uint64_t entry_at = TRY(arena.PutObj(entry));
        const uint64_t list = TRY(arena.PutObj(virt(entry_at)));
        answer(request, TRY(arena.PutObj(std::array<uint64_t, 3>{1, 1, virt(list)})));
        break;
      }
      case Request::kExecutableFile:
      case Request::kModule:
      case Request::kMp:
      case Request::kMemmap:
        break;  // below: they need the file, module and CPU layout
      case Request::kRsdp:
        if (rsdp == 0) {
          unanswered.push_back(RequestName(request));
          break;
        }
        // Physical under base revision 3 only.
        answer(request,
               TRY(arena.PutObj(std::array<uint64_t, 2>{0, revision == 3 ? rsdp : virt(rsdp)})));
        break;
      case Request::kDateAtBoot:
        answer(
            request,
            TRY(arena.PutObj(std::array<int64_t, 2>{0, static_cast<int64_t>(std::time(nullptr))})));
        break;
      case Request::kExecutableAddress:
        answer(request, TRY(arena.PutObj(std::array<uint64_t, 3>{0, kernel_phys,
                                                                 image.min_vaddr + image.slide})));
        break;
      case Request::kEntropy: {
        const uint64_t count =
            std::min(request_field(request, kRequestFirstField), kLimineMaxEntropyValues);
        std::vector<uint64_t> values(count);
        size_t filled = 0;
        while (filled < count * 8) {
          const ssize_t n =
              getrandom(reinterpret_cast<uint8_t*>(values.data()) + filled, count * 8 - filled, 0);
          if (n <= 0) {
            return MakeError(ErrorKind::kInternal, "getrandom for the entropy request: {}",
                             std::strerror(errno));
          }
          filled += static_cast<size_t>(n);
        }
        uint64_t values_at = 0;
        if (count != 0) {
          const auto bytes = std::span(reinterpret_cast<const uint8_t*>(values.data()), count * 8);
          values_at = virt(TRY(arena.Put(bytes)));
        }
        answer(request, TRY(arena.PutObj(std::array<uint64_t, 3>{0, count, values_at})));
        break;
      }
      default:  // SMBIOS, EFI, TPM, DTB, RISC-V, timings, TSC, flanterm
        unanswered.push_back(RequestName(request));
        break;
    }
  }

  auto put_file = [&](uint64_t address, uint64_t size, const std::string& path,
                      uint64_t string_at) -> base::Result<uint64_t> {
    File f{};
    f.address = virt(address);
    f.size = size;
    f.path = virt(TRY(arena.PutString(AbsolutePath(path))));
    f.string = virt(string_at);
    return arena.PutObj(f);
  };
  if (file_copy) {
    const uint64_t f = TRY(put_file(*file_copy, file.size(), config.kernel_path, cmdline));
    answer(Request::kExecutableFile, TRY(arena.PutObj(std::array<uint64_t, 2>{0, virt(f)})));
  }
  if (request_at(Request::kModule)) {
    if (modules.empty()) {
      unanswered.push_back("module");  // "If no modules are available, no response"
    } else {
      std::vector<uint64_t> pointers;
      for (const auto& module : modules) {
        const uint64_t string_at = TRY(arena.PutString(module.path));
        pointers.push_back(
            virt(TRY(put_file(module.address, module.data.size(), module.path, string_at))));
      }
      const uint64_t array = TRY(arena.Put(
          std::span(reinterpret_cast<const uint8_t*>(pointers.data()), pointers.size() * 8)));
      // Revision 0: internal modules (request revision 1) are not loaded.
      answer(Request::kModule,
             TRY(arena.PutObj(std::array<uint64_t, 3>{0, modules.size(), virt(array)})));
    }
  }

  // MP: every AP parked in long mode on its own stack and mp_info.
  std::vector<CpuBootState> aps;
  std::vector<uint64_t> ap_info, ap_stack_tops;
  if (request_at(Request::kMp)) {
    std::vector<uint64_t> pointers;
    for (uint32_t cpu = 0; cpu < config.cpus; ++cpu) {
      // ACPI processor UID and APIC ID are the vCPU index (firmware/acpi.h).
      const uint64_t info_at = TRY(arena.PutObj(MpInfo{cpu, cpu, 0, 0, 0}));
      pointers.push_back(virt(info_at));
      if (cpu == 0) continue;
      ap_info.push_back(info_at);
      ap_stack_tops.push_back(TRY(arena.Alloc(stack_size, kPage)) + stack_size);
    }
    const uint64_t array = TRY(arena.Put(
        std::span(reinterpret_cast<const uint8_t*>(pointers.data()), pointers.size() * 8)));
    // flags 0: x2APIC is not enabled (the request's bit 0 asks "if possible").
    answer(Request::kMp, TRY(arena.PutObj(MpResponse{0, 0, 0, config.cpus, virt(array)})));
  }
  const uint64_t park_code =
      config.cpus > 1 && request_at(Request::kMp) ? TRY(arena.Put(kApParkCode, 16)) : 0;

  // The memory map's storage now (its size is bounded), its contents after
  // the page tables, which are the arena's last allocation.
  constexpr uint64_t kMaxMemmapEntries = 32;
  uint64_t memmap_entries = 0, memmap_pointers = 0, memmap_response = 0;
  if (request_at(Request::kMemmap)) {
    memmap_entries = TRY(arena.Alloc(kMaxMemmapEntries * sizeof(MemmapEntry)));
    memmap_pointers = TRY(arena.Alloc(kMaxMemmapEntries * 8));
    memmap_response = TRY(arena.Alloc(24));
    answer(Request::kMemmap, memmap_response);
  }

  // The map as it will be, with the arena's end still open: every RAM byte
  // the arena may take is RAM either way, so the HHDM does not depend on it.
  auto build_map = [&](uint64_t arena_end) {
    MemoryMap map(memory.ram_size());
    map.Paint(0, kPage, T::kReserved);  // never usable below base revision 3; vmm keeps it so
    if (rsdp != 0) {
      map.Paint(base::kAcpiTables, base::kAcpiTables + base::kAcpiTablesSize, T::kAcpiReclaimable);
    }
    map.Paint(kernel_phys, exec_end, T::kExecutableAndModules);
    if (framebuffer) {
      map.Paint(framebuffer->address, framebuffer->address + framebuffer->size(), T::kFramebuffer);
    }
    map.Paint(arena.start(), arena_end, T::kBootloaderReclaimable);
    map.AlignUsable();
    return map;
  };
  const MemoryMap provisional = build_map(low_end);
  auto tables = TRY(PageTableBuilder::Create(memory, [&]() { return arena.Alloc(kPage, kPage); }));
  TRY(MapRanges(tables, HhdmRanges(provisional, revision), kLimineHhdmOffset, 0));
  if (revision == 0) {
    // Base revision 0 also identity-maps from 4 KiB: [0x1000, 4 GiB) and
    // every memory map region.
    TRY(MapRanges(tables, HhdmRanges(provisional, 0), 0, kPage));
  }
  for (const auto& segment : image.elf.loads) {
    const uint64_t v = AlignDown(segment.vaddr, kPage);
    const uint64_t e = AlignUp(segment.vaddr + segment.mem_size, kPage);
    const uint64_t flags =
        ((segment.flags & kPfW) ? kPteWrite : 0) | ((segment.flags & kPfX) ? 0 : kPteNoExecute);
    TRY(tables.Map(v + image.slide, kernel_phys + (v - image.min_vaddr), e - v, flags, false));
  }
  const MemoryMap map = build_map(arena.end());
  if (memmap_response) {
    const auto& ranges = map.entries();
    if (ranges.size() > kMaxMemmapEntries) {
      return MakeError(ErrorKind::kInternal, "Limine memory map has {} entries; room for {}",
                       ranges.size(), kMaxMemmapEntries);
    }
    for (size_t i = 0; i < ranges.size(); ++i) {
      const MemmapEntry entry{ranges[i].begin, ranges[i].end - ranges[i].begin,
                              static_cast<uint64_t>(ranges[i].type)};
      TRY(memory.WriteObj(memmap_entries + i * sizeof(MemmapEntry), entry));
      TRY(memory.WriteObj(memmap_pointers + i * 8, virt(memmap_entries + i * sizeof(MemmapEntry))));
    }
    TRY(memory.WriteObj(memmap_response,
                        std::array<uint64_t, 3>{0, ranges.size(), virt(memmap_pointers)}));
  }

  // Now the image, with its answers, and the files.
  TRY(memory.Write(kernel_phys, image.bytes));
  if (file_copy) TRY(memory.Write(*file_copy, file));
  for (const auto& module : modules) TRY(memory.Write(module.address, module.data));

  // Machine state at entry (PROTOCOL.md "Machine State at Entry", x86-64),
  // with base revision 5's stricter registers for every revision.
  auto state = [&](uint64_t rip, uint64_t rsp) {
    CpuBootState cpu = LongModeEntryState(gdt, virt(gdt_at), kLimineCodeSelector,
                                          kLimineDataSelector, tables.root());
    cpu.rip = rip;
    cpu.rsp = rsp;
    cpu.msrs = {{kMsrPat, kLiminePat}};
    return cpu;
  };
  BootInfo info;
  info.protocol = BootProtocol::kLimine;
  // The BSP's stack holds the invalid return address 0; an AP's parking
  // loop pushes its own.
  TRY(memory.WriteObj(bsp_stack_top - 8, uint64_t{0}));
  info.cpu = state(entry, virt(bsp_stack_top - 8));
  for (size_t i = 0; i < ap_info.size(); ++i) {
    CpuBootState ap = state(virt(park_code), virt(ap_stack_tops[i]));
    ap.rdi = virt(ap_info[i]);
    aps.push_back(ap);
  }
  info.aps = std::move(aps);
  info.framebuffer = framebuffer;
  info.kernel_start = kernel_phys;
  info.kernel_end = kernel_phys + image.bytes.size();
  if (!modules.empty()) {
    info.initrd_start = modules.front().address;
    info.initrd_end = modules.back().address + modules.back().data.size();
  }
  std::string unanswered_list;
  for (const auto& n : unanswered) unanswered_list += (unanswered_list.empty() ? "" : ", ") + n;
  info.description = fmt::format(
      "Limine base revision {}{} at {:#x} (physical {:#x}{}), entry {:#x}, {} of {} requests "
      "answered{}{}{}",
      revision,
      asked > kLimineMaxBaseRevision ? fmt::format(" (asked {}: newer than vmm knows)", asked) : "",
      image.min_vaddr + image.slide, kernel_phys,
      image.slide ? fmt::format(", slide {:#x}", image.slide) : "", entry, answered.size(),
      scan.requests.size() + scan.unknown,
      unanswered.empty() ? "" : " (not answered: ", unanswered.empty() ? "" : unanswered_list + ")",
      scan.unknown ? fmt::format(" ({} unknown request(s))", scan.unknown) : "");
  return info;
}

}  // namespace firmware
