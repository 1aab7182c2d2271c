// Host-side decompression of a bzImage's payload: the compressed vmlinux
// that the bzImage's own decompressor would unpack inside the guest
// (Documentation/arch/x86/boot.rst, "payload_offset"/"payload_length").
//
// Why: on hosts whose KVM emulates every instruction, Linux's in-guest
// decompressor runs for minutes before the kernel prints anything; unpacking
// on the host takes about a second. `--boot-protocol bzimage-unpacked` uses
// this and then enters the vmlinux like an ELF64 kernel (docs/boot-protocols.md).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace firmware {

// The most a payload may decompress to: guards against decompression bombs.
inline constexpr uint64_t kMaxUnpackedKernel = 1ull << 30;
// The most memory the xz decoder may take (its dictionary, mostly): Linux's
// kernels use at most a 32 MiB dictionary (scripts/xz_wrap.sh); a header
// asking for more than this is refused before anything is allocated.
inline constexpr uint64_t kXzMemoryLimit = 128ull << 20;

// The payload's compression, by its magic bytes (the kernel's
// CONFIG_KERNEL_* choices). Only kXz and kGzip can be unpacked.
enum class PayloadFormat { kXz, kGzip, kZstd, kLzma, kBzip2, kLz4, kLzo, kUnknown };
PayloadFormat DetectPayloadFormat(std::span<const uint8_t> payload);
const char* PayloadFormatName(PayloadFormat format);

// Decompresses `payload`. kBadImage naming `name` when the format is not
// supported (saying which it is), the data is corrupt or truncated, the
// result would exceed `limit` bytes, or an xz stream needs more than
// kXzMemoryLimit of decoder memory.
[[nodiscard]] base::Result<std::vector<uint8_t>> UnpackPayload(std::span<const uint8_t> payload,
                                                               std::string_view name,
                                                               uint64_t limit = kMaxUnpackedKernel);

}  // namespace firmware
