// base/png.h: XRGB framebuffer pixels to PNG and back, and what bad PNGs get.
#include "base/png.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

namespace base {
namespace {

// A 5x3 XRGB screen with a distinct colour per pixel and junk in the X byte
// and in the row padding (stride 24 > 5 * 4).
std::vector<uint8_t> Screen(uint32_t* stride) {
  *stride = 24;
  std::vector<uint8_t> px(static_cast<size_t>(*stride) * 3, 0xee);
  for (uint32_t y = 0; y < 3; ++y) {
    for (uint32_t x = 0; x < 5; ++x) {
      uint8_t* p = &px[y * *stride + x * 4];
      p[0] = static_cast<uint8_t>(10 * x + y);  // blue
      p[1] = static_cast<uint8_t>(100 + x);     // green
      p[2] = static_cast<uint8_t>(200 + y);     // red
      p[3] = 0x5a;                              // ignored
    }
  }
  return px;
}

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("png_test_" + std::to_string(getpid()) + "_" + name))
      .string();
}

TEST(Png, XrgbRoundTripKeepsEveryPixel) {
  uint32_t stride = 0;
  std::vector<uint8_t> px = Screen(&stride);
  Result<std::vector<uint8_t>> png = EncodeXrgbPng(px.data(), 5, 3, stride);
  ASSERT_TRUE(png) << png.error().ToString();
  ASSERT_GT(png->size(), 8u);
  EXPECT_EQ((*png)[1], 'P');
  Result<RgbImage> back = DecodePng(*png, "mem");
  ASSERT_TRUE(back) << back.error().ToString();
  ASSERT_EQ(back->width, 5u);
  ASSERT_EQ(back->height, 3u);
  for (uint32_t y = 0; y < 3; ++y) {
    for (uint32_t x = 0; x < 5; ++x) {
      uint32_t want = ((200 + y) << 16) | ((100 + x) << 8) | (10 * x + y);
      EXPECT_EQ(back->At(x, y), want) << x << "," << y;
    }
  }
}

TEST(Png, WrittenFileReadsBack) {
  uint32_t stride = 0;
  std::vector<uint8_t> px = Screen(&stride);
  std::string path = TempPath("screen.png");
  ASSERT_TRUE(WriteXrgbPng(path, px.data(), 5, 3, stride));
  Result<RgbImage> back = ReadPng(path);
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_EQ(back->At(4, 2), ((200u + 2) << 16) | ((100u + 4) << 8) | (40u + 2));
  Result<std::vector<uint8_t>> again = EncodeRgbPng(*back);
  ASSERT_TRUE(again);
  Result<RgbImage> twice = DecodePng(*again, "again");
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->rgb, back->rgb);
  std::filesystem::remove(path);
}

TEST(Png, BadGeometryIsAUsageError) {
  std::vector<uint8_t> px(64, 0);
  for (auto [w, h, stride] :
       {std::tuple{0u, 1u, 4u}, std::tuple{1u, 0u, 4u}, std::tuple{2u, 1u, 7u},
        std::tuple{kMaxPngSide + 1, 1u, 1u << 20}, std::tuple{8192u, 8192u, 8192u * 4}}) {
    Result<std::vector<uint8_t>> png = EncodeXrgbPng(px.data(), w, h, stride);
    ASSERT_FALSE(png) << w << "x" << h;
    EXPECT_EQ(png.error().kind(), ErrorKind::kUsage);
  }
}

TEST(Png, NotAPngIsBadImageNamingTheFile) {
  std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  Result<RgbImage> image = DecodePng(text, "ref.png");
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().kind(), ErrorKind::kBadImage);
  EXPECT_NE(image.error().message().find("ref.png"), std::string::npos);
}

TEST(Png, TruncatedPngIsBadImage) {
  uint32_t stride = 0;
  std::vector<uint8_t> px = Screen(&stride);
  std::vector<uint8_t> png = *EncodeXrgbPng(px.data(), 5, 3, stride);
  for (size_t keep : {size_t{8}, size_t{33}, png.size() / 2, png.size() - 13}) {
    std::vector<uint8_t> cut(png.begin(), png.begin() + static_cast<long>(keep));
    Result<RgbImage> image = DecodePng(cut, "cut.png");
    ASSERT_FALSE(image) << keep;
    EXPECT_EQ(image.error().kind(), ErrorKind::kBadImage) << keep;
  }
}

TEST(Png, HugeDeclaredSizeIsRefusedBeforeAllocating) {
  // A valid 1x1 PNG whose IHDR is rewritten to 16384x16384 (268 Mi pixels):
  // refused on the header, before libpng inflates anything.
  uint32_t stride = 4;
  std::vector<uint8_t> px(4, 0);
  std::vector<uint8_t> png = *EncodeXrgbPng(px.data(), 1, 1, stride);
  ASSERT_GE(png.size(), 24u);
  for (size_t i : {16u, 20u}) {  // IHDR width, height (big-endian)
    png[i] = 0;
    png[i + 1] = 0;
    png[i + 2] = 0x40;
    png[i + 3] = 0;
  }
  Result<RgbImage> image = DecodePng(png, "huge.png");
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().kind(), ErrorKind::kBadImage);
}

TEST(Png, MissingFileIsNoInput) {
  Result<RgbImage> image = ReadPng(TempPath("does-not-exist.png"));
  ASSERT_FALSE(image);
  EXPECT_EQ(image.error().kind(), ErrorKind::kNoInput);
  EXPECT_FALSE(WriteXrgbPng("/nonexistent-dir/x.png", std::vector<uint8_t>(4).data(), 1, 1, 4));
}

}  // namespace
}  // namespace base
