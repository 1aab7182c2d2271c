// Linux bzImage: the setup header and the 64-bit boot protocol (Linux
// Documentation/arch/x86/boot.rst, "The Real-Mode Kernel Header", "Details of
// Header Fields", "64-bit Boot Protocol").
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/error.h"

namespace firmware {

// boot.rst: XLF_KERNEL_64 and the 64-bit entry arrived with protocol 2.12
// (Linux 3.8); without xloadflags there is no way to know that an image has
// a 64-bit entry, so 2.12 is the oldest protocol accepted.
inline constexpr uint16_t kMinBzImageProtocol = 0x020c;
// boot.rst "64-bit Boot Protocol": the 64-bit entry is the load address of
// the protected-mode kernel plus 0x200.
inline constexpr uint64_t kBzImage64BitEntryOffset = 0x200;

struct BzImageHeader {
  uint16_t version = 0;     // 0x0206: protocol major.minor
  uint8_t setup_sects = 0;  // as in the file (0 means 4)
  uint8_t loadflags = 0;
  uint16_t xloadflags = 0;
  bool relocatable = false;
  uint32_t kernel_alignment = 0;
  uint32_t initrd_addr_max = 0;  // highest address the initrd's last byte may have
  uint32_t cmdline_size = 0;     // most command-line bytes, without the NUL
  uint32_t init_size = 0;        // memory the kernel needs from its load address
  uint32_t payload_offset = 0;   // of the compressed kernel, from the protected-mode start
  uint32_t payload_length = 0;
  uint64_t pref_address = 0;
  uint64_t setup_size = 0;     // bytes before the protected-mode kernel: (setup_sects + 1) * 512
  uint64_t header_end = 0;     // file offset where the setup header ends (0x202 + byte 0x201)
  uint64_t kernel_size = 0;    // bytes of protected-mode kernel in the file
  std::string kernel_version;  // the string kernel_version points to (may be empty)

  // Where the protected-mode kernel goes: pref_address (boot.rst: a
  // non-relocatable kernel moves itself there anyway, a relocatable one
  // prefers it).
  uint64_t load_address() const { return pref_address; }
  // [load_address, load_end) must be RAM while the kernel initialises.
  uint64_t load_end() const;
};

// True when the file has the boot-sector signature and "HdrS".
bool LooksLikeBzImage(std::span<const uint8_t> file);

// Validates the setup header for the 64-bit boot protocol. kBadImage naming
// `name` and the problem: not a bzImage, protocol older than 2.12, a zImage
// (LOADED_HIGH clear), no 64-bit entry (XLF_KERNEL_64 clear), setup or kernel
// outside the file, pref_address below 1 MiB, kernel_alignment not a power of
// two.
[[nodiscard]] base::Result<BzImageHeader> ParseBzImage(std::span<const uint8_t> file,
                                                       std::string_view name);

}  // namespace firmware
