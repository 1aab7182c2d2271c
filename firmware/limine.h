// The Limine boot protocol (limine-protocol's PROTOCOL.md, base revisions 0
// to 6), x86-64 only, as a loader without a disk: the executable is
// --kernel, the modules are --initrd, the command line is --cmdline
// (docs/boot-protocols.md, "Limine").
//
// vmm loads the ELF64 at its link address in the top 2 GiB (physically
// contiguous, with a slide for a position-independent executable linked
// lower), finds the base revision tag and the requests in the loaded image
// (between the request delimiters when present), answers every request it
// can serve and leaves the others' `response` untouched, builds page tables
// with the higher-half direct map the base revision asks for, and enters the
// kernel in long mode with Limine's GDT, stack and registers. With an MP
// request every vCPU is started in long mode, parked on its
// `limine_mp_info.goto_address`.
//
// Everything the kernel is handed lives in memory the map reports as
// bootloader-reclaimable; the executable, its file copy and the modules as
// executable-and-modules. The structure layouts below are written from the
// specification's C declarations (little-endian, natural alignment).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "base/error.h"
#include "base/guest_memory.h"
#include "firmware/boot.h"

namespace firmware {

inline constexpr uint64_t kLimineMaxBaseRevision = 6;
// Base revision 3 and later: what the tag's 2nd word says when the loader did
// not write it (the kernel compares against it).
inline constexpr uint64_t kLimineBaseRevisionMagic0 = 0xf9562b2d5c95a6c8;
inline constexpr uint64_t kLimineBaseRevisionMagic1 = 0x6a7b384944536bdc;
inline constexpr uint64_t kLimineCommonMagic0 = 0xc7b1dd30df4c8b88;
inline constexpr uint64_t kLimineCommonMagic1 = 0x0a82e883a194f07b;
// Where executables live (PROTOCOL.md "Memory Layout at Entry").
inline constexpr uint64_t kLimineKernelFloor = 0xffffffff80000000;
// The higher-half direct map's offset (4-level paging: the start of the
// higher half).
inline constexpr uint64_t kLimineHhdmOffset = 0xffff800000000000;
// The default stack, and the size entropy requests are capped at.
inline constexpr uint64_t kLimineDefaultStack = 64 * 1024;
inline constexpr uint64_t kLimineMaxEntropyValues = 4096;
// Selectors of Limine's GDT: null, 16-bit code/data, 32-bit code/data,
// 64-bit code/data.
inline constexpr uint16_t kLimineCodeSelector = 0x28;
inline constexpr uint16_t kLimineDataSelector = 0x30;
// IA32_PAT as the protocol specifies it: PAT0 WB, PAT1 WT, PAT2 UC-, PAT3 UC,
// PAT4 WP, PAT5 WC (6 and 7 unspecified: UC-, UC).
inline constexpr uint32_t kMsrPat = 0x277;
inline constexpr uint64_t kLiminePat = 0x0007010500070406;

// Memory map entry types (PROTOCOL.md "Memory Map Feature").
enum class LimineMemoryType : uint64_t {
  kUsable = 0,
  kReserved = 1,
  kAcpiReclaimable = 2,
  kAcpiNvs = 3,
  kBadMemory = 4,
  kBootloaderReclaimable = 5,
  kExecutableAndModules = 6,
  kFramebuffer = 7,
  kReservedMapped = 8,
};

// True when `file` is an ELF64 whose loadable segments hold a Limine base
// revision tag or a request (the common magic), 8-byte aligned by virtual
// address. Malformed files are not Limine executables here (the other
// loaders say what is wrong with them).
bool LooksLikeLimine(std::span<const uint8_t> file);

// Loads a Limine executable (see above). `rsdp` is the ACPI RSDP's physical
// address, 0 without ACPI. Errors: kBadImage (65) for what the executable
// gets wrong (segments below kLimineKernelFloor in a non-relocatable image,
// overlapping segments, duplicate requests, relocations other than
// R_X86_64_RELATIVE, an entry point outside the executable segments, a
// paging mode request vmm cannot satisfy), each naming the file and the
// value; kConfig (78) when the executable, modules and boot structures do
// not fit in guest RAM below 3 GiB; kNoInput (66) for an unreadable module.
[[nodiscard]] base::Result<BootInfo> BootLimine(const base::GuestMemory& memory,
                                                const BootConfig& config, uint64_t rsdp,
                                                std::span<const uint8_t> file,
                                                std::string_view name);

}  // namespace firmware
