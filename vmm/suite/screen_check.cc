#include "vmm/suite/screen_check.h"

#include <fmt/format.h>

#include <charconv>
#include <fstream>

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
  std::optional<ScreenMismatch> mismatch;
  std::vector<const PixelProbe*> wrong;  // inside the screen, another colour
  for (size_t i = 0; i < probes.size(); ++i) {
    const PixelProbe& probe = probes[i];
    if (probe.x >= actual.width || probe.y >= actual.height) {
      if (!mismatch) {
        mismatch = ScreenMismatch{
            fmt::format("probe {} of {}: ({}, {}) is outside the {}x{} screen", i + 1,
                        probes.size(), probe.x, probe.y, actual.width, actual.height),
            std::nullopt};
      }
      continue;
    }
    uint32_t have = actual.At(probe.x, probe.y);
    if (have == probe.rgb) continue;
    wrong.push_back(&probe);
    if (!mismatch) {
      mismatch =
          ScreenMismatch{fmt::format("probe {} of {}: pixel ({}, {}) is #{:06x}, expected #{:06x}",
                                     i + 1, probes.size(), probe.x, probe.y, have, probe.rgb),
                         std::nullopt};
    }
  }
  if (!mismatch) return std::nullopt;
  base::RgbImage diff = actual;
  for (uint8_t& channel : diff.rgb) channel = static_cast<uint8_t>(channel / 4);
  for (const PixelProbe* probe : wrong) {
    uint8_t* p = &diff.rgb[(static_cast<size_t>(probe->y) * diff.width + probe->x) * 3];
    p[0] = 0xff;
    p[1] = 0;
    p[2] = 0;
  }
  mismatch->diff = std::move(diff);
  return mismatch;
}

std::vector<std::string> CheckScreen(const ScreenSpec& screen,
                                     const std::filesystem::path& screenshot,
                                     const std::filesystem::path& diff) {
  std::error_code ec;
  if (!std::filesystem::exists(screenshot, ec)) {
    return {fmt::format(
        "screen: vmm wrote no screenshot ({} is missing): did the guest have a framebuffer? "
        "(a case gets one with \"framebuffer\": \"WxH\")",
        screenshot.string())};
  }
  if (std::filesystem::file_size(screenshot, ec) == 0 && !ec) {
    return {fmt::format("screen: the screenshot {} is empty: vmm ended before writing it",
                        screenshot.string())};
  }
  base::Result<base::RgbImage> actual = base::ReadPng(screenshot.string());
  if (!actual) return {fmt::format("screen: the screenshot: {}", actual.error().ToString())};

  std::vector<std::string> reasons;
  std::optional<base::RgbImage> diff_image;
  if (screen.reference_image) {
    if (std::optional<ScreenMismatch> mismatch =
            CompareWithReference(*actual, *screen.reference_image)) {
      reasons.push_back(fmt::format("screen: {}: {}",
                                    std::filesystem::path(screen.reference).filename().string(),
                                    mismatch->why));
      diff_image = std::move(mismatch->diff);
    }
  }
  if (!screen.probes.empty()) {
    if (std::optional<ScreenMismatch> mismatch = CheckProbes(*actual, screen.probes)) {
      reasons.push_back("screen: " + mismatch->why);
      if (!diff_image) diff_image = std::move(mismatch->diff);
    }
  }
  if (diff_image) {
    base::Result<std::vector<uint8_t>> png = base::EncodeRgbPng(*diff_image);
    std::string written;
    if (png) {
      std::ofstream out(diff, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(png->data()),
                static_cast<std::streamsize>(png->size()));
      out.close();
      if (!out) written = fmt::format("; cannot write {}", diff.string());
    } else {
      written = fmt::format("; no difference image: {}", png.error().ToString());
    }
    reasons.front() += written;
  }
  return reasons;
}

}  // namespace vmm::suite
