// The suite's screen checks (vmm/suite/screen_check.h) on images in memory.
#include "vmm/suite/screen_check.h"

#include <gtest/gtest.h>

namespace vmm::suite {
namespace {

base::RgbImage Filled(uint32_t w, uint32_t h, uint32_t rgb) {
  base::RgbImage image;
  image.width = w;
  image.height = h;
  for (size_t i = 0; i < size_t{w} * h; ++i) {
    image.rgb.push_back(static_cast<uint8_t>(rgb >> 16));
    image.rgb.push_back(static_cast<uint8_t>(rgb >> 8));
    image.rgb.push_back(static_cast<uint8_t>(rgb));
  }
  return image;
}

void Set(base::RgbImage* image, uint32_t x, uint32_t y, uint32_t rgb) {
  uint8_t* p = &image->rgb[(size_t{y} * image->width + x) * 3];
  p[0] = static_cast<uint8_t>(rgb >> 16);
  p[1] = static_cast<uint8_t>(rgb >> 8);
  p[2] = static_cast<uint8_t>(rgb);
}

TEST(ScreenCheck, ColoursParseAndBadOnesNameTheField) {
  EXPECT_EQ(*ParseColour("#1a2B3c", "screen.probes[0]"), 0x1a2b3cu);
  for (const char* bad : {"", "#", "1a2b3c", "#1a2b3", "#1a2b3c4", "#1a2b3g", "#-1a2b3"}) {
    base::Result<uint32_t> colour = ParseColour(bad, "screen.probes[2]");
    ASSERT_FALSE(colour) << bad;
    EXPECT_EQ(colour.error().kind(), base::ErrorKind::kConfig);
    EXPECT_NE(colour.error().message().find("screen.probes[2]"), std::string::npos);
  }
}

TEST(ScreenCheck, IdenticalScreensMatch) {
  EXPECT_FALSE(CompareWithReference(Filled(4, 3, 0x102030), Filled(4, 3, 0x102030)));
}

TEST(ScreenCheck, TheFirstDifferingPixelInRowOrderIsNamedAndMarkedInTheDiff) {
  base::RgbImage expected = Filled(4, 3, 0x808080);
  base::RgbImage actual = expected;
  Set(&actual, 3, 2, 0x00ff00);
  Set(&actual, 1, 1, 0x0000ff);
  std::optional<ScreenMismatch> mismatch = CompareWithReference(actual, expected);
  ASSERT_TRUE(mismatch);
  EXPECT_EQ(mismatch->why,
            "pixel (1, 1) is #0000ff, the reference has #808080 (2 of 12 pixels differ)");
  ASSERT_TRUE(mismatch->diff);
  EXPECT_EQ(mismatch->diff->At(1, 1), 0xff0000u);
  EXPECT_EQ(mismatch->diff->At(3, 2), 0xff0000u);
  EXPECT_EQ(mismatch->diff->At(0, 0), 0x202020u);  // a quarter of 0x80
}

TEST(ScreenCheck, ADifferentSizeIsNamed) {
  std::optional<ScreenMismatch> mismatch = CompareWithReference(Filled(4, 3, 0), Filled(3, 4, 0));
  ASSERT_TRUE(mismatch);
  EXPECT_EQ(mismatch->why, "the screen is 4x3, the reference 3x4");
  EXPECT_FALSE(mismatch->diff);
}

TEST(ScreenCheck, ProbesHoldOrNameTheFirstThatFails) {
  base::RgbImage screen = Filled(8, 8, 0x000000);
  Set(&screen, 2, 5, 0xff8800);
  EXPECT_FALSE(CheckProbes(screen, {{2, 5, 0xff8800}, {0, 0, 0}}));
  std::optional<ScreenMismatch> wrong = CheckProbes(screen, {{2, 5, 0xff8800}, {7, 7, 0x00ff00}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->why, "probe 2 of 2: pixel (7, 7) is #000000, expected #00ff00");
  std::optional<ScreenMismatch> outside = CheckProbes(screen, {{8, 0, 0}});
  ASSERT_TRUE(outside);
  EXPECT_EQ(outside->why, "probe 1 of 1: (8, 0) is outside the 8x8 screen");
}

}  // namespace
}  // namespace vmm::suite
