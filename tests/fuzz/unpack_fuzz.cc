// libFuzzer target for firmware/unpack.h: the compressed payload of a
// bzImage (xz or gzip, --boot-protocol bzimage-unpacked) is untrusted input.
// Whatever the bytes, UnpackPayload returns the data or an error naming the
// image; it never writes past its limit (a decompression bomb is refused).
// The limit here is small so that a bomb is found in one run, not after
// 1 GiB of output.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "firmware/unpack.h"

namespace {
constexpr uint64_t kLimit = 1 << 20;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> payload(data, size);
  const firmware::PayloadFormat format = firmware::DetectPayloadFormat(payload);
  if (firmware::PayloadFormatName(format) == nullptr) std::abort();
  auto unpacked = firmware::UnpackPayload(payload, "fuzz", kLimit);
  if (unpacked) {
    if (unpacked->size() > kLimit) std::abort();
    if (format != firmware::PayloadFormat::kXz && format != firmware::PayloadFormat::kGzip) {
      std::abort();  // only these two can be unpacked (firmware/unpack.h)
    }
  } else if (unpacked.error().message().empty()) {
    std::abort();
  }
  return 0;
}
