#include "firmware/zero_page.h"

#include <gtest/gtest.h>

#include "base/layout.h"
#include "firmware/e820.h"

namespace firmware {
namespace {

using base::GiB;
using base::KiB;
using base::MiB;
namespace bp = boot_params;

TEST(E820, BelowOneMiBHasLowRamAndLegacyHoleOnly) {
  const auto map = BuildE820Map(512 * base::KiB);
  ASSERT_EQ(map.size(), 2u);
  EXPECT_EQ(map[0], (E820Entry{0, 512 * base::KiB, kE820Ram}));
  EXPECT_EQ(map[1], (E820Entry{0x9fc00, 0x100000 - 0x9fc00, kE820Reserved}));
}

TEST(E820, JustAboveOneMiB) {
  const auto map = BuildE820Map(base::MiB + 4 * base::KiB);
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map[0], (E820Entry{0, 0x9fc00, kE820Ram}));
  EXPECT_EQ(map[2], (E820Entry{base::MiB, 4 * base::KiB, kE820Ram}));
}

TEST(E820, ExactlyOneMiBHasNoHighRam) { EXPECT_EQ(BuildE820Map(base::MiB).size(), 2u); }

TEST(E820, OneHundredTwentyEightMiB) {
  const auto map = BuildE820Map(128 * base::MiB);
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map[0], (E820Entry{0, 0x9fc00, kE820Ram}));
  EXPECT_EQ(map[1], (E820Entry{0x9fc00, 0x60400, kE820Reserved}));
  EXPECT_EQ(map[2], (E820Entry{base::MiB, 127 * base::MiB, kE820Ram}));
}

TEST(E820, ExactlyThreeGiBEndsAtTheHole) {
  const auto map = BuildE820Map(3 * base::GiB);
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map[2], (E820Entry{base::MiB, 3 * base::GiB - base::MiB, kE820Ram}));
}

TEST(E820, FiveGiBPutsTwoGiBAboveFourGiB) {
  const auto map = BuildE820Map(5 * base::GiB);
  ASSERT_EQ(map.size(), 4u);
  EXPECT_EQ(map[2], (E820Entry{base::MiB, 3 * base::GiB - base::MiB, kE820Ram}));
  EXPECT_EQ(map[3], (E820Entry{4 * base::GiB, 2 * base::GiB, kE820Ram}));
  uint64_t ram = 0;
  for (const auto& entry : map) {
    if (entry.type == kE820Ram) ram += entry.size;
  }
  EXPECT_EQ(ram, 5 * base::GiB - base::MiB + 0x9fc00);  // all RAM but the legacy hole
}

template <typename T>
T At(const base::GuestMemory& memory, uint64_t offset) {
  return *memory.ReadObj<T>(base::kZeroPage + offset);
}

E820Entry ZeroPageE820(const base::GuestMemory& memory, uint64_t i) {
  const uint64_t at = bp::kE820Table + i * bp::kE820EntrySize;
  return {At<uint64_t>(memory, at), At<uint64_t>(memory, at + 8), At<uint32_t>(memory, at + 16)};
}

class ZeroPageForSize : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ZeroPageForSize, HoldsE820MapOfTheMemorySize) {
  const uint64_t size = GetParam();
  auto memory = std::move(*base::GuestMemory::Create(size));
  ASSERT_TRUE(memory->Fill(base::kZeroPage, 0xee, bp::kSize));
  ZeroPageConfig config;
  config.ram_size = size;
  ASSERT_TRUE(WriteZeroPage(*memory, config));
  const auto expected = BuildE820Map(size);
  ASSERT_EQ(At<uint8_t>(*memory, bp::kE820Entries), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(ZeroPageE820(*memory, i), expected[i]) << "entry " << i;
  }
  // Everything not written is zero (the page was garbage before).
  EXPECT_EQ(At<uint64_t>(*memory, 0), 0u);
  EXPECT_EQ(At<uint8_t>(*memory, bp::kSentinel), 0);
  EXPECT_EQ(At<uint64_t>(*memory, bp::kE820Table + expected.size() * bp::kE820EntrySize), 0u);
}

INSTANTIATE_TEST_SUITE_P(Sizes, ZeroPageForSize,
                         ::testing::Values(512 * base::KiB, 128 * base::MiB, 3 * base::GiB,
                                           5 * base::GiB));

TEST(ZeroPage, SyntheticHeaderForVmlinux) {
  auto memory = std::move(*base::GuestMemory::Create(128 * base::MiB));
  ZeroPageConfig config;
  config.ram_size = 128 * base::MiB;
  config.cmdline_address = base::kCmdline;
  config.cmdline_size = 11;
  config.initrd_address = 0x7000000;
  config.initrd_size = 0x123456;
  ASSERT_TRUE(WriteZeroPage(*memory, config));
  EXPECT_EQ(At<uint16_t>(*memory, bp::kBootFlag), 0xaa55);
  EXPECT_EQ(At<uint32_t>(*memory, bp::kHeader), 0x53726448u);  // "HdrS"
  EXPECT_EQ(At<uint16_t>(*memory, bp::kVersion), kSyntheticProtocolVersion);
  EXPECT_EQ(At<uint8_t>(*memory, bp::kTypeOfLoader), 0xff);
  EXPECT_EQ(At<uint8_t>(*memory, bp::kLoadFlags) & bp::kLoadedHigh, bp::kLoadedHigh);
  EXPECT_EQ(At<uint32_t>(*memory, bp::kCmdLinePtr), base::kCmdline);
  EXPECT_EQ(At<uint32_t>(*memory, bp::kExtCmdLinePtr), 0u);
  EXPECT_EQ(At<uint32_t>(*memory, bp::kCmdlineSize), 11u);
  EXPECT_EQ(At<uint32_t>(*memory, bp::kRamdiskImage), 0x7000000u);
  EXPECT_EQ(At<uint32_t>(*memory, bp::kRamdiskSize), 0x123456u);
  EXPECT_EQ(At<uint32_t>(*memory, bp::kExtRamdiskImage), 0u);
  EXPECT_EQ(At<uint32_t>(*memory, bp::kAltMemK), 127u * 1024);
  EXPECT_EQ(At<uint32_t>(*memory, bp::kKernelAlignment), 0x1000000u);
}

TEST(ZeroPage, InitrdAboveFourGiBUsesExtFields) {
  auto memory = std::move(*base::GuestMemory::Create(128 * base::MiB));
  ZeroPageConfig config;
  config.ram_size = 128 * base::MiB;
  config.initrd_address = 0x1'2345'6000;
  ASSERT_TRUE(WriteZeroPage(*memory, config));
  EXPECT_EQ(At<uint32_t>(*memory, bp::kRamdiskImage), 0x23456000u);
  EXPECT_EQ(At<uint32_t>(*memory, bp::kExtRamdiskImage), 1u);
}

TEST(ZeroPage, CopiesSetupHeaderThenOverridesLoaderFields) {
  auto memory = std::move(*base::GuestMemory::Create(128 * base::MiB));
  std::vector<uint8_t> header(0x270 - 0x1f1, 0);
  header[bp::kVersion - bp::kSetupHeader] = 0x0f;
  header[bp::kVersion - bp::kSetupHeader + 1] = 0x02;
  header[bp::kTypeOfLoader - bp::kSetupHeader] = 0x00;
  header[bp::kLoadFlags - bp::kSetupHeader] = 0x01;
  header[bp::kInitSize - bp::kSetupHeader + 2] = 0x40;  // init_size 0x400000
  ZeroPageConfig config;
  config.setup_header = header;
  config.ram_size = 128 * base::MiB;
  ASSERT_TRUE(WriteZeroPage(*memory, config));
  EXPECT_EQ(At<uint16_t>(*memory, bp::kVersion), 0x020f);
  EXPECT_EQ(At<uint32_t>(*memory, bp::kInitSize), 0x400000u);
  EXPECT_EQ(At<uint8_t>(*memory, bp::kTypeOfLoader), 0xff);
  EXPECT_EQ(At<uint16_t>(*memory, bp::kBootFlag), 0);  // copied, not synthesised
}

TEST(Cmdline, IsCopiedNulTerminated) {
  auto memory = std::move(*base::GuestMemory::Create(base::MiB));
  ASSERT_TRUE(memory->Fill(base::kCmdline, 0xee, 64));
  auto size = WriteCmdline(*memory, "console=ttyS0 exit=3", base::kCmdline, base::kCmdlineMax);
  ASSERT_TRUE(size);
  EXPECT_EQ(*size, 20u);
  char text[21];
  ASSERT_TRUE(memory->Read(base::kCmdline, std::span(reinterpret_cast<uint8_t*>(text), 21)));
  EXPECT_STREQ(text, "console=ttyS0 exit=3");
}

TEST(Cmdline, EmptyIsOneNul) {
  auto memory = std::move(*base::GuestMemory::Create(base::MiB));
  ASSERT_TRUE(memory->Fill(base::kCmdline, 0xee, 4));
  EXPECT_EQ(*WriteCmdline(*memory, "", base::kCmdline, base::kCmdlineMax), 0u);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(base::kCmdline), 0);
}

TEST(Cmdline, LongestThatFitsIsAccepted) {
  auto memory = std::move(*base::GuestMemory::Create(base::MiB));
  const std::string text(base::kCmdlineMax - 1, 'a');
  ASSERT_TRUE(WriteCmdline(*memory, text, base::kCmdline, base::kCmdlineMax));
  EXPECT_EQ(*memory->ReadObj<uint8_t>(base::kCmdline + base::kCmdlineMax - 1), 0);
}

TEST(Cmdline, TooLongIsAConfigError) {
  auto memory = std::move(*base::GuestMemory::Create(base::MiB));
  auto result =
      WriteCmdline(*memory, std::string(base::kCmdlineMax, 'a'), base::kCmdline, base::kCmdlineMax);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind(), base::ErrorKind::kConfig);
  EXPECT_NE(result.error().message().find("65536 bytes; the limit is 65536"), std::string::npos)
      << result.error().message();
}

TEST(Cmdline, EmbeddedNulIsAConfigError) {
  auto memory = std::move(*base::GuestMemory::Create(base::MiB));
  auto result = WriteCmdline(*memory, std::string("a\0b", 3), base::kCmdline, base::kCmdlineMax);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().kind(), base::ErrorKind::kConfig);
}

}  // namespace
}  // namespace firmware
