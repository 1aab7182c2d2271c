#include "firmware/pvh.h"

#include "firmware/e820.h"

namespace firmware {
namespace {

// start_info.h, all little-endian, naturally aligned.
struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

struct HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);

}  // namespace

base::Result<void> WritePvhStartInfo(const base::GuestMemory& memory, uint64_t cmdline_address,
                                     const std::optional<PlacedInitrd>& initrd, uint64_t rsdp) {
  const auto map = BuildE820Map(memory.ram_size());
  if (map.size() * sizeof(HvmMemmapEntry) > kPvhMemmapEnd - kPvhMemmapAddress) {
    return base::MakeError(base::ErrorKind::kInternal, "PVH memory map of {} entries does not fit",
                           map.size());
  }
  TRY(memory.Fill(base::kPvhStartInfo, 0, kPvhMemmapEnd - base::kPvhStartInfo));
  HvmStartInfo info{};
  info.magic = kHvmStartMagic;
  info.version = kHvmStartInfoVersion;
  info.cmdline_paddr = cmdline_address;
  info.rsdp_paddr = rsdp;
  info.memmap_paddr = kPvhMemmapAddress;
  info.memmap_entries = static_cast<uint32_t>(map.size());
  if (initrd) {
    info.nr_modules = 1;
    info.modlist_paddr = kPvhModlistAddress;
    TRY(memory.WriteObj(kPvhModlistAddress, HvmModlistEntry{initrd->address, initrd->size, 0, 0}));
  }
  TRY(memory.WriteObj(base::kPvhStartInfo, info));
  for (size_t i = 0; i < map.size(); ++i) {
    TRY(memory.WriteObj(kPvhMemmapAddress + i * sizeof(HvmMemmapEntry),
                        HvmMemmapEntry{map[i].addr, map[i].size, map[i].type, 0}));
  }
  return {};
}

}  // namespace firmware
