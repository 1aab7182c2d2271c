#include "firmware/bzimage.h"

#include <algorithm>
#include <cstring>

#include "base/layout.h"
#include "firmware/zero_page.h"

namespace firmware {
namespace {

using base::ErrorKind;
using base::MakeError;
namespace bp = boot_params;

template <typename T>
T Get(std::span<const uint8_t> file, uint64_t offset) {
  T value;
  std::memcpy(&value, file.data() + offset, sizeof(T));
  return value;
}

// The header must reach init_size (0x260..0x263), which 2.10+ has.
constexpr uint64_t kMinHeaderEnd = bp::kInitSize + 4;

}  // namespace

uint64_t BzImageHeader::load_end() const {
  return load_address() + std::max<uint64_t>(init_size, kernel_size);
}

bool LooksLikeBzImage(std::span<const uint8_t> file) {
  return file.size() >= bp::kHeader + 4 &&
         Get<uint16_t>(file, bp::kBootFlag) == bp::kBootFlagValue &&
         Get<uint32_t>(file, bp::kHeader) == bp::kHeaderMagic;
}

base::Result<BzImageHeader> ParseBzImage(std::span<const uint8_t> file, std::string_view name) {
  if (file.size() < kMinHeaderEnd) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: not a bzImage: {:#x} bytes is too short for a Linux setup header",
                           name, file.size());
  }
  if (Get<uint16_t>(file, bp::kBootFlag) != bp::kBootFlagValue ||
      Get<uint32_t>(file, bp::kHeader) != bp::kHeaderMagic) {
    return base::MakeError(
        base::ErrorKind::kBadImage,
        "{}: not a bzImage: no Linux setup header (boot_flag {:#06x}, header {:#010x}; "
        "want 0xaa55 and \"HdrS\")",
        name, Get<uint16_t>(file, bp::kBootFlag), Get<uint32_t>(file, bp::kHeader));
  }
  BzImageHeader header;
  header.version = Get<uint16_t>(file, bp::kVersion);
  if (header.version < kMinBzImageProtocol) {
    return base::MakeError(
        base::ErrorKind::kBadImage,
        "{}: boot protocol {}.{:02} is too old; the 64-bit entry needs 2.12 or later", name,
        header.version >> 8, header.version & 0xff);
  }
  header.header_end = bp::kHeader + file[bp::kJump + 1];
  if (header.header_end < kMinHeaderEnd) {
    return base::MakeError(
        base::ErrorKind::kBadImage,
        "{}: setup header ends at {:#x}, before init_size (protocol {}.{:02} needs "
        "{:#x})",
        name, header.header_end, header.version >> 8, header.version & 0xff, kMinHeaderEnd);
  }
  header.setup_sects = file[bp::kSetupSects];
  header.setup_size =
      (uint64_t{header.setup_sects == 0 ? uint8_t{4} : header.setup_sects} + 1) * 512;
  if (header.setup_size >= file.size()) {
    return base::MakeError(
        base::ErrorKind::kBadImage,
        "{}: the setup code ({} sectors, {:#x} bytes) leaves no protected-mode kernel "
        "in the file ({:#x} bytes)",
        name, header.setup_size / 512 - 1, header.setup_size, file.size());
  }
  header.kernel_size = file.size() - header.setup_size;
  const uint64_t syssize = uint64_t{Get<uint32_t>(file, 0x1f4)} * 16;
  if (syssize > header.kernel_size + 15) {  // syssize is rounded up to 16 bytes
    return base::MakeError(
        base::ErrorKind::kBadImage,
        "{}: truncated: syssize says the protected-mode kernel is {:#x} bytes, the "
        "file holds {:#x}",
        name, syssize, header.kernel_size);
  }
  header.loadflags = file[bp::kLoadFlags];
  if ((header.loadflags & bp::kLoadedHigh) == 0) {
    return base::MakeError(
        base::ErrorKind::kBadImage,
        "{}: a zImage (loadflags LOADED_HIGH clear) loads at 0x10000; only bzImages "
        "are supported",
        name);
  }
  header.xloadflags = Get<uint16_t>(file, bp::kXLoadFlags);
  if ((header.xloadflags & bp::kXlfKernel64) == 0) {
    return base::MakeError(
        base::ErrorKind::kBadImage,
        "{}: no 64-bit entry point (xloadflags {:#x} lacks XLF_KERNEL_64); a 32-bit "
        "kernel cannot be booted",
        name, header.xloadflags);
  }
  header.relocatable = file[bp::kRelocatableKernel] != 0;
  header.kernel_alignment = Get<uint32_t>(file, bp::kKernelAlignment);
  if (header.relocatable &&
      (header.kernel_alignment == 0 || (header.kernel_alignment & (header.kernel_alignment - 1)))) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: kernel_alignment {:#x} is not a power of two", name,
                           header.kernel_alignment);
  }
  header.initrd_addr_max = Get<uint32_t>(file, bp::kInitrdAddrMax);
  header.cmdline_size = Get<uint32_t>(file, bp::kCmdlineSize);
  header.payload_offset = Get<uint32_t>(file, bp::kPayloadOffset);
  header.payload_length = Get<uint32_t>(file, bp::kPayloadLength);
  header.pref_address = Get<uint64_t>(file, bp::kPrefAddress);
  header.init_size = Get<uint32_t>(file, bp::kInitSize);
  if (header.pref_address < base::kHighMemory) {
    return base::MakeError(base::ErrorKind::kBadImage, "{}: pref_address {:#x} is below 1 MiB",
                           name, header.pref_address);
  }
  if (header.relocatable && header.pref_address % header.kernel_alignment != 0) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: pref_address {:#x} is not aligned to kernel_alignment {:#x}", name,
                           header.pref_address, header.kernel_alignment);
  }
  if (header.pref_address > UINT64_MAX - std::max<uint64_t>(header.init_size, header.kernel_size)) {
    return base::MakeError(base::ErrorKind::kBadImage,
                           "{}: pref_address {:#x} + init_size {:#x} overflows", name,
                           header.pref_address, header.init_size);
  }
  if (header.payload_length != 0 &&
      (header.payload_offset > header.kernel_size ||
       header.payload_length > header.kernel_size - header.payload_offset)) {
    return base::MakeError(
        base::ErrorKind::kBadImage,
        "{}: the compressed payload (offset {:#x}, length {:#x}) lies outside the "
        "protected-mode kernel ({:#x} bytes)",
        name, header.payload_offset, header.payload_length, header.kernel_size);
  }
  // kernel_version: offset - 0x200 of a NUL-terminated string in the setup
  // code (boot.rst "kernel_version"). Informational: a bad pointer leaves it
  // empty.
  const uint16_t version_ptr = Get<uint16_t>(file, bp::kKernelVersion);
  if (version_ptr != 0 && version_ptr + 0x200u < header.setup_size) {
    const uint64_t start = version_ptr + 0x200u;
    const auto setup = file.subspan(start, header.setup_size - start);
    const auto nul = std::find(setup.begin(), setup.end(), uint8_t{0});
    if (nul != setup.end()) header.kernel_version.assign(setup.begin(), nul);
  }
  return header;
}

}  // namespace firmware
