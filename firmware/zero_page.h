// Linux's zero page (struct boot_params, 4 KiB at kZeroPage) and the kernel
// command line, as a 64-bit boot loader fills them (Linux
// Documentation/arch/x86/boot.rst, "The Real-Mode Kernel Header", "64-bit
// Boot Protocol"; arch/x86/include/uapi/asm/bootparam.h for offsets).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "base/error.h"
#include "base/guest_memory.h"
#include "firmware/boot.h"

namespace firmware {

// Offsets into struct boot_params (bootparam.h comments give the same).
namespace boot_params {
inline constexpr uint64_t kSize = 0x1000;
// struct screen_info at offset 0 (arch/x86/include/uapi/asm/bootparam.h,
// include/uapi/linux/screen_info.h).
inline constexpr uint64_t kOrigVideoIsVga = 0x0f;   // u8: VIDEO_TYPE_*
inline constexpr uint64_t kLfbWidth = 0x12;         // u16
inline constexpr uint64_t kLfbHeight = 0x14;        // u16
inline constexpr uint64_t kLfbDepth = 0x16;         // u16
inline constexpr uint64_t kLfbBase = 0x18;          // u32
inline constexpr uint64_t kLfbSize = 0x1c;          // u32, in 64 KiB units for VLFB
inline constexpr uint64_t kLfbLineLength = 0x24;    // u16
inline constexpr uint64_t kLfbColourFields = 0x26;  // red, green, blue, rsvd: size and pos, u8 each
inline constexpr uint64_t kScreenCapabilities = 0x36;  // u32
inline constexpr uint64_t kExtLfbBase = 0x3a;          // u32
inline constexpr uint8_t kVideoTypeVlfb = 0x23;
inline constexpr uint64_t kAcpiRsdpAddr = 0x070;       // u64, protocol 2.14+: the RSDP
inline constexpr uint64_t kExtRamdiskImage = 0x0c0;    // u32, bits 32-63 of ramdisk_image
inline constexpr uint64_t kExtRamdiskSize = 0x0c4;     // u32
inline constexpr uint64_t kExtCmdLinePtr = 0x0c8;      // u32
inline constexpr uint64_t kAltMemK = 0x1e0;            // u32, KiB above 1 MiB
inline constexpr uint64_t kE820Entries = 0x1e8;        // u8
inline constexpr uint64_t kSentinel = 0x1ef;           // u8
inline constexpr uint64_t kSetupHeader = 0x1f1;        // struct setup_header starts here
inline constexpr uint64_t kSetupSects = 0x1f1;         // u8
inline constexpr uint64_t kBootFlag = 0x1fe;           // u16, 0xaa55
inline constexpr uint64_t kJump = 0x200;               // u16; byte 0x201 = header length - 0x202
inline constexpr uint64_t kHeader = 0x202;             // u32, "HdrS"
inline constexpr uint64_t kVersion = 0x206;            // u16
inline constexpr uint64_t kKernelVersion = 0x20e;      // u16, offset of the version string - 0x200
inline constexpr uint64_t kTypeOfLoader = 0x210;       // u8
inline constexpr uint64_t kLoadFlags = 0x211;          // u8
inline constexpr uint64_t kCode32Start = 0x214;        // u32
inline constexpr uint64_t kRamdiskImage = 0x218;       // u32
inline constexpr uint64_t kRamdiskSize = 0x21c;        // u32
inline constexpr uint64_t kHeapEndPtr = 0x224;         // u16
inline constexpr uint64_t kCmdLinePtr = 0x228;         // u32
inline constexpr uint64_t kInitrdAddrMax = 0x22c;      // u32
inline constexpr uint64_t kKernelAlignment = 0x230;    // u32
inline constexpr uint64_t kRelocatableKernel = 0x234;  // u8
inline constexpr uint64_t kXLoadFlags = 0x236;         // u16
inline constexpr uint64_t kCmdlineSize = 0x238;        // u32
inline constexpr uint64_t kPayloadOffset = 0x248;      // u32
inline constexpr uint64_t kPayloadLength = 0x24c;      // u32
inline constexpr uint64_t kSetupData = 0x250;          // u64
inline constexpr uint64_t kPrefAddress = 0x258;        // u64
inline constexpr uint64_t kInitSize = 0x260;           // u32
inline constexpr uint64_t kSetupHeaderMaxEnd = 0x290;  // edd_mbr_sig_buffer follows
inline constexpr uint64_t kE820Table = 0x2d0;          // 20-byte packed entries
inline constexpr uint64_t kE820MaxEntries = 128;       // E820_MAX_ENTRIES_ZEROPAGE
inline constexpr uint64_t kE820EntrySize = 20;

inline constexpr uint16_t kBootFlagValue = 0xaa55;
inline constexpr uint32_t kHeaderMagic = 0x53726448;  // "HdrS"
inline constexpr uint8_t kLoaderUndefined = 0xff;     // type_of_loader: no assigned id
inline constexpr uint8_t kLoadedHigh = 0x01;          // loadflags LOADED_HIGH
inline constexpr uint8_t kCanUseHeap = 0x80;          // loadflags CAN_USE_HEAP
inline constexpr uint16_t kXlfKernel64 = 0x01;        // xloadflags XLF_KERNEL_64
inline constexpr uint16_t kXlfCanBeLoadedAbove4G = 0x02;
}  // namespace boot_params

// What goes into the zero page besides the e820 map.
struct ZeroPageConfig {
  // The setup header bytes of a bzImage (file offsets [0x1f1, header end)),
  // copied in first as boot.rst asks; empty for a vmlinux, which gets a
  // synthetic header.
  std::span<const uint8_t> setup_header;
  uint64_t ram_size = 0;
  uint64_t cmdline_address = 0;
  uint64_t cmdline_size = 0;  // bytes without the NUL
  uint64_t initrd_address = 0;
  uint64_t initrd_size = 0;
  uint64_t acpi_rsdp = 0;  // acpi_rsdp_addr; 0 without ACPI tables
  // screen_info as a VESA linear framebuffer (VIDEO_TYPE_VLFB), when given.
  std::optional<Framebuffer> framebuffer;
};

// The boot protocol version written into a vmlinux's synthetic header.
inline constexpr uint16_t kSyntheticProtocolVersion = 0x020f;

// Builds the zero page at kZeroPage: zeroes it, copies the setup header (or
// writes boot_flag, "HdrS", version, kernel_alignment), sets type_of_loader,
// loadflags LOADED_HIGH, cmd_line_ptr/ext_cmd_line_ptr, cmdline_size,
// ramdisk_image/size (and ext_), alt_mem_k and the e820 map from
// BuildE820Map(ram_size).
[[nodiscard]] base::Result<void> WriteZeroPage(const base::GuestMemory& memory,
                                               const ZeroPageConfig& config);

// Copies `cmdline` NUL-terminated to `address`. `limit` is the most bytes the
// kernel accepts including the NUL. kConfig when it is longer or contains a
// NUL byte. Returns the length without the NUL.
[[nodiscard]] base::Result<uint64_t> WriteCmdline(const base::GuestMemory& memory,
                                                  std::string_view cmdline, uint64_t address,
                                                  uint64_t limit);

}  // namespace firmware
