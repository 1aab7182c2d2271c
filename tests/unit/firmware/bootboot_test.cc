// The BOOTBOOT path of LoadKernel (docs/boot-protocols.md, "BOOTBOOT"): the
// structure, environment and framebuffer where level 1 or level 2 puts them,
// read back through vmm's page tables, and malformed kernels.
#include "firmware/bootboot.h"

#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>

#include "base/layout.h"
#include "firmware/boot.h"
#include "firmware/mptable.h"
#include "firmware/page_tables.h"
#include "tests/unit/firmware/test_images.h"

namespace firmware {
namespace {

using testing::ElfBuilder;
using testing::PutAt;
using testing::TempFile;
using testing::TestSegment;

constexpr uint64_t kCode = 0xffffffffffe02000;  // level 1: -2 MiB + 2 pages

std::vector<uint8_t> Level1Kernel() {
  ElfBuilder builder;
  builder.entry = kCode;
  builder.segments = {
      TestSegment{kCode, kCode, 0x3000, std::vector<uint8_t>(0x1000, 0x90), PF_R | PF_W | PF_X}};
  return builder.Build();
}

// Appends a .symtab and .strtab (and the section header table) naming
// `symbols` to an ELF64 built by ElfBuilder.
std::vector<uint8_t> WithSymbols(std::vector<uint8_t> elf,
                                 const std::vector<std::pair<std::string, uint64_t>>& symbols) {
  std::string strtab(1, '\0');
  std::vector<Elf64_Sym> syms(1);  // the null symbol
  for (const auto& [name, value] : symbols) {
    Elf64_Sym sym{};
    sym.st_name = static_cast<uint32_t>(strtab.size());
    sym.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT);
    sym.st_shndx = 1;  // any defined section
    sym.st_value = value;
    syms.push_back(sym);
    strtab += name + '\0';
  }
  const uint64_t symtab_at = elf.size();
  elf.resize(symtab_at + syms.size() * sizeof(Elf64_Sym));
  std::memcpy(elf.data() + symtab_at, syms.data(), syms.size() * sizeof(Elf64_Sym));
  const uint64_t strtab_at = elf.size();
  elf.insert(elf.end(), strtab.begin(), strtab.end());
  while (elf.size() % 8) elf.push_back(0);
  const uint64_t shdr_at = elf.size();
  Elf64_Shdr shdrs[3]{};
  shdrs[1].sh_type = SHT_SYMTAB;
  shdrs[1].sh_offset = symtab_at;
  shdrs[1].sh_size = syms.size() * sizeof(Elf64_Sym);
  shdrs[1].sh_link = 2;
  shdrs[1].sh_entsize = sizeof(Elf64_Sym);
  shdrs[2].sh_type = SHT_STRTAB;
  shdrs[2].sh_offset = strtab_at;
  shdrs[2].sh_size = strtab.size();
  elf.resize(shdr_at + sizeof(shdrs));
  std::memcpy(elf.data() + shdr_at, shdrs, sizeof(shdrs));
  Elf64_Ehdr ehdr;
  std::memcpy(&ehdr, elf.data(), sizeof(ehdr));
  ehdr.e_shoff = shdr_at;
  ehdr.e_shentsize = sizeof(Elf64_Shdr);
  ehdr.e_shnum = 3;
  std::memcpy(elf.data(), &ehdr, sizeof(ehdr));
  return elf;
}

std::unique_ptr<base::GuestMemory> Memory(uint64_t size = 128 * base::MiB) {
  return std::move(*base::GuestMemory::Create(size));
}

BootConfig Config(const std::string& path) {
  BootConfig config;
  config.kernel_path = path;
  return config;
}

uint64_t Phys(const base::GuestMemory& memory, const BootInfo& info, uint64_t virt) {
  auto t = TranslateAddress(memory, info.cpu.cr3, virt);
  EXPECT_TRUE(t && *t) << std::hex << "virtual " << virt << " is not mapped";
  return t && *t ? (*t)->phys : 0;
}

TEST(Bootboot, Level1KernelGetsTheStaticLayout) {
  TempFile kernel(Level1Kernel(), "core.elf");
  TempFile initrd(std::vector<uint8_t>(0x2345, 0x77), "initrd.bin");
  auto memory = Memory();
  BootConfig config = Config(kernel.path());
  config.cmdline = "screen=800x600  kernel=sys/core anything=1";
  config.initrd_paths = {initrd.path()};
  config.cpus = 3;
  auto info = LoadKernel(*memory, config);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kBootboot);
  EXPECT_NE(info->description.find("BOOTBOOT level 1 (static addresses)"), std::string::npos)
      << info->description;

  const uint64_t header = Phys(*memory, *info, kBootbootStruct);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(header), 0x544f4f42u) << "BOOT";
  const uint32_t size = *memory->ReadObj<uint32_t>(header + 4);
  EXPECT_EQ((size - 128) % 16, 0u);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(header + 8), kBootbootProtocolStatic);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(header + 9), kBootbootFbArgb);
  EXPECT_EQ(*memory->ReadObj<uint16_t>(header + 10), 3u);  // numcores
  EXPECT_EQ(*memory->ReadObj<uint16_t>(header + 12), 0u);  // bspid
  EXPECT_EQ(*memory->ReadObj<uint8_t>(header + 16), 0x20) << "BCD century";
  const uint64_t initrd_ptr = *memory->ReadObj<uint64_t>(header + 24);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(header + 32), 0x2345u);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(initrd_ptr + 0x2344), 0x77);
  const uint64_t fb_ptr = *memory->ReadObj<uint64_t>(header + 40);
  EXPECT_EQ(Phys(*memory, *info, kBootbootFramebuffer), fb_ptr);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(header + 48), 800u * 600 * 4);  // fb_size
  EXPECT_EQ(*memory->ReadObj<uint32_t>(header + 52), 800u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(header + 56), 600u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(header + 60), 3200u);
  // acpi_ptr is the XSDT the RSDP names; mp_ptr the MP floating pointer.
  const uint64_t xsdt = *memory->ReadObj<uint64_t>(header + 64);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(base::kAcpiTables + 24), xsdt);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(xsdt), 0x54445358u) << "XSDT";
  EXPECT_EQ(*memory->ReadObj<uint64_t>(header + 88), uint64_t{kMpTableAddress});

  // The memory map: sorted, sizes with their type in bits 0-3, free RAM
  // never overlapping what vmm loaded.
  uint64_t previous_end = 0, free_bytes = 0;
  bool kernel_used = false, acpi = false;
  for (uint64_t at = header + 128; at < header + size; at += 16) {
    const uint64_t ptr = *memory->ReadObj<uint64_t>(at);
    const uint64_t raw = *memory->ReadObj<uint64_t>(at + 8);
    const uint64_t length = raw & ~uint64_t{15};
    const auto type = static_cast<BootbootMemoryType>(raw & 15);
    EXPECT_GE(ptr, previous_end);
    previous_end = ptr + length;
    if (type == BootbootMemoryType::kFree) {
      free_bytes += length;
      EXPECT_TRUE(ptr + length <= info->kernel_start || ptr >= info->initrd_end);
    }
    if (type == BootbootMemoryType::kUsed && ptr <= info->kernel_start &&
        info->initrd_end <= ptr + length) {
      kernel_used = true;
    }
    if (type == BootbootMemoryType::kAcpi && ptr == base::kAcpiTables) acpi = true;
  }
  EXPECT_TRUE(kernel_used);
  EXPECT_TRUE(acpi);
  EXPECT_GT(free_bytes, 100 * base::MiB);

  // The environment: a word per line.
  const uint64_t env = Phys(*memory, *info, kBootbootEnvironment);
  auto env_bytes = memory->Span(env, 64);
  ASSERT_TRUE(env_bytes);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(env_bytes->data())),
            "screen=800x600\nkernel=sys/core\nanything=1\n");

  // The code at its address, RAM and the MMIO hole identity-mapped, the
  // stacks at the top.
  EXPECT_EQ(Phys(*memory, *info, kCode), info->kernel_start);
  EXPECT_EQ(Phys(*memory, *info, 0x100000), 0x100000u);
  EXPECT_EQ(Phys(*memory, *info, 0xfee00000), 0xfee00000u);
  EXPECT_EQ(info->cpu.rsp, 0u) << "core 0's stack starts at 0";
  EXPECT_NE(Phys(*memory, *info, 0xfffffffffffffff8), 0u);
  ASSERT_EQ(info->aps.size(), 2u);
  EXPECT_EQ(info->aps[0].rsp, 0 - uint64_t{1024});
  EXPECT_EQ(info->aps[1].rsp, 0 - uint64_t{2048});
  EXPECT_EQ(info->aps[1].rip, kCode);
  EXPECT_NE(Phys(*memory, *info, 0 - uint64_t{2048} - 8), 0u);
  EXPECT_EQ(info->cpu.cs.l, 1);
  EXPECT_NE(info->cpu.cr4 & (1u << 9), 0u) << "SSE enabled (OSFXSR)";
}

TEST(Bootboot, Level2KernelMapsWhereItsSymbolsSay) {
  constexpr uint64_t kText = 0xffffffff80100000;
  ElfBuilder builder;
  builder.entry = kText;
  builder.segments = {
      TestSegment{kText, kText, 0x1000, std::vector<uint8_t>(0x1000, 0x90), PF_R | PF_X}};
  const auto elf = WithSymbols(builder.Build(), {{"bootboot", 0xffffffff80000000},
                                                 {"environment", 0xffffffff80001000},
                                                 {"fb", 0xffffffff90000000}});
  TempFile kernel(elf, "core2.elf");
  auto memory = Memory();
  BootConfig config = Config(kernel.path());
  config.cmdline = "x=y";
  auto info = LoadKernel(*memory, config);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_NE(info->description.find("BOOTBOOT level 2 (symbols)"), std::string::npos);
  const uint64_t header = Phys(*memory, *info, 0xffffffff80000000);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(header), 0x544f4f42u) << "BOOT";
  EXPECT_EQ(*memory->ReadObj<uint8_t>(header + 8), kBootbootProtocolDynamic);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(header + 40), Phys(*memory, *info, 0xffffffff90000000));
  EXPECT_EQ(*memory->ReadObj<char>(Phys(*memory, *info, 0xffffffff80001000)), 'x');
  EXPECT_EQ(*memory->ReadObj<uint64_t>(header + 24), 0u) << "no initrd";
  EXPECT_TRUE(info->aps.empty());

  // --acpi off: no acpi_ptr, no ACPI entry.
  auto no_acpi = Memory();
  config.acpi = false;
  info = LoadKernel(*no_acpi, config);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(*no_acpi->ReadObj<uint64_t>(Phys(*no_acpi, *info, 0xffffffff80000000) + 64), 0u);
}

// With vmm's framebuffer (a BOOTBOOT kernel always gets one unless it is
// off), fb_ptr is its address and the `fb` mapping points at it.
TEST(Bootboot, UsesVmmsFramebufferWhenThereIsOne) {
  TempFile kernel(Level1Kernel(), "core.elf");
  auto memory = Memory();
  BootConfig config = Config(kernel.path());
  config.framebuffer_on_request = MakeFramebuffer(1024, 768);
  auto info = LoadKernel(*memory, config);
  ASSERT_TRUE(info) << info.error().message();
  ASSERT_TRUE(info->framebuffer);
  const uint64_t header = Phys(*memory, *info, kBootbootStruct);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(header + 40), base::kFramebufferBase);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(header + 52), 1024u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(header + 56), 768u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(header + 60), 4096u);
  EXPECT_EQ(Phys(*memory, *info, kBootbootFramebuffer + 0x2000), base::kFramebufferBase + 0x2000);
  EXPECT_EQ(info->description.find("headless"), std::string::npos) << info->description;
}

TEST(Bootboot, BadKernelsAreRefusedNamingTheProblem) {
  {
    ElfBuilder builder;  // a symbol in the lower half
    builder.entry = kCode;
    builder.segments = {TestSegment{kCode, kCode, 0x1000, {}, PF_R | PF_X}};
    TempFile kernel(WithSymbols(builder.Build(), {{"bootboot", 0x200000}}), "low.elf");
    auto info = LoadKernel(*Memory(), Config(kernel.path()));
    ASSERT_FALSE(info);
    EXPECT_EQ(info.error().kind(), base::ErrorKind::kBadImage);
    EXPECT_NE(info.error().message().find("symbol 'bootboot' is at 0x200000"), std::string::npos)
        << info.error().message();
  }
  {
    ElfBuilder builder;  // the framebuffer over the code
    builder.entry = kCode;
    builder.segments = {TestSegment{kCode, kCode, 0x1000, {}, PF_R | PF_X}};
    TempFile kernel(
        WithSymbols(builder.Build(), {{"bootboot", kBootbootStruct}, {"fb", kCode - 0x1000}}),
        "overlap.elf");
    auto info = LoadKernel(*Memory(), Config(kernel.path()));
    ASSERT_FALSE(info);
    EXPECT_NE(info.error().message().find("overlap"), std::string::npos) << info.error().message();
  }
  {
    TempFile kernel(Level1Kernel(), "core.elf");
    BootConfig config = Config(kernel.path());
    config.cmdline = std::string(5000, 'x');
    auto info = LoadKernel(*Memory(), config);
    ASSERT_FALSE(info);
    EXPECT_EQ(info.error().kind(), base::ErrorKind::kConfig);
    EXPECT_NE(info.error().message().find("one page"), std::string::npos);
    config.cmdline.clear();
    config.initrd_paths = {kernel.path(), kernel.path()};
    info = LoadKernel(*Memory(), config);
    ASSERT_FALSE(info);
    EXPECT_EQ(info.error().kind(), base::ErrorKind::kConfig);
  }
  {
    TempFile plain(ElfBuilder().Build(), "plain.elf");
    BootConfig config = Config(plain.path());
    config.protocol = BootProtocol::kBootboot;
    auto info = LoadKernel(*Memory(), config);
    ASSERT_FALSE(info);
    EXPECT_NE(info.error().message().find("not a BOOTBOOT kernel"), std::string::npos);
  }
}

}  // namespace
}  // namespace firmware
