// What the loader told the kernel: memory map and command line, from either
// a Linux zero page (boot_params, Documentation/arch/x86/zero-page.rst) or a
// PVH hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h).
// Pure logic over a physical-memory view: compiles hosted for unit tests.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kernel {

// e820 types (ACPI 6.5 §15, "System Address Map Interfaces", table 15.1).
inline constexpr uint32_t kMemUsable = 1;
inline constexpr uint32_t kMemReserved = 2;
inline constexpr uint32_t kMemAcpi = 3;
inline constexpr uint32_t kMemNvs = 4;
inline constexpr uint32_t kMemUnusable = 5;

struct MemRegion {
  uint64_t base;
  uint64_t size;
  uint32_t type;
};

inline constexpr size_t kMaxMemRegions = 128;
inline constexpr size_t kCmdlineCapacity = 2048;

// Reads guest-physical memory. Map returns nullptr when [phys, phys+len) is
// not readable (outside RAM, overflow).
class PhysView {
 public:
  virtual const uint8_t* Map(uint64_t phys, uint64_t len) const = 0;

 protected:
  ~PhysView() = default;
};

struct BootModule {
  uint64_t base;
  uint64_t size;
};

struct BootInfo {
  enum class Source : uint8_t { kZeroPage, kPvh };
  Source source = Source::kZeroPage;
  MemRegion regions[kMaxMemRegions] = {};
  size_t region_count = 0;
  bool regions_truncated = false;
  char cmdline[kCmdlineCapacity] = {};
  bool cmdline_truncated = false;
  BootModule initrd = {};  // size 0: none
};

// Linux zero page offsets (boot_params, arch/x86/include/uapi/asm/bootparam.h).
inline constexpr uint64_t kZpE820Entries = 0x1e8;   // u8
inline constexpr uint64_t kZpCmdLinePtr = 0x228;    // hdr.cmd_line_ptr, u32
inline constexpr uint64_t kZpRamdiskImage = 0x218;  // hdr.ramdisk_image, u32
inline constexpr uint64_t kZpRamdiskSize = 0x21c;   // hdr.ramdisk_size, u32
inline constexpr uint64_t kZpE820Table = 0x2d0;     // 128 x {u64 addr, u64 size, u32 type}
inline constexpr size_t kZpE820Max = 128;
inline constexpr uint32_t kPvhMagic = 0x336ec578;  // "xEn3" with the 0x80 bit of the "E" set

// Error strings are static; nullptr means success.
const char* ParseZeroPage(const PhysView& mem, uint64_t zero_page, BootInfo* out);
const char* ParsePvh(const PhysView& mem, uint64_t start_info, BootInfo* out);

// Sum of usable (type 1) bytes.
uint64_t UsableBytes(const BootInfo& info);
const char* MemTypeName(uint32_t type);

}  // namespace kernel
