// The multiboot2 path of LoadKernel: header tags, boot information, machine
// state, and malformed headers (docs/boot-protocols.md, "Multiboot2").
#include "firmware/multiboot2.h"

#include <gtest/gtest.h>

#include <map>

#include "base/layout.h"
#include "firmware/boot.h"
#include "firmware/cpu_setup.h"
#include "firmware/e820.h"
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

// One header tag: type, flags, payload (u32 words).
struct HeaderTag {
  uint16_t type;
  uint16_t flags = 0;
  std::vector<uint32_t> words;
};

// A multiboot2 header with `tags` (an end tag is appended) at `at` in `image`.
void PutHeader(std::vector<uint8_t>& image, uint64_t at, const std::vector<HeaderTag>& tags,
               uint32_t architecture = 0) {
  uint64_t p = at + 16;
  auto put_tag = [&](const HeaderTag& tag) {
    const uint32_t size = static_cast<uint32_t>(8 + 4 * tag.words.size());
    PutAt<uint16_t>(image, p, tag.type);
    PutAt<uint16_t>(image, p + 2, tag.flags);
    PutAt<uint32_t>(image, p + 4, size);
    for (size_t i = 0; i < tag.words.size(); ++i)
      PutAt<uint32_t>(image, p + 8 + 4 * i, tag.words[i]);
    p += (size + 7) & ~7u;
  };
  for (const auto& tag : tags) put_tag(tag);
  put_tag({kMb2HeaderTagEnd, 0, {}});
  const uint32_t length = static_cast<uint32_t>(p - at);
  PutAt<uint32_t>(image, at, kMultiboot2HeaderMagic);
  PutAt<uint32_t>(image, at + 4, architecture);
  PutAt<uint32_t>(image, at + 8, length);
  PutAt<uint32_t>(image, at + 12, 0u - kMultiboot2HeaderMagic - architecture - length);
}

// Flat image at 0x100000: header at offset 0 with address and entry tags.
std::vector<uint8_t> FlatImage(std::vector<HeaderTag> extra = {}) {
  std::vector<uint8_t> image(0x1000, 0x90);
  std::vector<HeaderTag> tags = {
      {kMb2HeaderTagAddress, 0, {0x100000, 0x100000, 0x101000, 0x103000}},
      {kMb2HeaderTagEntry, 0, {0x100100}},
  };
  tags.insert(tags.end(), extra.begin(), extra.end());
  PutHeader(image, 0, tags);
  return image;
}

// The info's tags by type: type -> offsets of each tag of that type.
std::multimap<uint32_t, uint64_t> InfoTags(const base::GuestMemory& memory, uint64_t mbi) {
  std::multimap<uint32_t, uint64_t> tags;
  const uint32_t total = *memory.ReadObj<uint32_t>(mbi);
  uint64_t at = mbi + 8;
  while (at < mbi + total) {
    const uint32_t type = *memory.ReadObj<uint32_t>(at);
    const uint32_t size = *memory.ReadObj<uint32_t>(at + 4);
    EXPECT_EQ(at % 8, 0u);
    tags.emplace(type, at);
    if (type == kMb2TagEnd) {
      EXPECT_EQ(size, 8u);
      EXPECT_EQ(at + 8, mbi + total);
      break;
    }
    at += (size + 7) & ~uint64_t{7};
  }
  return tags;
}

TEST(Multiboot2, FlatImageBootsWithEveryInfoTag) {
  TempFile kernel(FlatImage({{kMb2HeaderTagModuleAlign, 0, {}},
                             {kMb2HeaderTagInfoRequest, 0, {1, 2, 3, 4, 6, 21}}}),
                  "mb2.bin");
  TempFile first(std::vector<uint8_t>(0x1800, 1), "first.img");
  TempFile second(std::vector<uint8_t>(0x10, 2), "second.img");
  auto memory = Memory();
  auto info =
      LoadKernel(*memory, Config(kernel.path(), "word=hello", {first.path(), second.path()}));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kMultiboot2);
  EXPECT_EQ(info->cpu.rip, 0x100100u);
  EXPECT_EQ(info->cpu.rax, 0x36d76289u);
  EXPECT_EQ(info->cpu.cr0 & kCr0Pg, 0u);
  EXPECT_EQ(info->cpu.cr0 & kCr0Pe, kCr0Pe);
  EXPECT_EQ(info->cpu.cs.db, 1);
  EXPECT_EQ(info->cpu.cs.limit, 0xffffffffu);
  EXPECT_EQ(info->cpu.ds.limit, 0xffffffffu);
  EXPECT_EQ(info->cpu.ss.base, 0u);
  EXPECT_EQ(info->cpu.rflags & (1u << 9), 0u);        // IF clear
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x102fff), 0);  // bss zeroed

  // Modules above the kernel, the info above the modules, 8-byte aligned.
  const uint64_t mbi = info->cpu.rbx;
  EXPECT_EQ(info->boot_params, mbi);
  EXPECT_EQ(mbi % 8, 0u);
  EXPECT_GE(mbi, 0x105010u);
  const auto tags = InfoTags(*memory, mbi);
  ASSERT_EQ(tags.count(kMb2TagCmdline), 1u);
  EXPECT_EQ(ReadString(*memory, tags.find(kMb2TagCmdline)->second + 8),
            kernel.path() + " word=hello");
  ASSERT_EQ(tags.count(kMb2TagLoaderName), 1u);
  EXPECT_EQ(ReadString(*memory, tags.find(kMb2TagLoaderName)->second + 8), "vmm");
  ASSERT_EQ(tags.count(kMb2TagModule), 2u);
  auto module = tags.equal_range(kMb2TagModule).first;
  EXPECT_EQ(*memory->ReadObj<uint32_t>(module->second + 8), 0x103000u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(module->second + 12), 0x104800u);
  EXPECT_EQ(ReadString(*memory, module->second + 16), first.path());
  ++module;
  EXPECT_EQ(*memory->ReadObj<uint32_t>(module->second + 8), 0x105000u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(module->second + 12), 0x105010u);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x105000), 2);
  EXPECT_EQ(ReadString(*memory, module->second + 16), second.path());
  ASSERT_EQ(tags.count(kMb2TagBasicMeminfo), 1u);
  const uint64_t meminfo = tags.find(kMb2TagBasicMeminfo)->second;
  EXPECT_EQ(*memory->ReadObj<uint32_t>(meminfo + 4), 16u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(meminfo + 8), 639u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(meminfo + 12), 127u * 1024);
  ASSERT_EQ(tags.count(kMb2TagMmap), 1u);
  const uint64_t mmap = tags.find(kMb2TagMmap)->second;
  const auto map = BuildE820Map(128 * MiB);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(mmap + 4), 16 + 24 * map.size());
  EXPECT_EQ(*memory->ReadObj<uint32_t>(mmap + 8), 24u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(mmap + 12), 0u);
  for (size_t i = 0; i < map.size(); ++i) {
    EXPECT_EQ(*memory->ReadObj<uint64_t>(mmap + 16 + 24 * i), map[i].addr);
    EXPECT_EQ(*memory->ReadObj<uint64_t>(mmap + 24 + 24 * i), map[i].size);
    EXPECT_EQ(*memory->ReadObj<uint32_t>(mmap + 32 + 24 * i), map[i].type);
  }
  ASSERT_EQ(tags.count(kMb2TagLoadBaseAddr), 1u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(tags.find(kMb2TagLoadBaseAddr)->second + 8), 0x100000u);
  EXPECT_EQ(tags.count(kMb2TagElfSections), 0u);  // not ELF
  // ACPI (on by default): copies of the RSDP at base::kAcpiTables.
  ASSERT_EQ(info->acpi_rsdp, base::kAcpiTables);
  std::vector<uint8_t> rsdp(kAcpiRsdpBytes);
  ASSERT_TRUE(memory->Read(info->acpi_rsdp, std::span(rsdp)));
  EXPECT_EQ(std::string(rsdp.begin(), rsdp.begin() + 8), "RSD PTR ");
  ASSERT_EQ(tags.count(kMb2TagAcpiOld), 1u);
  ASSERT_EQ(tags.count(kMb2TagAcpiNew), 1u);
  const uint64_t acpi_old = tags.find(kMb2TagAcpiOld)->second;
  const uint64_t acpi_new = tags.find(kMb2TagAcpiNew)->second;
  EXPECT_EQ(*memory->ReadObj<uint32_t>(acpi_old + 4), 8u + 20);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(acpi_new + 4), 8u + 36);
  uint8_t sum_old = 0, sum_new = 0;
  for (size_t i = 0; i < 36; ++i) {
    const uint8_t copied = *memory->ReadObj<uint8_t>(acpi_new + 8 + i);
    EXPECT_EQ(copied, rsdp[i]) << "RSDP byte " << i;
    sum_new = static_cast<uint8_t>(sum_new + copied);
    if (i < 20) {
      EXPECT_EQ(*memory->ReadObj<uint8_t>(acpi_old + 8 + i), rsdp[i]) << "RSDP byte " << i;
      sum_old = static_cast<uint8_t>(sum_old + rsdp[i]);
    }
  }
  EXPECT_EQ(sum_old, 0) << "ACPI 1.0 checksum";
  EXPECT_EQ(sum_new, 0) << "extended checksum";
  EXPECT_EQ(tags.count(kMb2TagFramebuffer), 0u);
  EXPECT_EQ(tags.count(kMb2TagEnd), 1u);
}

TEST(Multiboot2, AcpiOffMeansNoAcpiTagsAndRequiredOnesAreRefused) {
  TempFile plain(FlatImage(), "mb2.bin");
  auto memory = Memory();
  BootConfig config = Config(plain.path());
  config.acpi = false;
  auto info = LoadKernel(*memory, config);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->acpi_rsdp, 0u);
  const auto tags = InfoTags(*memory, info->cpu.rbx);
  EXPECT_EQ(tags.count(kMb2TagAcpiOld), 0u);
  EXPECT_EQ(tags.count(kMb2TagAcpiNew), 0u);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(base::kAcpiTables), 0u) << "no tables written";

  for (uint32_t tag : {kMb2TagAcpiOld, kMb2TagAcpiNew}) {
    TempFile wants(FlatImage({{kMb2HeaderTagInfoRequest, 0, {tag}}}), "mb2-acpi.bin");
    config.kernel_path = wants.path();
    auto refused = LoadKernel(*Memory(), config);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().kind(), base::ErrorKind::kConfig);
    EXPECT_NE(refused.error().message().find(fmt::format("(tag {})", tag)), std::string::npos)
        << refused.error().message();
    config.acpi = true;
    EXPECT_TRUE(LoadKernel(*Memory(), config)) << "served with ACPI on";
    config.acpi = false;
  }
}

TEST(Multiboot2, ElfImageGetsSectionHeadersAndWinsOverElf64) {
  ElfBuilder builder;  // ELF64: auto would enter it in long mode without the header
  builder.entry = 0x100010;
  auto image = builder.Build();
  const uint64_t at = (image.size() - 0x1000 + 7) & ~uint64_t{7};
  PutHeader(image, at, {{kMb2HeaderTagInfoRequest, 0, {9}}});
  // A section header table of two entries after the data.
  const uint64_t shoff = image.size();
  std::vector<uint8_t> sections(2 * sizeof(Elf64_Shdr), 0);
  PutAt<uint32_t>(sections, sizeof(Elf64_Shdr) + 4, SHT_PROGBITS);
  image.insert(image.end(), sections.begin(), sections.end());
  PutAt<uint64_t>(image, 0x28, shoff);
  PutAt<uint16_t>(image, 0x3a, sizeof(Elf64_Shdr));
  PutAt<uint16_t>(image, 0x3c, 2);
  PutAt<uint16_t>(image, 0x3e, 1);
  TempFile kernel(image, "mb2.elf");
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path()));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kMultiboot2);
  EXPECT_EQ(info->cpu.rip, 0x100010u);
  EXPECT_EQ(info->cpu.efer, 0u);
  const auto tags = InfoTags(*memory, info->cpu.rbx);
  ASSERT_EQ(tags.count(kMb2TagElfSections), 1u);
  const uint64_t elf = tags.find(kMb2TagElfSections)->second;
  EXPECT_EQ(*memory->ReadObj<uint32_t>(elf + 4), 20 + 2 * sizeof(Elf64_Shdr));
  EXPECT_EQ(*memory->ReadObj<uint32_t>(elf + 8), 2u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(elf + 12), sizeof(Elf64_Shdr));
  EXPECT_EQ(*memory->ReadObj<uint32_t>(elf + 16), 1u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(elf + 20 + sizeof(Elf64_Shdr) + 4), SHT_PROGBITS);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(tags.find(kMb2TagLoadBaseAddr)->second + 8), 0x100000u);
}

TEST(Multiboot2, PreferredOverMultibootV1AndForcible) {
  auto image = FlatImage();
  // A multiboot v1 header too (address fields), 4-byte aligned after it.
  const uint32_t flags = kMultibootAoutKludge;
  PutAt<uint32_t>(image, 0x200, kMultibootHeaderMagic);
  PutAt<uint32_t>(image, 0x204, flags);
  PutAt<uint32_t>(image, 0x208, 0u - kMultibootHeaderMagic - flags);
  PutAt<uint32_t>(image, 0x20c, 0x100200);
  PutAt<uint32_t>(image, 0x210, 0x100000);
  PutAt<uint32_t>(image, 0x214, 0x101000);
  PutAt<uint32_t>(image, 0x218, 0x103000);
  PutAt<uint32_t>(image, 0x21c, 0x100300);
  TempFile kernel(image, "both.bin");
  for (BootProtocol protocol : {BootProtocol::kAuto, BootProtocol::kMultiboot2}) {
    auto memory = Memory();
    auto info = LoadKernel(*memory, Config(kernel.path(), "", {}, protocol));
    ASSERT_TRUE(info) << info.error().message();
    EXPECT_EQ(info->protocol, BootProtocol::kMultiboot2);
    EXPECT_EQ(info->cpu.rip, 0x100100u);
  }
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path(), "", {}, BootProtocol::kMultiboot));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kMultiboot);
  EXPECT_EQ(info->cpu.rip, 0x100300u);
}

TEST(Multiboot2, OptionalTagsAreIgnored) {
  TempFile kernel(FlatImage({{kMb2HeaderTagFramebuffer, kMb2HeaderTagOptional, {1024, 768, 32}},
                             {kMb2HeaderTagInfoRequest, kMb2HeaderTagOptional, {8, 14}},
                             {kMb2HeaderTagConsoleFlags, 0, {2}},
                             {kMb2HeaderTagRelocatable, 0, {0x100000, 0x1000000, 0x1000, 0}},
                             {77, kMb2HeaderTagOptional, {}}}),
                  "mb2.bin");
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path()));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->cpu.rip, 0x100100u);  // relocatable: loaded at the preferred address
}

TEST(Multiboot2, MalformedHeadersAreBadImage) {
  struct Case {
    const char* what;
    std::vector<uint8_t> image;
    const char* message;
  };
  std::vector<Case> cases;
  {
    auto image = FlatImage();
    PutAt<uint32_t>(image, 12, 0x12345678);
    cases.push_back({"checksum", image, "checksum 0x12345678 is wrong"});
  }
  {
    std::vector<uint8_t> image(0x1000, 0x90);
    PutHeader(image, 0, {}, 4);
    cases.push_back({"architecture", image, "architecture 4 is not supported"});
  }
  {
    auto image = FlatImage();
    const uint32_t length = 0x10000;
    PutAt<uint32_t>(image, 8, length);
    PutAt<uint32_t>(image, 12, 0u - kMultiboot2HeaderMagic - length);
    cases.push_back({"header_length", image, "header_length 0x10000 is out of range"});
  }
  cases.push_back(
      {"info request", FlatImage({{kMb2HeaderTagInfoRequest, 0, {1, 7}}}), "requires info tag 7"});
  cases.push_back(
      {"apm request", FlatImage({{kMb2HeaderTagInfoRequest, 0, {10}}}), "requires info tag 10"});
  cases.push_back({"framebuffer", FlatImage({{kMb2HeaderTagFramebuffer, 0, {640, 480, 32}}}),
                   "framebuffer tag is required (flags 0x0) but the framebuffer is off"});
  cases.push_back({"console", FlatImage({{kMb2HeaderTagConsoleFlags, 0, {3}}}),
                   "console_flags 0x3 require a console"});
  cases.push_back({"unknown", FlatImage({{77, 0, {}}}), "tag 77 at 0x38 is required"});
  cases.push_back({"efi", FlatImage({{kMb2HeaderTagEfiBootServices, 0, {}}}), "without EFI"});
  cases.push_back(
      {"tag size", FlatImage({{kMb2HeaderTagEntry, 0, {1, 2}}}), "size 16 (expected 12)"});
  {
    auto image = FlatImage();
    PutAt<uint32_t>(image, 16 + 24 + 4, 0x4000);  // the entry tag's size
    cases.push_back({"tag past header", image, "size 16384 is out of range"});
  }
  {
    std::vector<uint8_t> image(0x1000, 0x90);
    PutHeader(image, 0, {{kMb2HeaderTagAddress, 0, {0x100000, 0x100000, 0x101000, 0x103000}}});
    cases.push_back({"no entry", image, "no entry address tag"});
  }
  cases.push_back({"entry outside", FlatImage({}), ""});
  PutAt<uint32_t>(cases.back().image, 16 + 24 + 8, 0x200000);
  cases.back().message = "entry_addr 0x200000 is outside the loaded image";
  {
    std::vector<uint8_t> image(0x1000, 0x90);
    PutHeader(image, 0, {});
    cases.push_back(
        {"flat without address tag", image, "not ELF and its header has no address tag"});
  }
  for (const auto& c : cases) {
    TempFile kernel(c.image, "mb2.bin");
    auto memory = Memory();
    auto info = LoadKernel(*memory, Config(kernel.path()));
    ASSERT_FALSE(info) << c.what;
    EXPECT_EQ(info.error().exit_status(), 65) << c.what;
    EXPECT_NE(info.error().message().find(c.message), std::string::npos)
        << c.what << ": " << info.error().message();
    EXPECT_NE(info.error().message().find(kernel.path()), std::string::npos) << c.what;
  }
}

// A flat image at 0x10000, over vmm's fixed boot structures: the info is
// above it as always, and the GDT and stack move above the info.
TEST(Multiboot2, KernelThatLoadsLowGetsItsGdtAndStackMoved) {
  std::vector<uint8_t> image(0x1000, 0x90);
  PutHeader(image, 0,
            {{kMb2HeaderTagAddress, 0, {0x10000, 0x10000, 0x11000, 0x22000}},
             {kMb2HeaderTagEntry, 0, {0x10100}}});
  TempFile kernel(image, "mb2-low.bin");
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path(), "word=low"));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->cpu.rip, 0x10100u);
  EXPECT_EQ(*memory->ReadObj<uint32_t>(0x10000), kMultiboot2HeaderMagic);
  const uint64_t mbi = info->cpu.rbx;
  EXPECT_GE(mbi, base::kHighMemory);
  EXPECT_GT(info->cpu.gdt.base, mbi);
  EXPECT_EQ(info->cpu.gdt.base % 4096, 0u);
  EXPECT_GE(info->cpu.rsp, info->cpu.gdt.base + 4096);
  EXPECT_NE(info->description.find("loaded low"), std::string::npos) << info->description;
  const auto tags = InfoTags(*memory, mbi);
  ASSERT_EQ(tags.count(kMb2TagCmdline), 1u);
  EXPECT_EQ(ReadString(*memory, tags.find(kMb2TagCmdline)->second + 8),
            kernel.path() + " word=low");
}

TEST(Multiboot2, HeaderBeyond32KiBOrMisalignedIsNotFound) {
  for (uint64_t at : {uint64_t{0x8000}, uint64_t{0x104}}) {
    std::vector<uint8_t> image(0x9000, 0x90);
    PutHeader(image, at, {});
    TempFile kernel(image, "mb2.bin");
    auto memory = Memory();
    auto info = LoadKernel(*memory, Config(kernel.path(), "", {}, BootProtocol::kMultiboot2));
    ASSERT_FALSE(info);
    EXPECT_EQ(info.error().exit_status(), 65);
    EXPECT_NE(info.error().message().find("no multiboot2 header"), std::string::npos)
        << info.error().message();
  }
}

TEST(Multiboot2, OverlappingSegmentsAreBadImage) {
  ElfBuilder builder;
  builder.is64 = false;
  builder.segments.push_back(testing::TestSegment{0x101000, 0x101000, 0x2000});
  auto image = builder.Build();
  PutHeader(image, (image.size() - 0x2000 + 7) & ~uint64_t{7}, {});
  TempFile kernel(image, "mb2.elf");
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(kernel.path()));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("overlap"), std::string::npos) << info.error().message();
}

TEST(Multiboot2, ModulesThatDoNotFitAreBadImage) {
  TempFile kernel(FlatImage(), "mb2.bin");
  TempFile big(std::vector<uint8_t>(4 * MiB, 1), "big.img");
  auto memory = Memory(4 * MiB);
  auto info = LoadKernel(*memory, Config(kernel.path(), "", {big.path()}));
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().exit_status(), 65);
  EXPECT_NE(info.error().message().find("big.img"), std::string::npos) << info.error().message();
  EXPECT_NE(info.error().message().find("does not fit"), std::string::npos);
}

TEST(Multiboot2, ProtocolName) {
  EXPECT_STREQ(BootProtocolName(BootProtocol::kMultiboot2), "multiboot2");
  EXPECT_EQ(*ParseBootProtocol("multiboot2"), BootProtocol::kMultiboot2);
}

}  // namespace
}  // namespace firmware
