#include "kernel/boot_info.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

namespace {

// 1 MiB of fake guest-physical memory.
class Mem final : public kernel::PhysView {
 public:
  Mem() : bytes(1 << 20, 0) {}
  const uint8_t* Map(uint64_t phys, uint64_t len) const override {
    if (phys > bytes.size() || len > bytes.size() - phys) return nullptr;
    return bytes.data() + phys;
  }
  template <typename T>
  void Put(uint64_t at, T v) {
    std::memcpy(&bytes[at], &v, sizeof(v));
  }
  void PutStr(uint64_t at, const char* s) { std::memcpy(&bytes[at], s, std::strlen(s) + 1); }
  std::vector<uint8_t> bytes;
};

constexpr uint64_t kZp = 0x7000;

void AddE820(Mem& m, int i, uint64_t addr, uint64_t size, uint32_t type) {
  const uint64_t e = kZp + kernel::kZpE820Table + 20 * static_cast<uint64_t>(i);
  m.Put(e, addr);
  m.Put(e + 8, size);
  m.Put(e + 16, type);
}

TEST(BootInfo, ZeroPageE820AndCmdline) {
  Mem m;
  m.Put<uint8_t>(kZp + kernel::kZpE820Entries, 3);
  AddE820(m, 0, 0, 0x9fc00, 1);
  AddE820(m, 1, 0x9fc00, 0x60400, 2);
  AddE820(m, 2, 0x100000, 0x7f00000, 1);
  m.Put<uint32_t>(kZp + kernel::kZpCmdLinePtr, 0x20000);
  m.PutStr(0x20000, "exit=3 hang");
  auto info = std::make_unique<kernel::BootInfo>();
  ASSERT_EQ(kernel::ParseZeroPage(m, kZp, info.get()), nullptr);
  EXPECT_EQ(info->source, kernel::BootInfo::Source::kZeroPage);
  ASSERT_EQ(info->region_count, 3u);
  EXPECT_EQ(info->regions[2].base, 0x100000u);
  EXPECT_EQ(info->regions[1].type, kernel::kMemReserved);
  EXPECT_STREQ(info->cmdline, "exit=3 hang");
  EXPECT_EQ(kernel::UsableBytes(*info), 0x9fc00u + 0x7f00000u);
  EXPECT_EQ(info->initrd.size, 0u);
}

TEST(BootInfo, ZeroPageWithoutEntriesIsAnError) {
  Mem m;
  auto info = std::make_unique<kernel::BootInfo>();
  EXPECT_NE(kernel::ParseZeroPage(m, kZp, info.get()), nullptr);
  EXPECT_NE(kernel::ParseZeroPage(m, (1 << 20) - 100, info.get()), nullptr);  // not readable
}

TEST(BootInfo, ZeroPageEntryCountClampedAndZeroSizesSkipped) {
  Mem m;
  m.Put<uint8_t>(kZp + kernel::kZpE820Entries, 255);  // more than the table holds
  AddE820(m, 0, 0x100000, 0x100000, 1);
  auto info = std::make_unique<kernel::BootInfo>();
  ASSERT_EQ(kernel::ParseZeroPage(m, kZp, info.get()), nullptr);
  EXPECT_EQ(info->region_count, 1u);  // the other 127 entries have size 0
}

TEST(BootInfo, WrappingEntryIsClamped) {
  Mem m;
  m.Put<uint8_t>(kZp + kernel::kZpE820Entries, 1);
  AddE820(m, 0, UINT64_MAX - 0xfff, 0x10000, 1);
  auto info = std::make_unique<kernel::BootInfo>();
  ASSERT_EQ(kernel::ParseZeroPage(m, kZp, info.get()), nullptr);
  EXPECT_EQ(info->regions[0].base + info->regions[0].size, UINT64_MAX);
}

TEST(BootInfo, LongCmdlineIsTruncated) {
  Mem m;
  m.Put<uint8_t>(kZp + kernel::kZpE820Entries, 1);
  AddE820(m, 0, 0, 0x1000, 1);
  m.Put<uint32_t>(kZp + kernel::kZpCmdLinePtr, 0x20000);
  std::memset(&m.bytes[0x20000], 'a', 5000);
  auto info = std::make_unique<kernel::BootInfo>();
  ASSERT_EQ(kernel::ParseZeroPage(m, kZp, info.get()), nullptr);
  EXPECT_TRUE(info->cmdline_truncated);
  EXPECT_EQ(std::strlen(info->cmdline), kernel::kCmdlineCapacity - 1);
}

constexpr uint64_t kSi = 0x6000;

void PutPvh(Mem& m, uint32_t magic, uint32_t version, uint32_t entries) {
  m.Put<uint32_t>(kSi, magic);
  m.Put<uint32_t>(kSi + 4, version);
  m.Put<uint64_t>(kSi + 24, 0x20000);  // cmdline_paddr
  m.Put<uint64_t>(kSi + 40, 0x6100);   // memmap_paddr
  m.Put<uint32_t>(kSi + 48, entries);
  m.PutStr(0x20000, "test=all");
  for (uint32_t i = 0; i < entries; ++i) {
    m.Put<uint64_t>(0x6100 + 24 * i, 0x100000ull * (i + 1));
    m.Put<uint64_t>(0x6100 + 24 * i + 8, 0x100000);
    m.Put<uint32_t>(0x6100 + 24 * i + 16, i == 1 ? 2 : 1);
  }
}

TEST(BootInfo, PvhMemmapAndCmdline) {
  Mem m;
  PutPvh(m, kernel::kPvhMagic, 1, 3);
  auto info = std::make_unique<kernel::BootInfo>();
  ASSERT_EQ(kernel::ParsePvh(m, kSi, info.get()), nullptr);
  EXPECT_EQ(info->source, kernel::BootInfo::Source::kPvh);
  ASSERT_EQ(info->region_count, 3u);
  EXPECT_EQ(info->regions[1].type, kernel::kMemReserved);
  EXPECT_STREQ(info->cmdline, "test=all");
  EXPECT_EQ(kernel::UsableBytes(*info), 0x200000u);
}

TEST(BootInfo, PvhBadMagicVersionZeroAndUnreadableMap) {
  Mem m;
  auto info = std::make_unique<kernel::BootInfo>();
  PutPvh(m, 0x12345678, 1, 1);
  EXPECT_NE(kernel::ParsePvh(m, kSi, info.get()), nullptr);
  PutPvh(m, kernel::kPvhMagic, 0, 1);
  EXPECT_NE(kernel::ParsePvh(m, kSi, info.get()), nullptr);
  PutPvh(m, kernel::kPvhMagic, 1, 0);
  EXPECT_NE(kernel::ParsePvh(m, kSi, info.get()), nullptr);
  PutPvh(m, kernel::kPvhMagic, 1, 1);
  m.Put<uint64_t>(kSi + 40, (1 << 20) - 10);  // map runs off memory
  EXPECT_NE(kernel::ParsePvh(m, kSi, info.get()), nullptr);
}

TEST(BootInfo, TypeNames) {
  EXPECT_STREQ(kernel::MemTypeName(1), "usable");
  EXPECT_STREQ(kernel::MemTypeName(2), "reserved");
  EXPECT_STREQ(kernel::MemTypeName(99), "unknown");
}

}  // namespace
