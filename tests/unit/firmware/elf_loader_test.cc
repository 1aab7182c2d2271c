#include <gtest/gtest.h>

#include <functional>

#include "base/guest_memory.h"
#include "base/layout.h"
#include "firmware/elf.h"
#include "tests/unit/firmware/test_images.h"

namespace firmware {
namespace {

using base::ErrorKind;
using base::MiB;
using testing::ElfBuilder;
using testing::PutAt;

constexpr std::string_view kName = "kernel image /t/k.elf";

std::unique_ptr<base::GuestMemory> Memory(uint64_t size = 64 * base::MiB) {
  auto memory = base::GuestMemory::Create(size);
  EXPECT_TRUE(memory.has_value());
  return std::move(*memory);
}

// Parses and loads into 64 MiB, as the ELF64 boot path does.
base::Result<ElfImage> ParseAndLoad(const std::vector<uint8_t>& file,
                                    uint64_t ram = 64 * base::MiB) {
  auto memory = Memory(ram);
  ElfImage image = TRY(ParseElf(file, kName));
  TRY(LoadElfSegments(*memory, file, image, kName));
  TRY(CheckEntryInExecutableSegment(image, image.entry, "e_entry", kName));
  return image;
}

TEST(ElfLoader, ValidImageLoadsSegmentsByPhysicalAddressAndZeroesBss) {
  ElfBuilder builder;
  builder.segments[0].vaddr = 0xffffffff81000000;  // as a Linux vmlinux
  builder.segments[0].data.assign(0x1000, 0xcc);
  builder.segments[0].mem_size = 0x3000;
  {
    firmware::testing::TestSegment data;
    data.paddr = 0x200000;
    data.vaddr = 0xffffffff81100000;
    data.mem_size = 0x1000;
    data.data.assign(0x800, 0x11);
    data.flags = PF_R | PF_W;
    builder.segments.push_back(data);
  }
  const auto file = builder.Build();
  auto memory = Memory();
  // Garbage where the bss goes, to see it zeroed.
  ASSERT_TRUE(memory->Fill(0x101000, 0xee, 0x2000));

  auto image = ParseElf(file, kName);
  ASSERT_TRUE(image) << image.error().message();
  ASSERT_TRUE(LoadElfSegments(*memory, file, *image, kName));

  EXPECT_TRUE(image->is64);
  EXPECT_EQ(image->entry, 0x100000u);
  ASSERT_EQ(image->loads.size(), 2u);
  EXPECT_EQ(image->lowest, 0x100000u);
  EXPECT_EQ(image->highest, 0x201000u);
  EXPECT_FALSE(image->pvh_entry);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x100000), 0xcc);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x100fff), 0xcc);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x101000), 0);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x102fff), 0);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x200000), 0x11);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(0x200800), 0);
}

TEST(ElfLoader, FindsPvhEntryNote) {
  ElfBuilder builder;
  builder.notes.push_back({"GNU", 3, std::vector<uint8_t>(20, 1)});
  builder.notes.push_back({"Xen", 18, {0x34, 0x12, 0x10, 0x00, 0, 0, 0, 0}});
  auto image = ParseElf(builder.Build(), kName);
  ASSERT_TRUE(image) << image.error().message();
  ASSERT_TRUE(image->pvh_entry);
  EXPECT_EQ(*image->pvh_entry, 0x101234u);
}

TEST(ElfLoader, FindsFourBytePvhEntryNote) {
  ElfBuilder builder;
  builder.notes.push_back({"Xen", 18, {0x00, 0x00, 0x10, 0x00}});
  auto image = ParseElf(builder.Build(), kName);
  ASSERT_TRUE(image) << image.error().message();
  EXPECT_EQ(image->pvh_entry, 0x100000u);
}

TEST(ElfLoader, ParsesElf32) {
  ElfBuilder builder;
  builder.is64 = false;
  auto image = ParseElf(builder.Build(), kName);
  ASSERT_TRUE(image) << image.error().message();
  EXPECT_FALSE(image->is64);
  EXPECT_EQ(image->loads.size(), 1u);
  EXPECT_FALSE(ParseElf(builder.Build(), kName, ElfClass::k64));
}

struct MalformedCase {
  const char* name;
  std::function<std::vector<uint8_t>()> make;
  const char* message_part;
  uint64_t ram = 64 * base::MiB;
  friend void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.name; }
};

std::vector<uint8_t> Valid() { return ElfBuilder().Build(); }

std::vector<uint8_t> WithPhdr(std::function<void(Elf64_Phdr&)> edit, int index = 0) {
  auto file = Valid();
  const uint64_t at = sizeof(Elf64_Ehdr) + static_cast<uint64_t>(index) * sizeof(Elf64_Phdr);
  auto phdr = testing::GetAt<Elf64_Phdr>(file, at);
  edit(phdr);
  PutAt(file, at, phdr);
  return file;
}

std::vector<uint8_t> WithEhdr(std::function<void(Elf64_Ehdr&)> edit) {
  auto file = Valid();
  auto ehdr = testing::GetAt<Elf64_Ehdr>(file, 0);
  edit(ehdr);
  PutAt(file, 0, ehdr);
  return file;
}

const MalformedCase kMalformed[] = {
    {"TruncatedHeader",
     [] {
       auto f = Valid();
       f.resize(40);
       return f;
     },
     "too short"},
    {"OnlyMagic",
     [] {
       auto f = Valid();
       f.resize(4);
       return f;
     },
     "truncated"},
    {"BadMagic",
     [] {
       auto f = Valid();
       f[1] = 'X';
       return f;
     },
     "bad magic"},
    {"Class32IsNotX86_64",
     [] {
       auto f = Valid();
       f[EI_CLASS] = ELFCLASS32;
       return f;
     },
     "machine 62 is not i386"},
    {"UnknownClass",
     [] {
       auto f = Valid();
       f[EI_CLASS] = 7;
       return f;
     },
     "ELF class 7"},
    {"BigEndian",
     [] {
       auto f = Valid();
       f[EI_DATA] = ELFDATA2MSB;
       return f;
     },
     "little-endian"},
    {"BadVersion", [] { return WithEhdr([](Elf64_Ehdr& e) { e.e_version = 2; }); },
     "unknown ELF version"},
    {"WrongMachine", [] { return WithEhdr([](Elf64_Ehdr& e) { e.e_machine = EM_AARCH64; }); },
     "machine 183 is not x86-64"},
    {"SharedObject", [] { return WithEhdr([](Elf64_Ehdr& e) { e.e_type = ET_DYN; }); },
     "not an executable"},
    {"BadPhentsize", [] { return WithEhdr([](Elf64_Ehdr& e) { e.e_phentsize = 32; }); },
     "program header size 32"},
    {"NoProgramHeaders", [] { return WithEhdr([](Elf64_Ehdr& e) { e.e_phnum = 0; }); },
     "no program headers"},
    {"PhdrTableOutsideFile", [] { return WithEhdr([](Elf64_Ehdr& e) { e.e_phoff = 0x100000; }); },
     "program header table lies outside the file (offset 0x100000"},
    {"PhdrTableOffsetOverflows",
     [] { return WithEhdr([](Elf64_Ehdr& e) { e.e_phoff = UINT64_MAX - 8; }); },
     "program header table lies outside the file"},
    {"SegmentOutsideFile",
     [] {
       return WithPhdr([](Elf64_Phdr& p) {
         p.p_filesz = 0x10000;
         p.p_memsz = 0x10000;
       });
     },
     "program header 0 lies outside the file"},
    {"SegmentOffsetPlusSizeOverflows",
     [] {
       return WithPhdr([](Elf64_Phdr& p) {
         p.p_offset = UINT64_MAX - 0x10;
         p.p_filesz = 0x100;
       });
     },
     "program header 0 lies outside the file"},
    {"MemszSmallerThanFilesz", [] { return WithPhdr([](Elf64_Phdr& p) { p.p_memsz = 0x10; }); },
     "file size 0x1000 larger than its memory size 0x10"},
    {"SegmentWrapsAddressSpace",
     [] { return WithPhdr([](Elf64_Phdr& p) { p.p_paddr = UINT64_MAX - 0x100; }); },
     "wraps around the address space"},
    {"SegmentOutsideRam", [] { return WithPhdr([](Elf64_Phdr& p) { p.p_paddr = 0x100000000; }); },
     "lies outside guest RAM (64 MiB)"},
    {"SegmentPastEndOfRam",
     [] { return WithPhdr([](Elf64_Phdr& p) { p.p_paddr = 64 * base::MiB - 0x1000; }); },
     "lies outside guest RAM"},
    {"SegmentOverBootStructures",
     [] { return WithPhdr([](Elf64_Phdr& p) { p.p_paddr = 0x7000; }); },
     "overlaps the boot structures below 0x30000"},
    {"SegmentOverLegacyArea", [] { return WithPhdr([](Elf64_Phdr& p) { p.p_paddr = 0x9f000; }); },
     "overlaps the reserved legacy area [0x9fc00, 0x100000)"},
    {"EntryOutsideSegments", [] { return WithEhdr([](Elf64_Ehdr& e) { e.e_entry = 0x400000; }); },
     "e_entry 0x400000 is not inside a loaded executable segment"},
    {"EntryJustPastSegment", [] { return WithEhdr([](Elf64_Ehdr& e) { e.e_entry = 0x102000; }); },
     "e_entry 0x102000"},
    {"EntryInNonExecutableSegment",
     [] { return WithPhdr([](Elf64_Phdr& p) { p.p_flags = PF_R | PF_W; }); },
     "not inside a loaded executable segment"},
    {"EntryVirtualOnly",
     [] {
       ElfBuilder b;
       b.segments[0].vaddr = 0xffffffff81000000;
       b.entry = 0xffffffff81000000;
       return b.Build();
     },
     "not inside a loaded executable segment"},
    {"ZeroPtLoads", [] { return WithPhdr([](Elf64_Phdr& p) { p.p_type = PT_DYNAMIC; }); },
     "no loadable segment"},
    {"OnlyEmptyPtLoads",
     [] {
       return WithPhdr([](Elf64_Phdr& p) {
         p.p_filesz = 0;
         p.p_memsz = 0;
       });
     },
     "no loadable segment"},
    {"PvhNoteWithBadDescriptorSize",
     [] {
       ElfBuilder b;
       b.notes.push_back({"Xen", 18, {1, 2}});
       return b.Build();
     },
     "PVH note (XEN_ELFNOTE_PHYS32_ENTRY) has a 2-byte descriptor"},
    {"PvhEntryAbove4G",
     [] {
       ElfBuilder b;
       b.notes.push_back({"Xen", 18, {0, 0, 0x10, 0, 1, 0, 0, 0}});
       return b.Build();
     },
     "is not a 32-bit address"},
    {"NoteRunsPastSegment",
     [] {
       ElfBuilder b;
       b.notes.push_back({"Xen", 18, {0, 0, 0x10, 0}});
       auto f = b.Build();
       // Note header sits right after the segment data: make descsz huge.
       const uint64_t note_at = f.size() - 20;
       PutAt<uint32_t>(f, note_at + 4, 0xfffffff0);
       return f;
     },
     "runs past its segment"},
};

class ElfLoaderMalformed : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(ElfLoaderMalformed, IsRejectedWithBadImageNamingFileAndProblem) {
  const auto& param = GetParam();
  auto result = ParseAndLoad(param.make(), param.ram);
  ASSERT_FALSE(result) << "accepted a malformed image";
  EXPECT_EQ(result.error().kind(), base::ErrorKind::kBadImage);
  EXPECT_EQ(result.error().exit_status(), 65);
  EXPECT_NE(result.error().message().find(kName), std::string::npos) << result.error().message();
  EXPECT_NE(result.error().message().find(param.message_part), std::string::npos)
      << result.error().message();
}

INSTANTIATE_TEST_SUITE_P(Table, ElfLoaderMalformed, ::testing::ValuesIn(kMalformed),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ElfLoader, SegmentAcrossMmioHoleIsRejected) {
  auto file = WithPhdr([](Elf64_Phdr& p) {
    p.p_paddr = base::kMmioHoleStart - 0x1000;
    p.p_memsz = 0x2000;
  });
  auto memory = Memory(3 * base::GiB + 16 * base::MiB);
  auto image = ParseElf(file, kName);
  ASSERT_TRUE(image);
  auto loaded = LoadElfSegments(*memory, file, *image, kName);
  ASSERT_FALSE(loaded);
  EXPECT_NE(loaded.error().message().find("outside guest RAM"), std::string::npos);
}

TEST(ElfLoader, SegmentAboveFourGiBLoads) {
  auto file = WithPhdr([](Elf64_Phdr& p) { p.p_paddr = base::kMmioHoleEnd + 0x100000; });
  auto memory = Memory(3 * base::GiB + 16 * base::MiB);
  auto image = ParseElf(file, kName);
  ASSERT_TRUE(image);
  ASSERT_TRUE(LoadElfSegments(*memory, file, *image, kName));
  EXPECT_EQ(*memory->ReadObj<uint8_t>(base::kMmioHoleEnd + 0x100000), 0x90);
}

TEST(ElfLoader, SegmentJustAboveBootStructuresLoads) {
  auto file = WithPhdr([](Elf64_Phdr& p) { p.p_paddr = base::kBootStructuresEnd; });
  auto memory = Memory();
  auto image = ParseElf(file, kName);
  ASSERT_TRUE(image);
  EXPECT_TRUE(LoadElfSegments(*memory, file, *image, kName));
}

}  // namespace
}  // namespace firmware
