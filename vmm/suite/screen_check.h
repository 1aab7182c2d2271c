// Checks on a guest's screen at the end of a run (a case's "screen" field,
// docs/suite.md "Screen checks"): an exact match against a reference PNG, or
// pixel probes. CompareWithReference and CheckProbes are pure functions on
// base::RgbImage, tested without a guest; CheckScreen reads the screenshot
// vmm wrote (--screenshot) and writes the difference image. Called on the
// runner's thread when a run's vmm has ended.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
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

// A case's "screen" field: what the screen must show when vmm ends. At least
// one of the two is set.
struct ScreenSpec {
  std::string reference;  // resolved path of a PNG next to the case; empty: none
  // `reference` decoded when the case was loaded (a corrupt reference is an
  // error of the case file, not of a run); shared by the runs of the case.
  std::shared_ptr<const base::RgbImage> reference_image;
  std::vector<PixelProbe> probes;
};

// The files a run with a screen check leaves in its artifact folder: what
// vmm's --screenshot wrote, and on a mismatch the difference image.
inline constexpr std::string_view kScreenshotFile = "screen.png";
inline constexpr std::string_view kScreenDiffFile = "screen-diff.png";

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
// nothing when every probe holds. On a mismatch `diff` is the screen dimmed
// to a quarter with every failing probe's pixel pure red.
std::optional<ScreenMismatch> CheckProbes(const base::RgbImage& actual,
                                          const std::vector<PixelProbe>& probes);

// Judges the screenshot vmm wrote to `screenshot` against `screen`: the
// reference first, then the probes. Returns one reason per failed check,
// each starting with "screen: " and naming the first differing pixel;
// empty when the screen is as expected. A missing, empty or undecodable
// screenshot is a reason too. On a mismatch it writes the difference image
// to `diff` (a failure to write it is added to that reason).
std::vector<std::string> CheckScreen(const ScreenSpec& screen,
                                     const std::filesystem::path& screenshot,
                                     const std::filesystem::path& diff);

}  // namespace vmm::suite
