// The Limine path of LoadKernel (docs/boot-protocols.md, "Limine"): request
// discovery, each answer as the kernel would read it through vmm's page
// tables, base revisions, relocation, and malformed executables.
#include "firmware/limine.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>

#include "base/layout.h"
#include "firmware/boot.h"
#include "firmware/cpu_setup.h"
#include "firmware/mptable.h"
#include "firmware/page_tables.h"
#include "tests/unit/firmware/test_images.h"

namespace firmware {
namespace {

using testing::ElfBuilder;
using testing::PutAt;
using testing::TempFile;
using testing::TestSegment;

constexpr uint64_t kText = 0xffffffff80000000;
constexpr uint64_t kData = 0xffffffff80001000;

// Request IDs' last two words (PROTOCOL.md "Feature List").
struct Id {
  uint64_t a, b;
};
constexpr Id kBootloaderInfo{0xf55038d8e2a1202f, 0x279426fcf5f59740};
constexpr Id kCmdline{0x4b161536e598651e, 0xb390ad4a2f1f303a};
constexpr Id kFirmwareType{0x8c2f75d90bef28a8, 0x7045a4688eac00c3};
constexpr Id kStackSize{0x224ef0460a8e8926, 0xe1cb0fc25f46ea3d};
constexpr Id kHhdm{0x48dcf1cb8ad2b852, 0x63984e959a98244b};
constexpr Id kFramebuffer{0x9d5827dcd881dd75, 0xa3148604f6fab11b};
constexpr Id kPagingMode{0x95c1a0edab0944cb, 0xa4e5cb3842f7488a};
constexpr Id kMp{0x95a67b819a1b857e, 0xa0b61b723b6a73e0};
constexpr Id kMemmap{0x67cf3d9d378a806f, 0xe304acdfc50c3c62};
constexpr Id kEntryPoint{0x13d86c035a1cd3e1, 0x2b0caa89d8f3026a};
constexpr Id kExecutableFile{0xad97e90e83f1ed67, 0x31eb5d1c5ff23b69};
constexpr Id kModule{0x3e7e279702be32af, 0xca1c4f3bd1280cee};
constexpr Id kRsdp{0xc5e77b6b397e7b43, 0x27637845accdcf3c};
constexpr Id kDate{0x502746e184c088aa, 0xfbc5ec83e6327893};
constexpr Id kExecutableAddress{0x71ba76863cc55f63, 0xb2644a48c516a487};
constexpr Id kEntropy{0x65ea80255d5682c5, 0x9117240723f493eb};

// A Limine kernel: text (RX) at kText, data (RW) at kData holding the
// requests, each 0x40 apart from data offset 0x100.
struct LimineKernel {
  std::vector<uint8_t> data = std::vector<uint8_t>(0x2000, 0);
  std::map<std::string, uint64_t> at;  // request name -> data offset
  uint64_t next = 0x100;
  std::optional<uint64_t> revision;

  void Request(const std::string& name, Id id, uint64_t revision_field = 0,
               std::vector<uint64_t> fields = {}) {
    at[name] = next;
    PutAt<uint64_t>(data, next, kLimineCommonMagic0);
    PutAt<uint64_t>(data, next + 8, kLimineCommonMagic1);
    PutAt<uint64_t>(data, next + 16, id.a);
    PutAt<uint64_t>(data, next + 24, id.b);
    PutAt<uint64_t>(data, next + 32, revision_field);
    for (size_t i = 0; i < fields.size(); ++i) PutAt<uint64_t>(data, next + 48 + 8 * i, fields[i]);
    next += 0x60;
  }
  std::vector<uint8_t> Build(uint64_t entry = kText) {
    if (revision) {
      PutAt<uint64_t>(data, 0x20, kLimineBaseRevisionMagic0);
      PutAt<uint64_t>(data, 0x28, kLimineBaseRevisionMagic1);
      PutAt<uint64_t>(data, 0x30, *revision);
    }
    ElfBuilder builder;
    builder.entry = entry;
    builder.segments = {
        TestSegment{kText, kText, 0x1000, std::vector<uint8_t>(0x1000, 0x90), PF_R | PF_X},
        TestSegment{kData, kData, 0x3000, data, PF_R | PF_W},
    };
    return builder.Build();
  }
};

std::unique_ptr<base::GuestMemory> Memory(uint64_t size = 128 * base::MiB) {
  return std::move(*base::GuestMemory::Create(size));
}

// Reads guest memory the way the kernel does: through its page tables.
class Guest {
 public:
  Guest(const base::GuestMemory& memory, const BootInfo& info) : memory_(memory), info_(info) {}
  uint64_t Phys(uint64_t virt) const {
    auto t = TranslateAddress(memory_, info_.cpu.cr3, virt);
    EXPECT_TRUE(t && *t) << std::hex << "virtual " << virt << " is not mapped";
    return t && *t ? (*t)->phys : 0;
  }
  bool Mapped(uint64_t virt) const {
    auto t = TranslateAddress(memory_, info_.cpu.cr3, virt);
    return t && *t;
  }
  uint64_t U64(uint64_t virt) const { return *memory_.ReadObj<uint64_t>(Phys(virt)); }
  uint32_t U32(uint64_t virt) const { return *memory_.ReadObj<uint32_t>(Phys(virt)); }
  std::string String(uint64_t virt) const {
    std::string out;
    for (uint64_t p = Phys(virt);; ++p) {
      const char c = static_cast<char>(*memory_.ReadObj<uint8_t>(p));
      if (c == 0) return out;
      out.push_back(c);
    }
  }
  // The response a request at data offset `offset` got (0: none).
  uint64_t Response(uint64_t offset) const { return U64(kData + offset + 40); }

 private:
  const base::GuestMemory& memory_;
  const BootInfo& info_;
};

BootConfig Config(const std::string& path) {
  BootConfig config;
  config.kernel_path = path;
  config.protocol = BootProtocol::kAuto;
  return config;
}

TEST(Limine, AnswersEveryRequestItServesAndReadsBackThroughItsPageTables) {
  LimineKernel kernel;
  kernel.revision = 3;
  kernel.Request("info", kBootloaderInfo);
  kernel.Request("cmdline", kCmdline);
  kernel.Request("firmware", kFirmwareType);
  kernel.Request("stack", kStackSize, 0, {0x20000});
  kernel.Request("hhdm", kHhdm);
  kernel.Request("framebuffer", kFramebuffer);
  kernel.Request("paging", kPagingMode, 1, {0, 1, 0});
  kernel.Request("mp", kMp, 0, {0});
  kernel.Request("memmap", kMemmap);
  kernel.Request("file", kExecutableFile);
  kernel.Request("module", kModule);
  kernel.Request("rsdp", kRsdp);
  kernel.Request("date", kDate);
  kernel.Request("address", kExecutableAddress);
  kernel.Request("entropy", kEntropy, 0, {5});
  kernel.Request("unknown", Id{0x1111, 0x2222});
  const auto bytes = kernel.Build();
  TempFile file(bytes, "limine.elf");
  TempFile module(std::vector<uint8_t>(0x1800, 0x5a), "module.bin");

  auto memory = Memory();
  BootConfig config = Config(file.path());
  config.cmdline = "limineword=7";
  config.initrd_paths = {module.path()};
  config.cpus = 3;
  const std::time_t before = std::time(nullptr);
  auto info = LoadKernel(*memory, config);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kLimine);
  EXPECT_NE(info->description.find("Limine base revision 3"), std::string::npos)
      << info->description;
  EXPECT_NE(info->description.find("14 of 16 requests answered (not answered: framebuffer) (1 "
                                   "unknown request(s))"),
            std::string::npos)
      << info->description;
  Guest guest(*memory, *info);

  // The base revision tag: supported (3rd word 0), loaded revision in the 2nd.
  EXPECT_EQ(guest.U64(kData + 0x28), 3u);
  EXPECT_EQ(guest.U64(kData + 0x30), 0u);

  // Machine state.
  EXPECT_EQ(info->cpu.rip, kText);
  EXPECT_EQ(info->cpu.cs.selector, kLimineCodeSelector);
  EXPECT_EQ(info->cpu.cs.l, 1);
  EXPECT_EQ(info->cpu.ss.selector, kLimineDataSelector);
  EXPECT_EQ(info->cpu.rflags, 0x2u);
  EXPECT_EQ(info->cpu.rbp, 0u);
  EXPECT_EQ(info->cpu.cr0, kCr0Pe | kCr0Et | kCr0Wp | kCr0Pg);
  EXPECT_EQ(info->cpu.cr4, kCr4Pae);
  EXPECT_EQ(info->cpu.efer, kEferLme | kEferLma | kEferNxe);
  EXPECT_EQ(info->cpu.idt.limit, 0);
  EXPECT_EQ(info->cpu.tr.limit, 0u);
  EXPECT_EQ(info->cpu.ldt.unusable, 1);
  ASSERT_EQ(info->cpu.msrs.size(), 1u);
  EXPECT_EQ(info->cpu.msrs[0], std::make_pair(kMsrPat, kLiminePat));
  EXPECT_EQ(guest.U64(info->cpu.rsp), 0u) << "the invalid return address";
  EXPECT_EQ(info->cpu.rsp % 16, 8u) << "as after a call";
  EXPECT_EQ(info->cpu.gdt.limit, 7 * 8 - 1);
  EXPECT_EQ(guest.U64(info->cpu.gdt.base + 0x28) >> 53 & 1, 1u) << "0x28 is 64-bit code";

  // The executable at its link address: text RX, data RW NX.
  auto text = *TranslateAddress(*memory, info->cpu.cr3, kText);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->phys, info->kernel_start);
  EXPECT_TRUE(text->execute);
  EXPECT_FALSE(text->write);
  auto data = *TranslateAddress(*memory, info->cpu.cr3, kData + 0x2fff);
  ASSERT_TRUE(data);
  EXPECT_TRUE(data->write);
  EXPECT_FALSE(data->execute);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(text->phys), 0x90);

  // Bootloader info, command line, firmware type, HHDM, paging mode.
  uint64_t r = guest.Response(kernel.at["info"]);
  EXPECT_EQ(guest.String(guest.U64(r + 8)), "vmm");
  EXPECT_EQ(guest.String(guest.U64(r + 16)), VMM_VERSION_STRING);
  r = guest.Response(kernel.at["cmdline"]);
  EXPECT_EQ(guest.String(guest.U64(r + 8)), "limineword=7");
  EXPECT_EQ(guest.U64(guest.Response(kernel.at["firmware"]) + 8), 0u);  // X86BIOS
  EXPECT_NE(guest.Response(kernel.at["stack"]), 0u);
  EXPECT_EQ(guest.U64(guest.Response(kernel.at["hhdm"]) + 8), kLimineHhdmOffset);
  EXPECT_EQ(guest.U64(guest.Response(kernel.at["paging"]) + 8), 0u);  // 4-level
  EXPECT_EQ(guest.Response(kernel.at["framebuffer"]), 0u) << "no framebuffer: left NULL";
  EXPECT_EQ(guest.Response(kernel.at["unknown"]), 0u);
  // Pointers are HHDM addresses.
  EXPECT_EQ(guest.Response(kernel.at["hhdm"]) & kLimineHhdmOffset, kLimineHhdmOffset);

  // RSDP: physical under base revision 3.
  EXPECT_EQ(guest.U64(guest.Response(kernel.at["rsdp"]) + 8), base::kAcpiTables);
  const int64_t date = static_cast<int64_t>(guest.U64(guest.Response(kernel.at["date"]) + 8));
  EXPECT_GE(date, before);
  EXPECT_LE(date, std::time(nullptr));
  r = guest.Response(kernel.at["address"]);
  EXPECT_EQ(guest.U64(r + 8), info->kernel_start);
  EXPECT_EQ(guest.U64(r + 16), kText);
  r = guest.Response(kernel.at["entropy"]);
  EXPECT_EQ(guest.U64(r + 8), 5u);
  uint64_t entropy_or = 0;
  for (int i = 0; i < 5; ++i) entropy_or |= guest.U64(guest.U64(r + 16) + 8 * i);
  EXPECT_NE(entropy_or, 0u);

  // Executable file and module: limine_file with HHDM addresses.
  r = guest.Response(kernel.at["file"]);
  const uint64_t exec_file = guest.U64(r + 8);
  EXPECT_EQ(guest.U64(exec_file + 16), bytes.size());
  EXPECT_EQ(guest.U64(guest.U64(exec_file + 8)), *reinterpret_cast<const uint64_t*>(bytes.data()));
  EXPECT_EQ(guest.String(guest.U64(exec_file + 24)), file.path());
  EXPECT_EQ(guest.String(guest.U64(exec_file + 32)), "limineword=7");
  r = guest.Response(kernel.at["module"]);
  ASSERT_EQ(guest.U64(r + 8), 1u);
  const uint64_t mod = guest.U64(guest.U64(r + 16));
  EXPECT_EQ(guest.U64(mod + 16), 0x1800u);
  EXPECT_EQ(guest.U64(mod + 8) % 4096, 0u);
  EXPECT_EQ(guest.U64(guest.U64(mod + 8)), 0x5a5a5a5a5a5a5a5au);
  EXPECT_EQ(guest.String(guest.U64(mod + 24)), module.path());

  // MP: three CPUs, the APs parked in long mode on goto_address.
  r = guest.Response(kernel.at["mp"]);
  EXPECT_EQ(guest.U32(r + 8), 0u);   // flags: no x2APIC
  EXPECT_EQ(guest.U32(r + 12), 0u);  // BSP LAPIC ID
  ASSERT_EQ(guest.U64(r + 16), 3u);  // cpu_count
  ASSERT_EQ(info->aps.size(), 2u);
  for (uint32_t cpu = 0; cpu < 3; ++cpu) {
    const uint64_t mp_info = guest.U64(guest.U64(r + 24) + 8 * cpu);
    EXPECT_EQ(guest.U32(mp_info), cpu);      // ACPI UID
    EXPECT_EQ(guest.U32(mp_info + 4), cpu);  // LAPIC ID
    EXPECT_EQ(guest.U64(mp_info + 16), 0u);  // goto_address NULL at entry
    if (cpu == 0) continue;
    const CpuBootState& ap = info->aps[cpu - 1];
    EXPECT_EQ(ap.rdi, mp_info);
    EXPECT_EQ(ap.cr3, info->cpu.cr3);
    EXPECT_EQ(ap.cs.selector, kLimineCodeSelector);
    EXPECT_EQ(guest.U32(ap.rip), 0x10478b48u) << "mov rax, [rdi + 0x10]";
    EXPECT_TRUE(guest.Mapped(ap.rsp - 8));
    EXPECT_NE(ap.rsp, info->cpu.rsp);
  }

  // Memory map: sorted, RAM entries 4 KiB aligned and disjoint, covering
  // the executable, the boot structures and the ACPI tables.
  r = guest.Response(kernel.at["memmap"]);
  const uint64_t count = guest.U64(r + 8);
  ASSERT_GE(count, 5u);
  std::map<uint64_t, uint64_t> bytes_of;
  uint64_t previous_end = 0;
  bool saw_exec = false, saw_reclaimable_cr3 = false, saw_acpi = false;
  for (uint64_t i = 0; i < count; ++i) {
    const uint64_t e = guest.U64(guest.U64(r + 16) + 8 * i);
    const uint64_t base = guest.U64(e), length = guest.U64(e + 8), type = guest.U64(e + 16);
    EXPECT_GE(base, previous_end) << "entry " << i;
    previous_end = base + length;
    bytes_of[type] += length;
    if (type == 0 || type == 5) {
      EXPECT_EQ(base % 4096, 0u);
      EXPECT_EQ(length % 4096, 0u);
    }
    if (type == 6 && base <= info->kernel_start && info->kernel_end <= base + length)
      saw_exec = true;
    if (type == 5 && base <= info->cpu.cr3 && info->cpu.cr3 < base + length) {
      saw_reclaimable_cr3 = true;
    }
    if (type == 2 && base == base::kAcpiTables) saw_acpi = true;
  }
  EXPECT_TRUE(saw_exec);
  EXPECT_TRUE(saw_reclaimable_cr3);
  EXPECT_TRUE(saw_acpi);
  EXPECT_EQ(bytes_of[0] + bytes_of[5] + bytes_of[6] + 0x1000 + 0xc00, 128 * base::MiB - 0x60400)
      << "all RAM but page 0 and the partial page below the EBDA is usable, reclaimable or the "
         "executable";

  // HHDM under base revision 3: RAM only, no identity map, no MMIO.
  EXPECT_EQ(guest.Phys(kLimineHhdmOffset + 0x100000), 0x100000u);
  EXPECT_FALSE(guest.Mapped(kLimineHhdmOffset + uint64_t{kLapicAddress}));
  EXPECT_FALSE(guest.Mapped(0x100000));
}

TEST(Limine, BaseRevisionZeroIdentityMapsAndNewerRevisionsAreFlagged) {
  {
    LimineKernel kernel;  // no tag: revision 0
    kernel.Request("hhdm", kHhdm);
    TempFile file(kernel.Build(), "limine.elf");
    auto memory = Memory();
    auto info = LoadKernel(*memory, Config(file.path()));
    ASSERT_TRUE(info) << info.error().message();
    Guest guest(*memory, *info);
    EXPECT_EQ(guest.Phys(0x1000), 0x1000u) << "identity map from 4 KiB";
    EXPECT_FALSE(guest.Mapped(0));
    EXPECT_EQ(guest.Phys(0xfee00000), 0xfee00000u) << "the first 4 GiB, MMIO included";
    EXPECT_EQ(guest.Phys(kLimineHhdmOffset + 0xfec00000), 0xfec00000u);
  }
  for (uint64_t asked : {4u, 6u, 7u}) {
    LimineKernel kernel;
    kernel.revision = asked;
    kernel.Request("rsdp", kRsdp);
    TempFile file(kernel.Build(), "limine.elf");
    auto memory = Memory();
    auto info = LoadKernel(*memory, Config(file.path()));
    ASSERT_TRUE(info) << info.error().message();
    Guest guest(*memory, *info);
    EXPECT_EQ(guest.U64(kData + 0x28), std::min<uint64_t>(asked, 6));
    EXPECT_EQ(guest.U64(kData + 0x30), asked > 6 ? asked : 0u) << "unsupported: left as it was";
    // RSDP: an HHDM address again from revision 4, and mapped there.
    const uint64_t rsdp = guest.U64(guest.Response(kernel.at["rsdp"]) + 8);
    EXPECT_EQ(rsdp, kLimineHhdmOffset + base::kAcpiTables);
    EXPECT_EQ(guest.Phys(rsdp), base::kAcpiTables);
  }
}

TEST(Limine, RequestsOutsideTheDelimitersAreIgnored) {
  LimineKernel kernel;
  kernel.revision = 2;
  kernel.Request("before", kHhdm);
  const uint64_t start = kernel.next;
  PutAt<uint64_t>(kernel.data, start, 0xf6b8f4b39de7d1ae);
  PutAt<uint64_t>(kernel.data, start + 8, 0xfab91a6940fcb9cf);
  PutAt<uint64_t>(kernel.data, start + 16, 0x785c6ed015d3e316);
  PutAt<uint64_t>(kernel.data, start + 24, 0x181e920a7852b9d9);
  kernel.next += 0x40;
  kernel.Request("inside", kFirmwareType);
  const uint64_t end = kernel.next;
  PutAt<uint64_t>(kernel.data, end, 0xadc0e0531bb10d03);
  PutAt<uint64_t>(kernel.data, end + 8, 0x9572709f31764c62);
  kernel.next += 0x20;
  kernel.Request("after", kDate);
  // The base revision tag must be inside too: move it past the start marker.
  TempFile file(kernel.Build(), "limine.elf");
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(file.path()));
  ASSERT_TRUE(info) << info.error().message();
  Guest guest(*memory, *info);
  EXPECT_EQ(guest.Response(kernel.at["before"]), 0u);
  EXPECT_NE(guest.Response(kernel.at["inside"]), 0u);
  EXPECT_EQ(guest.Response(kernel.at["after"]), 0u);
  EXPECT_EQ(guest.U64(kData + 0x30), 2u) << "the tag before the start marker is not seen";
}

TEST(Limine, EntryPointRequestAndAcpiOff) {
  LimineKernel kernel;
  kernel.revision = 6;
  kernel.Request("entry", kEntryPoint, 0, {kText + 0x80});
  kernel.Request("rsdp", kRsdp);
  TempFile file(kernel.Build(), "limine.elf");
  auto memory = Memory();
  BootConfig config = Config(file.path());
  config.acpi = false;
  auto info = LoadKernel(*memory, config);
  ASSERT_TRUE(info) << info.error().message();
  Guest guest(*memory, *info);
  EXPECT_EQ(info->cpu.rip, kText + 0x80);
  EXPECT_NE(guest.Response(kernel.at["entry"]), 0u);
  EXPECT_EQ(guest.Response(kernel.at["rsdp"]), 0u) << "no ACPI: no response";
}

TEST(Limine, PositionIndependentExecutableIsSlidAndRelocated) {
  // ET_DYN linked at 0: text at 0, data at 0x1000 with a pointer to 0x40
  // that one R_X86_64_RELATIVE relocation fixes, PT_DYNAMIC naming it.
  std::vector<uint8_t> data(0x1000, 0);
  PutAt<uint64_t>(data, 0x20, kLimineBaseRevisionMagic0);
  PutAt<uint64_t>(data, 0x28, kLimineBaseRevisionMagic1);
  PutAt<uint64_t>(data, 0x30, 6);
  // Rela at data + 0x100: r_offset 0x1200, R_X86_64_RELATIVE, addend 0x40.
  PutAt<uint64_t>(data, 0x100, 0x1200);
  PutAt<uint64_t>(data, 0x108, 8);
  PutAt<uint64_t>(data, 0x110, 0x40);
  // Dynamic at data + 0x300: DT_RELA 0x1100, DT_RELASZ 24, DT_RELAENT 24.
  std::vector<uint8_t> dynamic(0x40, 0);
  PutAt<uint64_t>(dynamic, 0, 7);
  PutAt<uint64_t>(dynamic, 8, 0x1100);
  PutAt<uint64_t>(dynamic, 16, 8);
  PutAt<uint64_t>(dynamic, 24, 24);
  PutAt<uint64_t>(dynamic, 32, 9);
  PutAt<uint64_t>(dynamic, 40, 24);
  std::memcpy(data.data() + 0x300, dynamic.data(), dynamic.size());
  auto build = [&](uint64_t type) {
    PutAt<uint64_t>(data, 0x108, type);
    std::memcpy(data.data() + 0x300, dynamic.data(), dynamic.size());
    ElfBuilder builder;
    builder.type = ET_DYN;
    builder.entry = 0x10;
    builder.segments = {
        TestSegment{0, 0, 0x1000, std::vector<uint8_t>(0x1000, 0x90), PF_R | PF_X},
        TestSegment{0x1000, 0x1000, 0x1000, data, PF_R | PF_W},
        TestSegment{0x1300, 0x1300, 0x40, dynamic, PF_R | PF_W, PT_DYNAMIC},
    };
    return builder.Build();
  };
  TempFile file(build(8), "pie.elf");
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(file.path()));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_NE(info->description.find("slide 0xffffffff80000000"), std::string::npos)
      << info->description;
  Guest guest(*memory, *info);
  EXPECT_EQ(info->cpu.rip, kText + 0x10);
  EXPECT_EQ(guest.U64(kText + 0x1200), kText + 0x40);

  TempFile absolute(build(1), "pie-abs.elf");  // R_X86_64_64 needs a symbol
  auto refused = LoadKernel(*Memory(), Config(absolute.path()));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind(), base::ErrorKind::kBadImage);
  EXPECT_NE(refused.error().message().find("has type 1"), std::string::npos)
      << refused.error().message();
}

TEST(Limine, MalformedExecutablesAreRefusedNamingTheProblem) {
  struct Case {
    const char* what;
    std::vector<uint8_t> image;
    base::ErrorKind kind;
    const char* message;
    uint64_t memory = 128 * base::MiB;
  };
  std::vector<Case> cases;
  {
    LimineKernel kernel;
    kernel.revision = 3;
    ElfBuilder builder;  // linked low, not relocatable
    std::vector<uint8_t> data(0x100, 0);
    PutAt<uint64_t>(data, 0, kLimineBaseRevisionMagic0);
    PutAt<uint64_t>(data, 8, kLimineBaseRevisionMagic1);
    builder.segments = {TestSegment{0x200000, 0x200000, 0x1000, data, PF_R | PF_X}};
    builder.entry = 0x200000;
    cases.push_back(
        {"low", builder.Build(), base::ErrorKind::kBadImage, "below 0xffffffff80000000"});
  }
  {
    LimineKernel kernel;
    kernel.Request("a", kHhdm);
    kernel.Request("b", kHhdm);
    cases.push_back({"duplicate", kernel.Build(), base::ErrorKind::kBadImage, "two hhdm requests"});
  }
  {
    LimineKernel kernel;
    kernel.Request("a", kHhdm);
    cases.push_back({"entry", kernel.Build(kData), base::ErrorKind::kBadImage,
                     "is not inside an executable (PF_X) segment"});
  }
  {
    LimineKernel kernel;
    kernel.Request("entry", kEntryPoint, 0, {kData + 8});
    cases.push_back(
        {"entry request", kernel.Build(), base::ErrorKind::kBadImage, "(entry point request)"});
  }
  {
    LimineKernel kernel;
    kernel.Request("paging", kPagingMode, 1, {1, 1, 1});
    cases.push_back({"5-level", kernel.Build(), base::ErrorKind::kBadImage, "min_mode 1"});
  }
  {
    LimineKernel kernel;
    kernel.Request("hhdm", kHhdm);
    cases.push_back(
        {"tiny memory", kernel.Build(), base::ErrorKind::kConfig, "too small", 2 * base::MiB});
  }
  {
    LimineKernel kernel;
    kernel.Request("hhdm", kHhdm);
    ElfBuilder builder;
    builder.entry = kText;
    builder.segments = {
        TestSegment{kText, kText, 0x2000, std::vector<uint8_t>(0x1000, 0x90), PF_R | PF_X},
        TestSegment{kData, kData, 0x3000, kernel.data, PF_R | PF_W},
    };
    cases.push_back({"overlap", builder.Build(), base::ErrorKind::kBadImage, "overlap"});
  }
  {
    // A 2 GiB span from a small file (p_memsz): refused by the guest's size
    // before vmm allocates a host buffer for it.
    LimineKernel kernel;
    kernel.Request("hhdm", kHhdm);
    ElfBuilder builder;
    builder.entry = kText;
    builder.segments = {
        TestSegment{kText, kText, 0x1000, std::vector<uint8_t>(0x1000, 0x90), PF_R | PF_X},
        TestSegment{kData, kData, 0x7fffe000, kernel.data, PF_R | PF_W},
    };
    cases.push_back({"huge span", builder.Build(), base::ErrorKind::kConfig,
                     "its segments span 0x7ffff000 bytes"});
  }
  for (const auto& c : cases) {
    TempFile file(c.image, "bad.elf");
    auto info = LoadKernel(*Memory(c.memory), Config(file.path()));
    ASSERT_FALSE(info) << c.what;
    EXPECT_EQ(info.error().kind(), c.kind) << c.what << ": " << info.error().message();
    EXPECT_NE(info.error().message().find(c.message), std::string::npos)
        << c.what << ": " << info.error().message();
    EXPECT_NE(info.error().message().find(file.path()), std::string::npos) << c.what;
  }
}

// The framebuffer request gets vmm's framebuffer (response revision 1, one
// framebuffer with its one mode), an HHDM address; the memory map lists it.
TEST(Limine, FramebufferRequestGetsVmmsFramebuffer) {
  LimineKernel kernel;
  kernel.revision = 3;
  kernel.Request("framebuffer", kFramebuffer, 1);
  kernel.Request("memmap", kMemmap);
  TempFile file(kernel.Build(), "limine.elf");
  auto memory = Memory();
  BootConfig config = Config(file.path());
  config.framebuffer_on_request = MakeFramebuffer(1024, 768);
  auto info = LoadKernel(*memory, config);
  ASSERT_TRUE(info) << info.error().message();
  ASSERT_TRUE(info->framebuffer);
  Guest guest(*memory, *info);
  const uint64_t r = guest.Response(kernel.at["framebuffer"]);
  ASSERT_NE(r, 0u);
  EXPECT_EQ(guest.U64(r), 1u);      // response revision: with modes
  EXPECT_EQ(guest.U64(r + 8), 1u);  // framebuffer_count
  const uint64_t fb = guest.U64(guest.U64(r + 16));
  EXPECT_EQ(guest.U64(fb), kLimineHhdmOffset + base::kFramebufferBase);
  EXPECT_EQ(guest.U64(fb + 8), 1024u);
  EXPECT_EQ(guest.U64(fb + 16), 768u);
  EXPECT_EQ(guest.U64(fb + 24), 4096u);            // pitch
  EXPECT_EQ(guest.U32(fb + 32) & 0xffff, 32u);     // bpp
  EXPECT_EQ(guest.U32(fb + 32) >> 16 & 0xff, 1u);  // memory_model RGB
  EXPECT_EQ(guest.U64(fb + 64), 1u);               // mode_count
  const uint64_t mode = guest.U64(guest.U64(fb + 72));
  EXPECT_EQ(guest.U64(mode + 8), 1024u);
  // HHDM under revision 3 maps framebuffer entries; the map has one.
  EXPECT_EQ(guest.Phys(kLimineHhdmOffset + base::kFramebufferBase + 0x1000),
            base::kFramebufferBase + 0x1000);
  const uint64_t map = guest.Response(kernel.at["memmap"]);
  bool listed = false;
  for (uint64_t i = 0; i < guest.U64(map + 8); ++i) {
    const uint64_t e = guest.U64(guest.U64(map + 16) + 8 * i);
    if (guest.U64(e) == base::kFramebufferBase && guest.U64(e + 16) == 7) {
      listed = true;
      EXPECT_EQ(guest.U64(e + 8), 1024u * 768 * 4);
    }
  }
  EXPECT_TRUE(listed);

  // A kernel without the request gets none in auto mode.
  LimineKernel plain;
  plain.Request("hhdm", kHhdm);
  TempFile plain_file(plain.Build(), "plain-limine.elf");
  config.kernel_path = plain_file.path();
  info = LoadKernel(*Memory(), config);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_FALSE(info->framebuffer);
}

TEST(Limine, PlainElf64IsNotLimineAndForcingLimineOnItIsRefused) {
  TempFile plain(ElfBuilder().Build(), "plain.elf");
  auto memory = Memory();
  auto info = LoadKernel(*memory, Config(plain.path()));
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->protocol, BootProtocol::kElf64);
  BootConfig config = Config(plain.path());
  config.protocol = BootProtocol::kLimine;
  auto refused = LoadKernel(*Memory(), config);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("not a Limine executable"), std::string::npos);
  EXPECT_EQ(ParseBootProtocol("limine").value(), BootProtocol::kLimine);
}

TEST(PageTables, MapsLargeAndSmallPagesAndWidensSharedPages) {
  auto memory = Memory(16 * base::MiB);
  uint64_t next = 8 * base::MiB;
  auto tables = PageTableBuilder::Create(*memory, [&]() -> base::Result<uint64_t> {
    const uint64_t page = next;
    next += 4096;
    return page;
  });
  ASSERT_TRUE(tables);
  ASSERT_TRUE(tables->Map(0xffff800000000000, 0, 4 * base::MiB, kPteWrite, true));
  ASSERT_TRUE(tables->Map(0xffffffff80000000, 0x100000, 0x1000, kPteNoExecute, false));
  ASSERT_TRUE(tables->Map(0xffffffff80000000, 0x100000, 0x1000, kPteWrite | kPteNoExecute, false));
  ASSERT_TRUE(tables->Map(0xffffffff80001000, 0x101000, 0x1000, 0, false));
  ASSERT_TRUE(tables->Map(0xffffffff80001000, 0x101000, 0x1000, kPteNoExecute, false));
  auto t = *TranslateAddress(*memory, tables->root(), 0xffff800000312345);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->phys, 0x312345u);
  t = *TranslateAddress(*memory, tables->root(), 0xffffffff80000010);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->phys, 0x100010u);
  EXPECT_TRUE(t->write) << "the union of both mappings";
  EXPECT_FALSE(t->execute);
  t = *TranslateAddress(*memory, tables->root(), 0xffffffff80001000);
  ASSERT_TRUE(t);
  EXPECT_TRUE(t->execute) << "executable if either asks";
  EXPECT_FALSE(*TranslateAddress(*memory, tables->root(), 0xffffffff80002000));
  EXPECT_FALSE(tables->Map(0xffffffff80000000, 0x200000, 0x1000, 0, false)) << "another frame";
  EXPECT_FALSE(tables->Map(0x0000800000000000, 0, 0x1000, 0, false)) << "not canonical";
  EXPECT_FALSE(tables->Map(0x1000, 0x10, 0x1000, 0, false)) << "unaligned";
}

}  // namespace
}  // namespace firmware
