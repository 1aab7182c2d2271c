#include "vmm/suite/screen_check.h"

#include <fmt/format.h>

#include <charconv>

namespace vmm::suite {

base::Result<uint32_t> ParseColour(std::string_view text, std::string_view field) {
  uint32_t value = 0;
  if (text.size() == 7 && text[0] == '#') {
    auto [ptr, ec] = std::from_chars(text.data() + 1, text.data() + 7, value, 16);
    if (ec == std::errc() && ptr == text.data() + 7) return value;
  }
  return base::MakeError(base::ErrorKind::kConfig,
                         "field '{}': colour '{}' is not of the form \"#rrggbb\"", field, text);
}

std::optional<ScreenMismatch> CompareWithReference(const base::RgbImage& actual,
                                                   const base::RgbImage& expected) {
  if (actual.width != expected.width || actual.height != expected.height) {
    return ScreenMismatch{fmt::format("the screen is {}x{}, the reference {}x{}", actual.width,
                                      actual.height, expected.width, expected.height),
                          std::nullopt};
  }
  std::optional<ScreenMismatch> mismatch;
  size_t differing = 0;
  base::RgbImage diff = actual;
  for (uint32_t y = 0; y < actual.height; ++y) {
    for (uint32_t x = 0; x < actual.width; ++x) {
      uint8_t* p = &diff.rgb[(static_cast<size_t>(y) * actual.width + x) * 3];
      uint32_t have = actual.At(x, y);
      uint32_t want = expected.At(x, y);
      if (have == want) {
        p[0] = static_cast<uint8_t>(p[0] / 4);
        p[1] = static_cast<uint8_t>(p[1] / 4);
        p[2] = static_cast<uint8_t>(p[2] / 4);
        continue;
      }
      p[0] = 0xff;
      p[1] = 0;
      p[2] = 0;
      if (differing++ == 0) {
        mismatch = ScreenMismatch{
            fmt::format("pixel ({}, {}) is #{:06x}, the reference has #{:06x}", x, y, have, want),
            std::nullopt};
      }
    }
  }
  if (!mismatch) return std::nullopt;
  mismatch->why += fmt::format(" ({} of {} pixels differ)", differing,
                               static_cast<size_t>(actual.width) * actual.height);
  mismatch->diff = std::move(diff);
  return mismatch;
}

std::optional<ScreenMismatch> CheckProbes(const base::RgbImage& actual,
                                          const std::vector<PixelProbe>& probes) {
  for (size_t i = 0; i < probes.size(); ++i) {
    const PixelProbe& probe = probes[i];
    if (probe.x >= actual.width || probe.y >= actual.height) {
      return ScreenMismatch{
          fmt::format("probe {} of {}: ({}, {}) is outside the {}x{} screen", i + 1, probes.size(),
                      probe.x, probe.y, actual.width, actual.height),
          std::nullopt};
    }
    uint32_t have = actual.At(probe.x, probe.y);
    if (have != probe.rgb) {
      return ScreenMismatch{
          fmt::format("probe {} of {}: pixel ({}, {}) is #{:06x}, expected #{:06x}", i + 1,
                      probes.size(), probe.x, probe.y, have, probe.rgb),
          std::nullopt};
    }
  }
  return std::nullopt;
}

}  // namespace vmm::suite
