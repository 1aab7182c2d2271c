// Checks on a guest's screen at the end of a run: an exact match against a
// reference PNG, or pixel probes. Pure functions on base::RgbImage, tested
// without a guest; case files do not reach them yet (vmm has no framebuffer
// device to take the screen from).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "base/png.h"

namespace vmm::suite {

// One probe: the pixel at (x, y) must be `rgb` (0xRRGGBB), as a case writes
// it: [x, y, "#rrggbb"].
struct PixelProbe {
  uint32_t x = 0;
  uint32_t y = 0;
  uint32_t rgb = 0;
};

// "#rrggbb" (case-insensitive hex) to 0xRRGGBB; kConfig naming `field`.
base::Result<uint32_t> ParseColour(std::string_view text, std::string_view field);

struct ScreenMismatch {
  std::string why;  // one line: what differs, naming the first pixel
  // Set for a reference comparison of equal sizes: matching pixels dimmed to
  // a quarter, differing ones pure red, to be written next to the actual one.
  std::optional<base::RgbImage> diff;
};

// The first pixel in row order where `actual` differs from `expected`, or a
// size mismatch; nothing when they are the same.
std::optional<ScreenMismatch> CompareWithReference(const base::RgbImage& actual,
                                                   const base::RgbImage& expected);

// The first probe that fails (outside the screen, or another colour);
// nothing when every probe holds.
std::optional<ScreenMismatch> CheckProbes(const base::RgbImage& actual,
                                          const std::vector<PixelProbe>& probes);

}  // namespace vmm::suite
