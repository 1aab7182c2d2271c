// The suite's screen checks (vmm/suite/screen_check.h) on images in memory.
#include "vmm/suite/screen_check.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

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

TEST(ScreenCheck, AFailedProbeMarksEveryWrongPixelInTheDiff) {
  base::RgbImage screen = Filled(4, 4, 0x808080);
  std::optional<ScreenMismatch> wrong =
      CheckProbes(screen, {{0, 0, 0x808080}, {1, 2, 0}, {9, 9, 0}, {3, 3, 0xffffff}});
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->why, "probe 2 of 4: pixel (1, 2) is #808080, expected #000000");
  ASSERT_TRUE(wrong->diff);
  EXPECT_EQ(wrong->diff->At(1, 2), 0xff0000u);
  EXPECT_EQ(wrong->diff->At(3, 3), 0xff0000u);
  EXPECT_EQ(wrong->diff->At(0, 0), 0x202020u);  // a probe that held: dimmed like the rest
}

// CheckScreen on files, as the runner calls it after vmm wrote --screenshot.
class ScreenFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vmm-screen-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    screenshot_ = dir_ / "screen.png";
    diff_ = dir_ / "screen-diff.png";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void WriteScreenshot(const base::RgbImage& image) {
    std::vector<uint8_t> png = base::EncodeRgbPng(image).value();
    std::ofstream(screenshot_, std::ios::binary)
        .write(reinterpret_cast<const char*>(png.data()), static_cast<std::streamsize>(png.size()));
  }
  std::vector<std::string> Check(const ScreenSpec& screen) {
    return CheckScreen(screen, screenshot_, diff_);
  }

  std::filesystem::path dir_, screenshot_, diff_;
};

ScreenSpec Reference(base::RgbImage image) {
  ScreenSpec screen;
  screen.reference = "/cases/expected.png";
  screen.reference_image = std::make_shared<const base::RgbImage>(std::move(image));
  return screen;
}

TEST_F(ScreenFiles, AMatchingScreenPassesAndWritesNoDiff) {
  WriteScreenshot(Filled(4, 3, 0x102030));
  ScreenSpec screen = Reference(Filled(4, 3, 0x102030));
  screen.probes = {{3, 2, 0x102030}};
  EXPECT_TRUE(Check(screen).empty());
  EXPECT_FALSE(std::filesystem::exists(diff_));
}

TEST_F(ScreenFiles, AWrongReferencePixelIsNamedAndTheDiffWritten) {
  base::RgbImage actual = Filled(4, 3, 0x102030);
  Set(&actual, 2, 1, 0xffffff);
  WriteScreenshot(actual);
  std::vector<std::string> reasons = Check(Reference(Filled(4, 3, 0x102030)));
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_EQ(reasons[0],
            "screen: expected.png: pixel (2, 1) is #ffffff, the reference has #102030 (1 of 12 "
            "pixels differ)");
  base::Result<base::RgbImage> diff = base::ReadPng(diff_.string());
  ASSERT_TRUE(diff) << diff.error().ToString();
  EXPECT_EQ(diff->At(2, 1), 0xff0000u);
  EXPECT_EQ(diff->At(0, 0), 0x04080cu);
}

TEST_F(ScreenFiles, ReferenceAndProbesFailingAreTwoReasonsAndOneDiff) {
  WriteScreenshot(Filled(4, 3, 0));
  ScreenSpec screen = Reference(Filled(4, 3, 0x0000ff));
  screen.probes = {{1, 1, 0x00ff00}};
  std::vector<std::string> reasons = Check(screen);
  ASSERT_EQ(reasons.size(), 2u);
  EXPECT_TRUE(reasons[0].starts_with("screen: expected.png: pixel (0, 0) is #000000"))
      << reasons[0];
  EXPECT_EQ(reasons[1], "screen: probe 1 of 1: pixel (1, 1) is #000000, expected #00ff00");
  base::Result<base::RgbImage> diff = base::ReadPng(diff_.string());
  ASSERT_TRUE(diff);
  EXPECT_EQ(diff->At(3, 2), 0xff0000u);  // the reference's diff: every pixel differs
}

TEST_F(ScreenFiles, AProbeFailureWritesItsDiff) {
  WriteScreenshot(Filled(4, 3, 0));
  ScreenSpec screen;
  screen.probes = {{1, 1, 0x00ff00}};
  ASSERT_EQ(Check(screen).size(), 1u);
  base::Result<base::RgbImage> diff = base::ReadPng(diff_.string());
  ASSERT_TRUE(diff);
  EXPECT_EQ(diff->At(1, 1), 0xff0000u);
}

TEST_F(ScreenFiles, MissingEmptyOrCorruptScreenshotsAreReasons) {
  ScreenSpec screen;
  screen.probes = {{0, 0, 0}};
  std::vector<std::string> missing = Check(screen);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_TRUE(missing[0].starts_with("screen: vmm wrote no screenshot (" + screenshot_.string() +
                                     " is missing)"))
      << missing[0];

  std::ofstream(screenshot_).close();
  std::vector<std::string> empty = Check(screen);
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0], "screen: the screenshot " + screenshot_.string() +
                          " is empty: vmm ended before writing it");

  std::ofstream(screenshot_) << "garbage";
  std::vector<std::string> corrupt = Check(screen);
  ASSERT_EQ(corrupt.size(), 1u);
  EXPECT_TRUE(corrupt[0].starts_with("screen: the screenshot: " + screenshot_.string() + ": "))
      << corrupt[0];
  EXPECT_FALSE(std::filesystem::exists(diff_));
}

TEST_F(ScreenFiles, AnUnwritableDiffIsSaidInTheReason) {
  WriteScreenshot(Filled(2, 2, 0));
  ScreenSpec screen;
  screen.probes = {{0, 0, 0xffffff}};
  std::vector<std::string> reasons = CheckScreen(screen, screenshot_, dir_ / "no" / "diff.png");
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_TRUE(reasons[0].ends_with("; cannot write " + (dir_ / "no" / "diff.png").string()))
      << reasons[0];
}

}  // namespace
}  // namespace vmm::suite
