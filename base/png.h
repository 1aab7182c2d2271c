// PNG files of a screen: encode 32-bit XRGB pixels (the linear framebuffer
// format) and decode a reference image, with libpng's simplified API. For
// screenshots (vmm/framebuffer.h) and the suite's screen checks
// (vmm/suite/screen_check.h). A separate library (vmm_png) so that only
// its users link libpng.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"

namespace base {

// Larger images are refused before any allocation: a side of at most 16384
// and at most 16 Mi pixels (48 MiB of RGB), beyond every framebuffer vmm
// gives and any reference a case would hold, and a bound on what a small
// hostile PNG can make vmm allocate.
constexpr uint32_t kMaxPngSide = 16384;
constexpr uint64_t kMaxPngPixels = uint64_t{16} << 20;

// An image in memory: 8-bit R, G, B per pixel, rows top to bottom, no padding.
struct RgbImage {
  uint32_t width = 0;
  uint32_t height = 0;
  std::vector<uint8_t> rgb;  // width * height * 3 bytes

  // The pixel at (x, y) as 0xRRGGBB; x < width, y < height.
  uint32_t At(uint32_t x, uint32_t y) const {
    const uint8_t* p = &rgb[(static_cast<size_t>(y) * width + x) * 3];
    return (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
  }
};

// XRGB8888 pixels (little-endian 32-bit words: blue in the lowest byte, the
// top byte ignored) to an RGB PNG in memory. `stride` is the bytes from one
// row to the next (>= width * 4). kUsage for a zero, oversized or
// inconsistent geometry (beyond kMaxPngSide or kMaxPngPixels).
Result<std::vector<uint8_t>> EncodeXrgbPng(const uint8_t* pixels, uint32_t width, uint32_t height,
                                           uint32_t stride);

// The same, written to `path` (kNoInput naming the path when it cannot be
// written: the caller maps that to its own status).
Result<void> WriteXrgbPng(const std::string& path, const uint8_t* pixels, uint32_t width,
                          uint32_t height, uint32_t stride);

// An RGB PNG in memory (the same layout as RgbImage), for diff images.
Result<std::vector<uint8_t>> EncodeRgbPng(const RgbImage& image);

// Reads any PNG libpng reads (palette, grey, alpha: composited on black)
// as RGB. kNoInput when the file cannot be opened, kBadImage naming the file
// when it is not a PNG, is corrupt, or is larger than the limits above.
Result<RgbImage> ReadPng(const std::string& path);
Result<RgbImage> DecodePng(const std::vector<uint8_t>& data, const std::string& name);

}  // namespace base
