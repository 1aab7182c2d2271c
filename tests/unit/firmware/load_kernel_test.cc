// LoadKernel end to end on files: protocol choice, registers, zero page.
#include <gtest/gtest.h>

#include "base/layout.h"
#include "firmware/boot.h"
#include "firmware/zero_page.h"
#include "tests/unit/firmware/test_images.h"

namespace firmware {
namespace {

using base::MiB;
using testing::ElfBuilder;
using testing::TempFile;

BootConfig Config(std::string path, std::string cmdline = "") {
  BootConfig config;
  config.kernel_path = std::move(path);
  config.cmdline = std::move(cmdline);
  return config;
}

std::unique_ptr<base::GuestMemory> Memory(uint64_t size = 128 * base::MiB) {
  return std::move(*base::GuestMemory::Create(size));
}

TEST(LoadKernel, Elf64BootsInLongModeWithZeroPage) {
  TempFile file(ElfBuilder().Build());
  auto memory = Memory();
  BootConfig config = Config(file.path(), "console=ttyS0 exit=7");
  auto info = LoadKernel(*memory, config);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kElf64);
  EXPECT_EQ(info->cpu.rip, 0x100000u);
  EXPECT_EQ(info->cpu.rsi, base::kZeroPage);
  EXPECT_EQ(info->cpu.rsp, base::kBootStackTop);
  EXPECT_EQ(info->cpu.cs.l, 1);
  EXPECT_EQ(info->cpu.efer & 0x500, 0x500u);
  EXPECT_EQ(info->kernel_start, 0x100000u);
  EXPECT_EQ(info->kernel_end, 0x102000u);
  EXPECT_EQ(info->description, "ELF64 entry 0x100000, 1 segment; ACPI RSDP at 0xe0000");
  EXPECT_EQ(*memory->ReadObj<uint32_t>(base::kZeroPage + boot_params::kCmdLinePtr), base::kCmdline);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(base::kZeroPage + boot_params::kCmdlineSize), 20u);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(base::kZeroPage + boot_params::kE820Entries), 3);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(base::kCmdline + 20), 0);
}

// The zero page's acpi_rsdp_addr (boot protocol 2.14) points at the tables,
// which describe the configured CPUs and virtio devices; --acpi off writes
// neither.
TEST(LoadKernel, AcpiTablesAreWrittenAndHandedOverUnlessOff) {
  TempFile file(ElfBuilder().Build());
  auto memory = Memory();
  BootConfig config = Config(file.path());
  config.cpus = 3;
  config.virtio_mmio = {{0xd0000000, 0x1000, 5}};
  auto info = LoadKernel(*memory, config);
  ASSERT_TRUE(info) << info.error().message();
  ASSERT_EQ(info->acpi_rsdp, base::kAcpiTables);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(base::kZeroPage + boot_params::kAcpiRsdpAddr),
            base::kAcpiTables);
  // What was written is what BuildAcpiTables makes of this machine.
  const auto expected = BuildAcpiTables(AcpiMachine{3, config.virtio_mmio});
  ASSERT_TRUE(expected);
  for (const auto& table : expected->tables) {
    std::vector<uint8_t> bytes(table.bytes.size());
    ASSERT_TRUE(memory->Read(table.address, std::span(bytes)));
    EXPECT_EQ(bytes, table.bytes) << table.signature;
  }

  auto clean = Memory();
  config.acpi = false;
  info = LoadKernel(*clean, config);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->acpi_rsdp, 0u);
  EXPECT_EQ(*clean->ReadObj<uint64_t>(base::kZeroPage + boot_params::kAcpiRsdpAddr), 0u);
  EXPECT_EQ(*clean->ReadObj<uint64_t>(base::kAcpiTables), 0u);
  EXPECT_EQ(info->description, "ELF64 entry 0x100000, 1 segment");

  // A virtio device the tables cannot describe is the configuration's error.
  config.acpi = true;
  config.virtio_mmio = {{0xd0000000, 0x1000, 4}};  // COM1's IRQ
  EXPECT_FALSE(LoadKernel(*Memory(), config));
}

TEST(LoadKernel, MissingFileIsNoInputNamingThePath) {
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config("/nonexistent/kernel.elf"));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 66);
  EXPECT_NE(info.error().ToString().find("/nonexistent/kernel.elf"), std::string::npos);
  EXPECT_NE(info.error().ToString().find("No such file"), std::string::npos);
}

TEST(LoadKernel, DirectoryIsNoInput) {
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config("/tmp"));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 66);
}

TEST(LoadKernel, EmptyFileIsBadImage) {
  TempFile file({});
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(file.path()));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("empty"), std::string::npos);
}

TEST(LoadKernel, TruncatedElfIsBadImageNamingTheFile) {
  auto bytes = ElfBuilder().Build();
  bytes.resize(100);
  TempFile file(bytes);
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(file.path()));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("kernel image " + file.path() + ":"), std::string::npos)
      << info.error().message();
}

TEST(LoadKernel, GarbageIsBadImage) {
  TempFile file(std::vector<uint8_t>(8192, 0x5a));
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(file.path()));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("not a bootable image"), std::string::npos)
      << info.error().message();
}

TEST(LoadKernel, TooLongCommandLineIsConfigError) {
  TempFile file(ElfBuilder().Build());
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(file.path(), std::string(base::kCmdlineMax, 'x')));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 78);
}

TEST(LoadKernel, MemoryTooSmallForBootStructuresIsConfigError) {
  TempFile file(ElfBuilder().Build());
  auto memory = Memory(64 * base::KiB);
  auto info = LoadKernel(*memory, Config(file.path()));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 78);
}

TEST(LoadKernel, ProtocolNamesAreStable) {
  EXPECT_STREQ(BootProtocolName(BootProtocol::kAuto), "auto");
  EXPECT_STREQ(BootProtocolName(BootProtocol::kElf64), "elf64");
  EXPECT_STREQ(BootProtocolName(BootProtocol::kPvh), "pvh");
  EXPECT_STREQ(BootProtocolName(BootProtocol::kBzImage), "bzimage");
  EXPECT_STREQ(BootProtocolName(BootProtocol::kMultiboot), "multiboot");
}

TEST(LoadKernel, ParseBootProtocolRoundTripsAndRejectsUnknown) {
  for (auto protocol : {BootProtocol::kAuto, BootProtocol::kElf64, BootProtocol::kPvh,
                        BootProtocol::kBzImage, BootProtocol::kMultiboot}) {
    EXPECT_EQ(*ParseBootProtocol(BootProtocolName(protocol)), protocol);
  }
  auto bad = ParseBootProtocol("uefi");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().exit_status(), 64);
  EXPECT_NE(bad.error().message().find("'uefi'"), std::string::npos);
}

}  // namespace
}  // namespace firmware
