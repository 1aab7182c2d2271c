#include "firmware/bzimage.h"

#include <gtest/gtest.h>

#include <functional>

#include "base/layout.h"
#include "firmware/boot.h"
#include "firmware/zero_page.h"
#include "tests/unit/firmware/test_images.h"

namespace firmware {
namespace {

using base::MiB;
using testing::BzImageBuilder;
using testing::PutAt;
using testing::TempFile;
namespace bp = boot_params;

constexpr std::string_view kName = "kernel image /t/bzImage";

BootConfig Config(std::string path, std::string cmdline = "",
                  std::vector<std::string> initrds = {}) {
  BootConfig config;
  config.kernel_path = std::move(path);
  config.cmdline = std::move(cmdline);
  config.initrd_paths = std::move(initrds);
  return config;
}

template <typename T>
T ZeroPage(const base::GuestMemory& memory, uint64_t offset) {
  return *memory.ReadObj<T>(base::kZeroPage + offset);
}

TEST(BzImage, ParsesSetupHeader) {
  auto header = ParseBzImage(BzImageBuilder().Build(), kName);
  ASSERT_TRUE(header) << header.error().message();
  EXPECT_EQ(header->version, 0x020f);
  EXPECT_EQ(header->setup_size, 5u * 512);
  EXPECT_EQ(header->header_end, 0x26cu);
  EXPECT_EQ(header->kernel_size, 0x10000u);
  EXPECT_EQ(header->pref_address, 0x1000000u);
  EXPECT_EQ(header->load_address(), 0x1000000u);
  EXPECT_EQ(header->load_end(), 0x1800000u);
  EXPECT_EQ(header->kernel_version, "6.99.0-test (builder@host) #1");
  EXPECT_TRUE(header->relocatable);
}

TEST(BzImage, SetupSectsZeroMeansFour) {
  auto bytes = BzImageBuilder().Build();  // 4 sectors of setup
  bytes[0x1f1] = 0;                       // which is what 0 means
  auto header = ParseBzImage(bytes, kName);
  ASSERT_TRUE(header) << header.error().message();
  EXPECT_EQ(header->setup_size, 5u * 512);
}

TEST(BzImage, LoadKernelEntersAtLoadAddressPlus0x200WithZeroPageFromHeader) {
  TempFile kernel(BzImageBuilder().Build());
  TempFile initrd(std::vector<uint8_t>(0x3000, 0xab), "initrd.img");
  auto memory = std::move(*base::GuestMemory::Create(128 * base::MiB));
  auto info =
      LoadKernel(*memory, Config(kernel.path(), "console=ttyS0 root=/dev/vda", {initrd.path()}));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kBzImage);
  EXPECT_EQ(info->cpu.rip, 0x1000200u);
  EXPECT_EQ(info->cpu.rsi, base::kZeroPage);
  EXPECT_EQ(info->cpu.cs.l, 1);
  EXPECT_EQ(info->kernel_start, 0x1000000u);
  EXPECT_EQ(info->kernel_end, 0x1800000u);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x1000000), 0xf4);
  // Zero page: the header copied, the loader's fields set.
  EXPECT_EQ(ZeroPage<uint32_t>(*memory, bp::kHeader), bp::kHeaderMagic);
  EXPECT_EQ(ZeroPage<uint16_t>(*memory, bp::kVersion), 0x020f);
  EXPECT_EQ(ZeroPage<uint8_t>(*memory, bp::kSetupSects), 4);
  EXPECT_EQ(ZeroPage<uint32_t>(*memory, bp::kInitSize), 0x800000u);
  EXPECT_EQ(ZeroPage<uint8_t>(*memory, bp::kTypeOfLoader), 0xff);
  EXPECT_EQ(ZeroPage<uint32_t>(*memory, bp::kCmdLinePtr), base::kCmdline);
  EXPECT_EQ(ZeroPage<uint32_t>(*memory, bp::kCmdlineSize), 27u);
  EXPECT_EQ(ZeroPage<uint8_t>(*memory, bp::kE820Entries), 3);
  // Initrd: page aligned, as high as possible below RAM's end, clear of the kernel.
  const uint32_t image = ZeroPage<uint32_t>(*memory, bp::kRamdiskImage);
  EXPECT_EQ(image, 128 * base::MiB - 0x3000);
  EXPECT_EQ(ZeroPage<uint32_t>(*memory, bp::kRamdiskSize), 0x3000u);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(image), 0xab);
  EXPECT_EQ(info->initrd_start, image);
  EXPECT_EQ(info->initrd_end, 128 * base::MiB);
}

TEST(BzImage, InitrdStaysBelowInitrdAddrMax) {
  BzImageBuilder builder;
  builder.initrd_addr_max = 0x3000000 - 1;
  TempFile kernel(builder.Build());
  TempFile initrd(std::vector<uint8_t>(0x1800, 1), "initrd.img");
  auto memory = std::move(*base::GuestMemory::Create(128 * base::MiB));
  auto info = LoadKernel(*memory, Config(kernel.path(), "", {initrd.path()}));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->initrd_start, 0x3000000u - 0x2000);
  EXPECT_LE(info->initrd_end, 0x3000000u);
}

// XLF_CAN_BE_LOADED_ABOVE_4G: an initrd that does not fit below
// initrd_addr_max goes to the top of the RAM above the MMIO hole, and the
// zero page carries its address's high half in ext_ramdisk_image.
TEST(BzImage, InitrdGoesAbove4GiBWhenTheKernelAllowsIt) {
  BzImageBuilder builder;
  builder.initrd_addr_max = 0x2000000 - 1;  // [24 MiB, 32 MiB) free below it
  TempFile kernel(builder.Build());
  TempFile initrd(std::vector<uint8_t>(9 * base::MiB, 0x5a), "big.img");
  auto memory = std::move(*base::GuestMemory::Create(3 * base::GiB + 16 * base::MiB));
  auto info = LoadKernel(*memory, Config(kernel.path(), "", {initrd.path()}));
  ASSERT_TRUE(info) << info.error().message();
  const uint64_t expected = 4 * base::GiB + 16 * base::MiB - 9 * base::MiB;
  EXPECT_EQ(info->initrd_start, expected);
  EXPECT_EQ(info->initrd_end, expected + 9 * base::MiB);
  EXPECT_EQ(ZeroPage<uint32_t>(*memory, bp::kRamdiskImage), static_cast<uint32_t>(expected));
  EXPECT_EQ(ZeroPage<uint32_t>(*memory, bp::kExtRamdiskImage), 1u);
  EXPECT_EQ(ZeroPage<uint32_t>(*memory, bp::kRamdiskSize), 9 * base::MiB);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(expected + 9 * base::MiB - 1), 0x5a);
}

TEST(BzImage, InitrdStaysBelow4GiBWithoutXlfCanBeLoadedAbove4G) {
  BzImageBuilder builder;
  builder.initrd_addr_max = 0x2000000 - 1;
  builder.xloadflags = 0x01;  // XLF_KERNEL_64 only
  TempFile kernel(builder.Build());
  TempFile initrd(std::vector<uint8_t>(9 * base::MiB, 0x5a), "big.img");
  auto memory = std::move(*base::GuestMemory::Create(3 * base::GiB + 16 * base::MiB));
  auto info = LoadKernel(*memory, Config(kernel.path(), "", {initrd.path()}));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 78);
  EXPECT_NE(info.error().message().find("does not fit"), std::string::npos)
      << info.error().message();
}

TEST(BzImage, InitrdLargerThanFreeMemoryIsConfigError) {
  TempFile kernel(BzImageBuilder().Build());
  // 32 MiB of RAM; kernel needs [16 MiB, 24 MiB); 9 MiB initrd cannot fit.
  TempFile initrd(std::vector<uint8_t>(9 * base::MiB, 1), "big.img");
  auto memory = std::move(*base::GuestMemory::Create(32 * base::MiB));
  auto info = LoadKernel(*memory, Config(kernel.path(), "", {initrd.path()}));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 78);
  EXPECT_NE(info.error().message().find("initrd " + initrd.path()), std::string::npos)
      << info.error().message();
  EXPECT_NE(info.error().message().find("does not fit"), std::string::npos);
}

TEST(BzImage, MissingInitrdIsNoInput) {
  TempFile kernel(BzImageBuilder().Build());
  auto memory = std::move(*base::GuestMemory::Create(128 * base::MiB));
  auto info = LoadKernel(*memory, Config(kernel.path(), "", {"/nonexistent/initrd"}));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 66);
}

TEST(BzImage, TwoInitrdsAreAConfigError) {
  TempFile kernel(BzImageBuilder().Build());
  TempFile initrd(std::vector<uint8_t>(16, 1), "initrd.img");
  auto memory = std::move(*base::GuestMemory::Create(128 * base::MiB));
  auto info = LoadKernel(*memory, Config(kernel.path(), "", {initrd.path(), initrd.path()}));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 78);
}

TEST(BzImage, CommandLineLongerThanCmdlineSizeIsConfigError) {
  BzImageBuilder builder;
  builder.cmdline_size = 15;
  TempFile kernel(builder.Build());
  auto memory = std::move(*base::GuestMemory::Create(128 * base::MiB));
  EXPECT_TRUE(LoadKernel(*memory, Config(kernel.path(), std::string(15, 'a'))));
  auto info = LoadKernel(*memory, Config(kernel.path(), std::string(16, 'a')));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 78);
  EXPECT_NE(info.error().message().find("cmdline_size 0xf"), std::string::npos)
      << info.error().message();
}

TEST(BzImage, MemoryBelowInitSizeIsConfigError) {
  TempFile kernel(BzImageBuilder().Build());
  auto memory = std::move(*base::GuestMemory::Create(20 * base::MiB));
  auto info = LoadKernel(*memory, Config(kernel.path()));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 78);
  EXPECT_NE(info.error().message().find("[0x1000000, 0x1800000)"), std::string::npos)
      << info.error().message();
}

TEST(BzImage, ForcedBzImageOnElfSaysNotABzImage) {
  TempFile kernel(testing::ElfBuilder().Build());
  auto memory = std::move(*base::GuestMemory::Create(128 * base::MiB));
  auto config = Config(kernel.path());
  config.protocol = BootProtocol::kBzImage;
  auto info = LoadKernel(*memory, config);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("not a bzImage"), std::string::npos);
}

struct MalformedBzImage {
  const char* name;
  std::function<std::vector<uint8_t>()> make;
  const char* message_part;
  friend void PrintTo(const MalformedBzImage& c, std::ostream* os) { *os << c.name; }
};

std::vector<uint8_t> With(std::function<void(BzImageBuilder&)> edit) {
  BzImageBuilder builder;
  edit(builder);
  return builder.Build();
}

const MalformedBzImage kMalformed[] = {
    {"TooShort",
     [] {
       auto f = BzImageBuilder().Build();
       f.resize(0x100);
       return f;
     },
     "too short for a Linux setup header"},
    {"NoBootFlag",
     [] {
       auto f = BzImageBuilder().Build();
       f[0x1fe] = 0;
       return f;
     },
     "not a bzImage"},
    {"NoHdrS",
     [] {
       auto f = BzImageBuilder().Build();
       f[0x202] = 'X';
       return f;
     },
     "not a bzImage"},
    {"ProtocolTooOld", [] { return With([](auto& b) { b.version = 0x020b; }); },
     "boot protocol 2.11 is too old"},
    {"ZImage", [] { return With([](auto& b) { b.loadflags = 0; }); }, "zImage"},
    {"No64BitEntry", [] { return With([](auto& b) { b.xloadflags = 0x4; }); },
     "no 64-bit entry point (xloadflags 0x4 lacks XLF_KERNEL_64)"},
    {"ShortHeader",
     [] {
       auto f = BzImageBuilder().Build();
       f[0x201] = 0x20;
       return f;
     },
     "setup header ends at 0x222"},
    {"SetupPastEnd",
     [] {
       auto f = BzImageBuilder().Build();
       f[0x1f1] = 200;
       return f;
     },
     "leaves no protected-mode kernel"},
    {"Truncated",
     [] {
       auto f = BzImageBuilder().Build();
       f.resize(f.size() - 0x1000);
       return f;
     },
     "truncated: syssize"},
    {"PrefAddressLow", [] { return With([](auto& b) { b.pref_address = 0x8000; }); },
     "pref_address 0x8000 is below 1 MiB"},
    {"BadAlignment", [] { return With([](auto& b) { b.kernel_alignment = 0x300000; }); },
     "kernel_alignment 0x300000 is not a power of two"},
    {"Misaligned", [] { return With([](auto& b) { b.pref_address = 0x1100000; }); },
     "is not aligned to kernel_alignment"},
    {"PrefAddressOverflows",
     [] { return With([](auto& b) { b.pref_address = UINT64_MAX & ~uint64_t{0x1fffff}; }); },
     "overflows"},
    {"PayloadOutside",
     [] {
       auto f = BzImageBuilder().Build();
       PutAt<uint32_t>(f, 0x248, 0x100);
       PutAt<uint32_t>(f, 0x24c, 0x20000);
       return f;
     },
     "compressed payload (offset 0x100, length 0x20000) lies outside"},
};

class BzImageMalformed : public ::testing::TestWithParam<MalformedBzImage> {};

TEST_P(BzImageMalformed, IsRejectedWithBadImage) {
  auto header = ParseBzImage(GetParam().make(), kName);
  ASSERT_FALSE(header);
  EXPECT_EQ(header.error().exit_status(), 65);
  EXPECT_NE(header.error().message().find(kName), std::string::npos) << header.error().message();
  EXPECT_NE(header.error().message().find(GetParam().message_part), std::string::npos)
      << header.error().message();
}

INSTANTIATE_TEST_SUITE_P(Table, BzImageMalformed, ::testing::ValuesIn(kMalformed),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(BzImage, UnterminatedVersionStringIsEmpty) {
  auto f = BzImageBuilder().Build();
  std::fill(f.begin() + 0x400, f.begin() + 5 * 512, 'x');
  auto header = ParseBzImage(f, kName);
  ASSERT_TRUE(header);
  EXPECT_EQ(header->kernel_version, "");
}

}  // namespace
}  // namespace firmware
