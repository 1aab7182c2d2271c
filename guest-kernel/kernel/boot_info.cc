#include "kernel/boot_info.h"

namespace kernel {
namespace {

uint64_t Load(const uint8_t* p, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

void CopyCmdline(const PhysView& mem, uint64_t phys, BootInfo* out) {
  out->cmdline[0] = 0;
  if (phys == 0) return;
  size_t n = 0;
  for (; n + 1 < kCmdlineCapacity; ++n) {
    const uint8_t* c = mem.Map(phys + n, 1);
    if (c == nullptr || *c == 0) break;
    out->cmdline[n] = static_cast<char>(*c);
  }
  out->cmdline[n] = 0;
  if (n + 1 == kCmdlineCapacity) {
    const uint8_t* c = mem.Map(phys + n, 1);
    out->cmdline_truncated = c != nullptr && *c != 0;
  }
}

void AddRegion(BootInfo* out, uint64_t base, uint64_t size, uint32_t type) {
  if (size == 0) return;
  if (base + size < base) size = UINT64_MAX - base;  // clamp a wrapping entry
  if (out->region_count == kMaxMemRegions) {
    out->regions_truncated = true;
    return;
  }
  out->regions[out->region_count++] = MemRegion{base, size, type};
}

}  // namespace

const char* ParseZeroPage(const PhysView& mem, uint64_t zero_page, BootInfo* out) {
  const uint8_t* zp = mem.Map(zero_page, 4096);
  if (zp == nullptr) return "zero page not readable";
  out->source = BootInfo::Source::kZeroPage;
  out->region_count = 0;
  size_t entries = zp[kZpE820Entries];
  if (entries > kZpE820Max) entries = kZpE820Max;
  for (size_t i = 0; i < entries; ++i) {
    const uint8_t* e = zp + kZpE820Table + 20 * i;
    AddRegion(out, Load(e, 8), Load(e + 8, 8), static_cast<uint32_t>(Load(e + 16, 4)));
  }
  CopyCmdline(mem, Load(zp + kZpCmdLinePtr, 4), out);
  out->initrd = BootModule{Load(zp + kZpRamdiskImage, 4), Load(zp + kZpRamdiskSize, 4)};
  if (out->initrd.size == 0) out->initrd.base = 0;
  return entries == 0 ? "zero page has no e820 entries" : nullptr;
}

const char* ParsePvh(const PhysView& mem, uint64_t start_info, BootInfo* out) {
  // struct hvm_start_info: magic 0, version 4, flags 8, nr_modules 12,
  // modlist_paddr 16, cmdline_paddr 24, rsdp_paddr 32, memmap_paddr 40,
  // memmap_entries 48 (version >= 1).
  const uint8_t* si = mem.Map(start_info, 56);
  if (si == nullptr) return "hvm_start_info not readable";
  if (Load(si, 4) != kPvhMagic) return "hvm_start_info has a bad magic";
  out->source = BootInfo::Source::kPvh;
  out->region_count = 0;
  CopyCmdline(mem, Load(si + 24, 8), out);
  // Modules: hvm_modlist_entry {u64 paddr, u64 size, u64 cmdline_paddr, u64 reserved}.
  const uint64_t nr_modules = Load(si + 12, 4);
  out->initrd = BootModule{};
  if (nr_modules > 0) {
    const uint8_t* m = mem.Map(Load(si + 16, 8), 32);
    if (m != nullptr) out->initrd = BootModule{Load(m, 8), Load(m + 8, 8)};
  }
  if (Load(si + 4, 4) < 1) return "hvm_start_info version 0 has no memory map";
  const uint64_t count = Load(si + 48, 4);
  const uint64_t table = Load(si + 40, 8);
  for (uint64_t i = 0; i < count; ++i) {
    // hvm_memmap_table_entry {u64 addr, u64 size, u32 type, u32 reserved}.
    const uint8_t* e = mem.Map(table + 24 * i, 24);
    if (e == nullptr) return "PVH memory map not readable";
    AddRegion(out, Load(e, 8), Load(e + 8, 8), static_cast<uint32_t>(Load(e + 16, 4)));
  }
  return count == 0 ? "PVH memory map is empty" : nullptr;
}

uint64_t UsableBytes(const BootInfo& info) {
  uint64_t total = 0;
  for (size_t i = 0; i < info.region_count; ++i) {
    if (info.regions[i].type == kMemUsable) total += info.regions[i].size;
  }
  return total;
}

const char* MemTypeName(uint32_t type) {
  switch (type) {
    case kMemUsable:
      return "usable";
    case kMemReserved:
      return "reserved";
    case kMemAcpi:
      return "acpi";
    case kMemNvs:
      return "nvs";
    case kMemUnusable:
      return "unusable";
    case 7:
      return "pmem";
    default:
      return "unknown";
  }
}

}  // namespace kernel
