// The BOOTBOOT protocol (bztsrc's BOOTBOOT specification and bootboot.h),
// x86-64, as a loader without a disk (docs/boot-protocols.md, "BOOTBOOT"):
// the kernel ELF64 is --kernel (not looked up inside the initrd), the initrd
// is --initrd, the environment is --cmdline with one key=value word per
// line.
//
// Level 2 ("dynamic") when the kernel's symbol table names `bootboot`: the
// structure, `environment` and `fb` are mapped where its symbols say; level 1
// ("static") otherwise, at -2 MiB, -2 MiB + 4 KiB and -64 MiB. RAM (up to
// 16 GiB, and the first 4 GiB whatever the RAM size) is identity-mapped,
// every core enters the kernel at once with a 1 KiB stack of its own at the
// top of the address space (core n's at -1024 n), and the framebuffer is
// vmm's (BootConfig::framebuffer or framebuffer_on_request), or with it off a
// headless 800x600 32-bit buffer in guest RAM.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "base/error.h"
#include "base/guest_memory.h"
#include "firmware/boot.h"

namespace firmware {

// The static (level 1) addresses, and where the kernel's segments may lie.
inline constexpr uint64_t kBootbootStruct = 0xffffffffffe00000;       // -2 MiB
inline constexpr uint64_t kBootbootEnvironment = 0xffffffffffe01000;  // -2 MiB + 4 KiB
inline constexpr uint64_t kBootbootFramebuffer = 0xfffffffffc000000;  // -64 MiB
inline constexpr uint64_t kBootbootHigherHalf = 0xffff800000000000;
inline constexpr uint64_t kBootbootIdentityMax = 16ull << 30;  // "RAM up to 16G"
inline constexpr uint64_t kBootbootStackPerCore = 1024;
inline constexpr uint32_t kBootbootFbWidth = 800, kBootbootFbHeight = 600;
inline constexpr uint64_t kBootbootEnvironmentMax = 4096;  // one page, with its NUL

// bootboot.h's values.
inline constexpr uint8_t kBootbootProtocolStatic = 1;
inline constexpr uint8_t kBootbootProtocolDynamic = 2;
inline constexpr uint8_t kBootbootFbArgb = 0;
enum class BootbootMemoryType : uint8_t { kUsed = 0, kFree = 1, kAcpi = 2, kMmio = 3 };

// True when `file` is an ELF64 executable whose symbol table has `bootboot`,
// or whose lowest loadable segment lies at or above -2 MiB (a level 1
// kernel). Malformed files are not BOOTBOOT kernels here.
bool LooksLikeBootboot(std::span<const uint8_t> file);

// Loads a BOOTBOOT kernel (see above). `rsdp` is the ACPI RSDP's physical
// address (0 without ACPI): acpi_ptr is the XSDT it points to. Errors:
// kBadImage (65) naming the file for segments or symbols outside the higher
// half, unaligned or overlapping mappings, an entry outside the executable
// segments; kConfig (78) for an environment over 4095 bytes, more than one
// initrd, or guest memory too small.
[[nodiscard]] base::Result<BootInfo> BootBootboot(const base::GuestMemory& memory,
                                                  const BootConfig& config, uint64_t rsdp,
                                                  std::span<const uint8_t> file,
                                                  std::string_view name);

}  // namespace firmware
