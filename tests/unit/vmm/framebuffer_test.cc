// The framebuffer: --framebuffer's values, the memory vmm maps into the guest
// and its screenshot, and what each boot protocol is told
// (docs/framebuffer.md).
#include "vmm/framebuffer.h"

#include <gtest/gtest.h>

#include <cstring>

#include "base/layout.h"
#include "base/png.h"
#include "firmware/boot.h"
#include "firmware/multiboot2.h"
#include "firmware/zero_page.h"
#include "tests/unit/firmware/test_images.h"
#include "vmm/config.h"

namespace vmm {
namespace {

using firmware::testing::ElfBuilder;
using firmware::testing::PutAt;
using firmware::testing::TempFile;

TEST(Framebuffer, SpecValues) {
  auto spec = ParseFramebufferSpec("800x600");
  ASSERT_TRUE(spec) << spec.error().message();
  EXPECT_EQ(spec->kind, FramebufferSpec::Kind::kOn);
  EXPECT_EQ(spec->width, 800u);
  EXPECT_EQ(spec->height, 600u);
  EXPECT_EQ(ParseFramebufferSpec("off")->kind, FramebufferSpec::Kind::kOff);
  EXPECT_EQ(ParseFramebufferSpec("auto")->kind, FramebufferSpec::Kind::kAuto);
  EXPECT_EQ(ParseFramebufferSpec("auto")->width, 1024u);
  for (const char* bad : {"0x0", "0x600", "800x0", "8193x10", "8192x8193", "800", "x600",
                          "800x600x32", "-1x5", "1e3x5", ""}) {
    auto refused = ParseFramebufferSpec(bad);
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().kind(), base::ErrorKind::kUsage) << bad;
  }
  auto config =
      ParseConfig(R"({"framebuffer": "640x480", "screenshot": "shot.png"})", "/cfg", "test.json");
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->framebuffer.width, 640u);
  EXPECT_EQ(config->screenshot, "/cfg/shot.png");
  auto bad = ParseConfig(R"({"framebuffer": "huge"})", "/cfg", "test.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind(), base::ErrorKind::kConfig);
  EXPECT_NE(bad.error().message().find("framebuffer"), std::string::npos);
}

TEST(Framebuffer, MemoryIsSharedAndItsScreenshotDecodes) {
  const auto geometry = firmware::MakeFramebuffer(64, 32);
  EXPECT_EQ(geometry.address, base::kFramebufferBase);
  EXPECT_EQ(geometry.pitch, 256u);
  auto fb = FramebufferMemory::Create(geometry);
  ASSERT_TRUE(fb) << fb.error().message();
  EXPECT_EQ((*fb)->mapped_size(), 8192u);
  EXPECT_GE((*fb)->fd(), 0);
  // The guest draws a red pixel at (3, 2) and a blue one at (63, 31).
  uint32_t red = 0x00ff0000, blue = 0x000000ff;
  std::memcpy((*fb)->host() + 2 * 256 + 3 * 4, &red, 4);
  std::memcpy((*fb)->host() + 31 * 256 + 63 * 4, &blue, 4);
  auto png = (*fb)->EncodePng();
  ASSERT_TRUE(png) << png.error().message();
  auto image = base::DecodePng(*png, "screenshot");
  ASSERT_TRUE(image) << image.error().message();
  EXPECT_EQ(image->width, 64u);
  EXPECT_EQ(image->height, 32u);
  EXPECT_EQ(image->At(3, 2), 0xff0000u);
  EXPECT_EQ(image->At(63, 31), 0x0000ffu);
  EXPECT_EQ(image->At(0, 0), 0u);
  auto unwritable = (*fb)->WritePng("/nonexistent-dir/shot.png");
  ASSERT_FALSE(unwritable);
  EXPECT_NE(unwritable.error().message().find("/nonexistent-dir/shot.png"), std::string::npos);
}

std::unique_ptr<base::GuestMemory> Memory() {
  return std::move(*base::GuestMemory::Create(128 * base::MiB));
}

// Linux learns of a framebuffer the user asked for through screen_info, as a
// VESA linear framebuffer; without --framebuffer WxH it sees none.
TEST(Framebuffer, LinuxScreenInfo) {
  TempFile kernel(ElfBuilder().Build());
  firmware::BootConfig config;
  config.kernel_path = kernel.path();
  config.framebuffer_on_request = firmware::MakeFramebuffer(1024, 768);
  auto memory = Memory();
  auto info = firmware::LoadKernel(*memory, config);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_FALSE(info->framebuffer) << "a vmlinux never asks";
  EXPECT_EQ(*memory->ReadObj<uint8_t>(base::kZeroPage + firmware::boot_params::kOrigVideoIsVga), 0);

  config.framebuffer = firmware::MakeFramebuffer(800, 600);
  memory = Memory();
  info = firmware::LoadKernel(*memory, config);
  ASSERT_TRUE(info) << info.error().message();
  ASSERT_TRUE(info->framebuffer);
  namespace bp = firmware::boot_params;
  const uint64_t zp = base::kZeroPage;
  EXPECT_EQ(*memory->ReadObj<uint8_t>(zp + bp::kOrigVideoIsVga), bp::kVideoTypeVlfb);
  EXPECT_EQ(*memory->ReadObj<uint16_t>(zp + bp::kLfbWidth), 800u);
  EXPECT_EQ(*memory->ReadObj<uint16_t>(zp + bp::kLfbHeight), 600u);
  EXPECT_EQ(*memory->ReadObj<uint16_t>(zp + bp::kLfbDepth), 32u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(zp + bp::kLfbBase), base::kFramebufferBase);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(zp + bp::kLfbSize), (800u * 600 * 4 + 0xffff) >> 16);
  EXPECT_EQ(*memory->ReadObj<uint16_t>(zp + bp::kLfbLineLength), 3200u);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(zp + bp::kLfbColourFields + 1), 16) << "red_pos";
  EXPECT_NE(info->description.find("framebuffer 800x600 at 0xe0000000"), std::string::npos)
      << info->description;
}

// Multiboot2: a kernel's framebuffer tag gets info tag 8 in the size it
// prefers; a required tag with the framebuffer off is refused.
TEST(Framebuffer, Multiboot2FramebufferTag) {
  std::vector<uint8_t> image(0x1000, 0x90);
  auto header = [&](uint16_t flags) {
    std::vector<uint32_t> words = {firmware::kMultiboot2HeaderMagic, 0, 0, 0,
                                   // address tag
                                   2 | 0u << 16, 24, 0x100000, 0x100000, 0x101000, 0x102000,
                                   // entry tag (12 bytes, padded to 16)
                                   3, 12, 0x100100, 0,
                                   // framebuffer tag: 640x480x32
                                   5u | uint32_t{flags} << 16, 20, 640, 480, 32, 0,
                                   // end
                                   0, 8};
    const uint32_t length = static_cast<uint32_t>(words.size() * 4);
    words[2] = length;
    words[3] = 0u - firmware::kMultiboot2HeaderMagic - length;
    for (size_t i = 0; i < words.size(); ++i) PutAt<uint32_t>(image, i * 4, words[i]);
    return image;
  };
  TempFile kernel(header(1), "mb2-fb.bin");
  firmware::BootConfig config;
  config.kernel_path = kernel.path();
  config.framebuffer_on_request = firmware::MakeFramebuffer(1024, 768);
  auto memory = Memory();
  auto info = firmware::LoadKernel(*memory, config);
  ASSERT_TRUE(info) << info.error().message();
  ASSERT_TRUE(info->framebuffer);
  EXPECT_EQ(info->framebuffer->width, 640u) << "the size the tag prefers";
  // Find tag 8 in the info.
  const uint64_t mbi = info->cpu.rbx;
  const uint32_t total = *memory->ReadObj<uint32_t>(mbi);
  bool found = false;
  for (uint64_t at = mbi + 8; at < mbi + total;) {
    const uint32_t type = *memory->ReadObj<uint32_t>(at);
    const uint32_t size = *memory->ReadObj<uint32_t>(at + 4);
    if (type == firmware::kMb2TagFramebuffer) {
      found = true;
      EXPECT_EQ(*memory->ReadObj<uint64_t>(at + 8), base::kFramebufferBase);
      EXPECT_EQ(*memory->ReadObj<uint32_t>(at + 16), 640u * 4);  // pitch
      EXPECT_EQ(*memory->ReadObj<uint32_t>(at + 20), 640u);
      EXPECT_EQ(*memory->ReadObj<uint32_t>(at + 24), 480u);
      EXPECT_EQ(*memory->ReadObj<uint8_t>(at + 28), 32);  // bpp
      EXPECT_EQ(*memory->ReadObj<uint8_t>(at + 29), 1);   // RGB
      EXPECT_EQ(*memory->ReadObj<uint8_t>(at + 32), 16);  // red position
      EXPECT_EQ(*memory->ReadObj<uint8_t>(at + 36), 0);   // blue position
    }
    if (type == 0) break;
    at += (size + 7) & ~uint32_t{7};
  }
  EXPECT_TRUE(found);

  // Off: an optional tag gets nothing, a required one is refused.
  config.framebuffer_on_request.reset();
  info = firmware::LoadKernel(*Memory(), config);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_FALSE(info->framebuffer);
  TempFile required(header(0), "mb2-fb-required.bin");
  config.kernel_path = required.path();
  auto refused = firmware::LoadKernel(*Memory(), config);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("--framebuffer off"), std::string::npos)
      << refused.error().message();
}

}  // namespace
}  // namespace vmm

namespace vmm {
namespace {

// --acpi and "acpi": on/off and a bool; anything else names the flag or field.
TEST(AcpiFlag, OnOffAndGarbage) {
  EXPECT_TRUE(*ParseOnOff("on", "--acpi"));
  EXPECT_FALSE(*ParseOnOff("off", "--acpi"));
  for (const char* bad : {"", "yes", "ON", "1", "off "}) {
    auto refused = ParseOnOff(bad, "--acpi");
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().kind(), base::ErrorKind::kUsage);
    EXPECT_NE(refused.error().message().find("--acpi"), std::string::npos);
  }
  EXPECT_FALSE(ParseConfig(R"({"acpi": false})", "/cfg", "test.json")->acpi);
  auto bad = ParseConfig(R"({"acpi": "off"})", "/cfg", "test.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind(), base::ErrorKind::kConfig);
  EXPECT_NE(bad.error().message().find("acpi"), std::string::npos);
}

}  // namespace
}  // namespace vmm
