// PVH and multiboot paths of LoadKernel, and the MP table.
#include <gtest/gtest.h>

#include "base/layout.h"
#include "firmware/boot.h"
#include "firmware/cpu_setup.h"
#include "firmware/e820.h"
#include "firmware/mptable.h"
#include "firmware/multiboot.h"
#include "firmware/pvh.h"
#include "tests/unit/firmware/test_images.h"

namespace firmware {
namespace {

using base::MiB;
using testing::ElfBuilder;
using testing::PutAt;
using testing::TempFile;

BootConfig Config(std::string path, std::string cmdline = "", std::vector<std::string> initrds = {},
                  BootProtocol protocol = BootProtocol::kAuto) {
  BootConfig config;
  config.kernel_path = std::move(path);
  config.cmdline = std::move(cmdline);
  config.initrd_paths = std::move(initrds);
  config.protocol = protocol;
  return config;
}

std::unique_ptr<base::GuestMemory> Memory(uint64_t size = 128 * base::MiB) {
  return std::move(*base::GuestMemory::Create(size));
}

std::string ReadString(const base::GuestMemory& memory, uint64_t address) {
  std::string out;
  for (;; ++address) {
    const uint8_t c = *memory.ReadObj<uint8_t>(address);
    if (c == 0) return out;
    out.push_back(static_cast<char>(c));
  }
}

std::vector<uint8_t> PvhElf(bool is64 = true) {
  ElfBuilder builder;
  builder.is64 = is64;
  builder.notes.push_back({"Xen", 18, {0x40, 0x00, 0x10, 0x00}});  // 0x100040
  return builder.Build();
}

TEST(Pvh, ElfWithBothEntriesBoots64BitByDefault) {
  TempFile kernel(PvhElf());
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path()));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kElf64);
  EXPECT_EQ(info->cpu.rip, 0x100000u);
}

TEST(Pvh, ForcedPvhEntersProtectedModeWithStartInfo) {
  TempFile kernel(PvhElf());
  TempFile initrd(std::vector<uint8_t>(0x1234, 7), "initrd.img");
  auto memory = Memory();
  auto info = LoadKernel(
      *memory, Config(kernel.path(), "console=hvc0 word=pvh", {initrd.path()}, BootProtocol::kPvh));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kPvh);
  EXPECT_EQ(info->cpu.rip, 0x100040u);
  EXPECT_EQ(info->cpu.rbx, base::kPvhStartInfo);
  EXPECT_EQ(info->cpu.cr0 & kCr0Pg, 0u);
  EXPECT_EQ(info->cpu.cs.db, 1);
  EXPECT_EQ(info->cpu.tr.limit, 0x67u);
  EXPECT_EQ(info->cpu.tr.type, 0xb);

  EXPECT_EQ(*memory->ReadObj<uint32_t>(base::kPvhStartInfo), kHvmStartMagic);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(base::kPvhStartInfo + 4), 1u);   // version
  EXPECT_EQ(*memory->ReadObj<uint32_t>(base::kPvhStartInfo + 12), 1u);  // nr_modules
  EXPECT_EQ(*memory->ReadObj<uint64_t>(base::kPvhStartInfo + 16), kPvhModlistAddress);
  const uint64_t cmdline = *memory->ReadObj<uint64_t>(base::kPvhStartInfo + 24);
  EXPECT_EQ(ReadString(*memory, cmdline), "console=hvc0 word=pvh");
  EXPECT_EQ(*memory->ReadObj<uint64_t>(base::kPvhStartInfo + 32), base::kAcpiTables);  // rsdp
  EXPECT_EQ(*memory->ReadObj<uint64_t>(base::kPvhStartInfo + 40), kPvhMemmapAddress);
  const auto map = BuildE820Map(128 * base::MiB);
  ASSERT_EQ(*memory->ReadObj<uint32_t>(base::kPvhStartInfo + 48), map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    const uint64_t at = kPvhMemmapAddress + i * 24;
    EXPECT_EQ(*memory->ReadObj<uint64_t>(at), map[i].addr);
    EXPECT_EQ(*memory->ReadObj<uint64_t>(at + 8), map[i].size);
    EXPECT_EQ(*memory->ReadObj<uint32_t>(at + 16), map[i].type);
  }
  const uint64_t module = *memory->ReadObj<uint64_t>(kPvhModlistAddress);
  EXPECT_EQ(module % 4096, 0u);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(kPvhModlistAddress + 8), 0x1234u);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(module), 7);
  EXPECT_EQ(info->initrd_start, module);
}

TEST(Pvh, Elf32WithPvhNoteBootsPvhByDefault) {
  TempFile kernel(PvhElf(/*is64=*/false));
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path()));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kPvh);
  EXPECT_EQ(info->cpu.rip, 0x100040u);
}

TEST(Pvh, ForcedPvhWithoutNoteIsBadImage) {
  TempFile kernel(ElfBuilder().Build());
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path(), "", {}, BootProtocol::kPvh));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("no PVH entry"), std::string::npos);
}

TEST(Pvh, EntryOutsideSegmentsIsBadImage) {
  ElfBuilder builder;
  builder.notes.push_back({"Xen", 18, {0x00, 0x00, 0x90, 0x00}});
  TempFile kernel(builder.Build());
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path(), "", {}, BootProtocol::kPvh));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("PVH entry 0x900000"), std::string::npos)
      << info.error().message();
}

// A multiboot image with address fields: header at file offset 0 loaded at
// 0x100000, code after it.
std::vector<uint8_t> KludgeImage(uint32_t flags = kMultibootAoutKludge | kMultibootMemoryInfo |
                                                  kMultibootPageAlignModules) {
  std::vector<uint8_t> image(0x1000, 0x90);
  PutAt<uint32_t>(image, 0, kMultibootHeaderMagic);
  PutAt<uint32_t>(image, 4, flags);
  PutAt<uint32_t>(image, 8, 0u - kMultibootHeaderMagic - flags);
  PutAt<uint32_t>(image, 12, 0x100000);  // header_addr
  PutAt<uint32_t>(image, 16, 0x100000);  // load_addr
  PutAt<uint32_t>(image, 20, 0x101000);  // load_end_addr
  PutAt<uint32_t>(image, 24, 0x103000);  // bss_end_addr
  PutAt<uint32_t>(image, 28, 0x100020);  // entry_addr
  return image;
}

TEST(Multiboot, KludgeImageBootsWithInfoModulesAndMmap) {
  TempFile kernel(KludgeImage(), "mb.bin");
  TempFile first(std::vector<uint8_t>(0x1800, 1), "first.img");
  TempFile second(std::vector<uint8_t>(0x10, 2), "second.img");
  auto memory = Memory();
  ASSERT_TRUE(memory->Fill(0x101000, 0xee, 0x2000));
  auto info = LoadKernel(*memory, Config(kernel.path(), "exit=5", {first.path(), second.path()}));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kMultiboot);
  EXPECT_EQ(info->cpu.rip, 0x100020u);
  EXPECT_EQ(info->cpu.rax, 0x2badb002u);
  EXPECT_EQ(info->cpu.rbx, kMultibootInfoAddress);
  EXPECT_EQ(info->cpu.cr0 & kCr0Pg, 0u);
  EXPECT_EQ(info->kernel_end, 0x103000u);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x100020), 0x90);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x102fff), 0);  // bss zeroed

  const uint64_t mbi = kMultibootInfoAddress;
  const uint32_t flags = *memory->ReadObj<uint32_t>(mbi);
  EXPECT_EQ(flags, kMbiMemory | kMbiCmdline | kMbiModules | kMbiMmap | kMbiLoaderName);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(mbi + 4), 639u);         // mem_lower
  EXPECT_EQ(*memory->ReadObj<uint32_t>(mbi + 8), 127u * 1024);  // mem_upper
  EXPECT_EQ(ReadString(*memory, *memory->ReadObj<uint32_t>(mbi + 16)), kernel.path() + " exit=5");
  EXPECT_EQ(*memory->ReadObj<uint32_t>(mbi + 20), 2u);  // mods_count
  const uint32_t mods = *memory->ReadObj<uint32_t>(mbi + 24);
  const uint32_t start0 = *memory->ReadObj<uint32_t>(mods);
  const uint32_t end0 = *memory->ReadObj<uint32_t>(mods + 4);
  const uint32_t start1 = *memory->ReadObj<uint32_t>(mods + 16);
  EXPECT_EQ(start0, 0x103000u);
  EXPECT_EQ(end0, 0x104800u);
  EXPECT_EQ(start1, 0x105000u);  // page aligned after module 0
  EXPECT_EQ(*memory->ReadObj<uint8_t>(start1), 2);
  EXPECT_EQ(ReadString(*memory, *memory->ReadObj<uint32_t>(mods + 8)), first.path());
  EXPECT_EQ(ReadString(*memory, *memory->ReadObj<uint32_t>(mods + 24)), second.path());
  // mmap: 24-byte entries whose size field is 20.
  const uint32_t mmap_length = *memory->ReadObj<uint32_t>(mbi + 44);
  const uint32_t mmap_addr = *memory->ReadObj<uint32_t>(mbi + 48);
  const auto map = BuildE820Map(128 * base::MiB);
  ASSERT_EQ(mmap_length, map.size() * 24);
  for (size_t i = 0; i < map.size(); ++i) {
    EXPECT_EQ(*memory->ReadObj<uint32_t>(mmap_addr + i * 24), 20u);
    EXPECT_EQ(*memory->ReadObj<uint64_t>(mmap_addr + i * 24 + 4), map[i].addr);
    EXPECT_EQ(*memory->ReadObj<uint64_t>(mmap_addr + i * 24 + 12), map[i].size);
    EXPECT_EQ(*memory->ReadObj<uint32_t>(mmap_addr + i * 24 + 20), map[i].type);
  }
  EXPECT_EQ(ReadString(*memory, *memory->ReadObj<uint32_t>(mbi + 64)), "vmm");
}

TEST(Multiboot, Elf32ImageLoadsByProgramHeaders) {
  ElfBuilder builder;
  builder.is64 = false;
  builder.entry = 0x100010;
  auto image = builder.Build();
  // Put the multiboot header (no address fields) inside the segment data.
  const uint32_t flags = kMultibootMemoryInfo;
  const uint64_t at = (image.size() - 0x1000 + 3) & ~uint64_t{3};
  PutAt<uint32_t>(image, at, kMultibootHeaderMagic);
  PutAt<uint32_t>(image, at + 4, flags);
  PutAt<uint32_t>(image, at + 8, 0u - kMultibootHeaderMagic - flags);
  TempFile kernel(image, "mb.elf");
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path()));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kMultiboot);
  EXPECT_EQ(info->cpu.rip, 0x100010u);
  EXPECT_EQ(info->cpu.rax, 0x2badb002u);
  EXPECT_EQ(ReadString(*memory, *memory->ReadObj<uint32_t>(kMultibootInfoAddress + 16)),
            kernel.path());
}

TEST(Multiboot, WrongChecksumIsBadImage) {
  auto image = KludgeImage();
  PutAt<uint32_t>(image, 8, 0x12345678);
  TempFile kernel(image, "mb.bin");
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path()));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("wrong checksum"), std::string::npos)
      << info.error().message();
}

TEST(Multiboot, UnsupportedRequirementIsBadImage) {
  TempFile kernel(KludgeImage(kMultibootAoutKludge | (1u << 5)), "mb.bin");
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path()));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("requires features 0x20"), std::string::npos)
      << info.error().message();
}

TEST(Multiboot, HeaderAfterEightKiBIsNotFound) {
  std::vector<uint8_t> image(0x2000, 0);
  auto tail = KludgeImage();
  image.insert(image.end(), tail.begin(), tail.end());
  TempFile kernel(image, "mb.bin");
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path(), "", {}, BootProtocol::kMultiboot));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("no multiboot header in the first 8 KiB"),
            std::string::npos);
}

TEST(Multiboot, BadAddressFieldsAreBadImage) {
  struct Case {
    uint64_t field;
    uint32_t value;
    const char* message;
  } cases[] = {
      {16, 0x100100, "load_addr 0x100100 is above header_addr"},
      {12, 0x200000, "reaches before the start of the file"},
      {20, 0x0ff000, "load_end_addr 0xff000 is below load_addr"},
      {20, 0x110000, "the file has 0x1000"},
      {24, 0x100800, "bss_end_addr 0x100800 is below"},
      {28, 0x200000, "entry_addr 0x200000 is outside the loaded image"},
  };
  for (const auto& c : cases) {
    auto image = KludgeImage();
    PutAt<uint32_t>(image, c.field, c.value);
    TempFile kernel(image, "mb.bin");
    auto memory = Memory();
    auto info = LoadKernel(*memory, Config(kernel.path()));
    ASSERT_FALSE(info) << c.message;
    EXPECT_EQ(info.error().exit_status(), 65);
    EXPECT_NE(info.error().message().find(c.message), std::string::npos) << info.error().message();
  }
}

// A kernel linked at 0x8000, over vmm's fixed boot structures: they move
// above it and its modules (docs/boot-protocols.md, "Kernels that load low").
TEST(Multiboot, KernelThatLoadsLowGetsItsBootStructuresMoved) {
  auto image = KludgeImage();
  PutAt<uint32_t>(image, 12, 0x8000);   // header_addr
  PutAt<uint32_t>(image, 16, 0x8000);   // load_addr
  PutAt<uint32_t>(image, 20, 0x9000);   // load_end_addr
  PutAt<uint32_t>(image, 24, 0x21000);  // bss_end_addr: over the command-line area
  PutAt<uint32_t>(image, 28, 0x8020);   // entry_addr
  TempFile kernel(image, "mb.bin");
  TempFile module(std::vector<uint8_t>(0x1800, 3), "module.img");
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path(), "low=1", {module.path()}));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->cpu.rip, 0x8020u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(0x8000), kMultibootHeaderMagic) << "the image is intact";
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x20ff0), 0) << "bss zeroed, no command line written";
  // The module at 1 MiB, then the info block, then the GDT and stack.
  const uint64_t mbi = info->cpu.rbx;
  EXPECT_EQ(info->initrd_start, 0x100000u);
  EXPECT_EQ(mbi, 0x102000u);
  EXPECT_NE(info->description.find("loaded low: boot structures at 0x102000"), std::string::npos)
      << info->description;
  EXPECT_EQ(ReadString(*memory, *memory->ReadObj<uint32_t>(mbi + 16)), kernel.path() + " low=1");
  const uint32_t mods = *memory->ReadObj<uint32_t>(mbi + 24);
  EXPECT_GT(mods, mbi);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(mods), 0x100000u);
  EXPECT_EQ(ReadString(*memory, *memory->ReadObj<uint32_t>(mods + 8)), module.path());
  EXPECT_GT(*memory->ReadObj<uint32_t>(mbi + 48), mbi);  // mmap_addr
  EXPECT_EQ(ReadString(*memory, *memory->ReadObj<uint32_t>(mbi + 64)), "vmm");
  EXPECT_EQ(info->cpu.gdt.base, mbi + kMultibootBlockSize);
  EXPECT_EQ(info->cpu.idt.base, info->cpu.gdt.base + kBootGdtEntries * 8);
  EXPECT_EQ(info->cpu.rsp, info->cpu.gdt.base + kRelocatedBootBlock - 0x10);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(info->cpu.gdt.base + kBootCodeSelector) >> 40 & 0xff, 0x9bu)
      << "the code descriptor";
  // Still refused: a kernel over the legacy area.
  PutAt<uint32_t>(image, 24, 0xa0000);
  TempFile legacy(image, "mb-legacy.bin");
  auto refused = LoadKernel(*Memory(), Config(legacy.path()));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("reserved legacy area"), std::string::npos)
      << refused.error().message();
}

TEST(Multiboot, ModuleLargerThanFreeMemoryIsConfigError) {
  TempFile kernel(KludgeImage(), "mb.bin");
  TempFile big(std::vector<uint8_t>(4 * base::MiB, 1), "big.img");
  auto memory = Memory(4 * base::MiB);
  auto info = LoadKernel(*memory, Config(kernel.path(), "", {big.path()}));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 78);
  EXPECT_NE(info.error().message().find("does not fit"), std::string::npos);
}

// MP spec 1.4: checksum over `length` bytes is zero.
uint8_t Sum(const base::GuestMemory& memory, uint64_t address, uint64_t length) {
  uint8_t sum = 0;
  for (uint64_t i = 0; i < length; ++i)
    sum = static_cast<uint8_t>(sum + *memory.ReadObj<uint8_t>(address + i));
  return sum;
}

TEST(MpTable, FloatingPointerAndTableHaveValidChecksumsAndEntries) {
  auto memory = Memory();
  ASSERT_TRUE(WriteMpTable(*memory, 4));
  EXPECT_EQ(*memory->ReadObj<uint32_t>(kMpTableAddress), 0x5f504d5fu);  // "_MP_"
  EXPECT_EQ(Sum(*memory, kMpTableAddress, 16), 0);
  const uint32_t table = *memory->ReadObj<uint32_t>(kMpTableAddress + 4);
  EXPECT_EQ(table, kMpTableAddress + 16);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(table), 0x504d4350u);  // "PCMP"
  const uint16_t length = *memory->ReadObj<uint16_t>(table + 4);
  EXPECT_EQ(length + 16u, MpTableSize(4));
  EXPECT_EQ(Sum(*memory, table, length), 0);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(table + 36), kLapicAddress);
  const uint16_t count = *memory->ReadObj<uint16_t>(table + 34);
  EXPECT_EQ(count, 4 + 1 + 1 + 16 + 2);
  // Walk the entries.
  uint64_t at = table + 44;
  int cpus = 0, buses = 0, ioapics = 0, ints = 0, lints = 0;
  for (int i = 0; i < count; ++i) {
    const uint8_t type = *memory->ReadObj<uint8_t>(at);
    switch (type) {
      case kMpProcessor:
        EXPECT_EQ(*memory->ReadObj<uint8_t>(at + 1), cpus);  // APIC ID
        EXPECT_EQ(*memory->ReadObj<uint8_t>(at + 3), cpus == 0 ? 3 : 1);
        ++cpus;
        at += 20;
        break;
      case kMpBus:
        ++buses;
        at += 8;
        break;
      case kMpIoapic:
        EXPECT_EQ(*memory->ReadObj<uint8_t>(at + 1), 4);  // ID after the CPUs
        EXPECT_EQ(*memory->ReadObj<uint32_t>(at + 4), kIoapicAddress);
        ++ioapics;
        at += 8;
        break;
      case kMpIoInterrupt:
        EXPECT_EQ(*memory->ReadObj<uint8_t>(at + 5), ints);  // source IRQ
        EXPECT_EQ(*memory->ReadObj<uint8_t>(at + 6), 4);     // IOAPIC ID
        EXPECT_EQ(*memory->ReadObj<uint8_t>(at + 7), ints);  // pin
        ++ints;
        at += 8;
        break;
      case kMpLocalInterrupt:
        ++lints;
        at += 8;
        break;
      default:
        FAIL() << "unknown MP entry type " << int{type};
    }
  }
  EXPECT_EQ(at, table + length);
  EXPECT_EQ(cpus, 4);
  EXPECT_EQ(buses, 1);
  EXPECT_EQ(ioapics, 1);
  EXPECT_EQ(ints, 16);
  EXPECT_EQ(lints, 2);
}

TEST(MpTable, CpuCountIsChecked) {
  auto memory = Memory();
  EXPECT_FALSE(WriteMpTable(*memory, 0));
  EXPECT_FALSE(WriteMpTable(*memory, kMaxMpCpus + 1));
  EXPECT_TRUE(WriteMpTable(*memory, kMaxMpCpus));
}

TEST(MpTable, LoadKernelWritesIt) {
  TempFile kernel(ElfBuilder().Build());
  auto memory = Memory();
  auto config = Config(kernel.path());
  config.cpus = 2;
  ASSERT_TRUE(LoadKernel(*memory, config));
  EXPECT_EQ(*memory->ReadObj<uint32_t>(kMpTableAddress), 0x5f504d5fu);
  config.cpus = 255;
  auto info = LoadKernel(*memory, config);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 78);
}

}  // namespace
}  // namespace firmware
