#include "firmware/cpu_setup.h"

#include <gtest/gtest.h>

#include <optional>

namespace firmware {
namespace {

using base::GiB;
using base::MiB;

// Walks 4-level paging as the CPU does (Intel SDM Vol. 3A §4.5) over guest
// memory; nullopt on a not-present entry.
std::optional<uint64_t> Translate(const base::GuestMemory& memory, uint64_t cr3, uint64_t va) {
  const uint64_t kAddressMask = 0x000ffffffffff000;
  uint64_t table = cr3 & kAddressMask;
  for (int level = 3; level >= 0; --level) {
    const uint64_t index = (va >> (12 + 9 * level)) & 0x1ff;
    auto entry = memory.ReadObj<uint64_t>(table + index * 8);
    if (!entry || (*entry & 1) == 0) return std::nullopt;
    if (level == 1 && (*entry & 0x80)) {  // 2 MiB page
      return (*entry & 0x000fffffffe00000) | (va & 0x1fffff);
    }
    if (level == 2 && (*entry & 0x80)) return std::nullopt;  // 1 GiB pages not expected
    table = *entry & kAddressMask;
    if (level == 0) return table | (va & 0xfff);
  }
  return std::nullopt;
}

std::unique_ptr<base::GuestMemory> Memory(uint64_t size = 64 * base::MiB) {
  return std::move(*base::GuestMemory::Create(size));
}

TEST(PageTables, IdentityMapFirstFourGiBWithTwoMiBPages) {
  auto memory = Memory();
  auto state = SetUpLongMode(*memory, 0x100000);
  ASSERT_TRUE(state);
  for (uint64_t va : {uint64_t{0}, uint64_t{0x1234}, uint64_t{0x100000}, 64 * base::MiB - 1,
                      base::GiB + 0x5678, 3 * base::GiB, uint64_t{0xfee00000}, uint64_t{0xfec00123},
                      4 * base::GiB - 1, 4 * base::GiB - 2 * base::MiB}) {
    auto pa = Translate(*memory, state->cr3, va);
    ASSERT_TRUE(pa) << std::hex << va;
    EXPECT_EQ(*pa, va);
  }
  EXPECT_FALSE(Translate(*memory, state->cr3, 4 * base::GiB));
  EXPECT_FALSE(Translate(*memory, state->cr3, 0xffffffff81000000));
}

TEST(PageTables, EntriesArePresentWritableAndTwoMiB) {
  auto memory = Memory();
  ASSERT_TRUE(WriteIdentityPageTables(*memory));
  EXPECT_EQ(*memory->ReadObj<uint64_t>(kPml4Address), kPdptAddress | 0x3);
  for (uint64_t i = 0; i < 4; ++i) {
    EXPECT_EQ(*memory->ReadObj<uint64_t>(kPdptAddress + i * 8),
              (kPageDirectoriesAddress + i * 0x1000) | 0x3);
  }
  EXPECT_EQ(*memory->ReadObj<uint64_t>(kPdptAddress + 4 * 8), 0u);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(kPageDirectoriesAddress + 8), 2 * base::MiB | 0x83);
  EXPECT_LE(kPageTablesEnd, base::kCmdline);
}

TEST(Gdt, DescriptorsMatchLinuxBootGdt) {
  // Linux arch/x86/boot/compressed/head_64.S boot GDT values.
  EXPECT_EQ(GdtEntry(0xa09b, 0, 0xfffff), 0x00af9b000000ffffu);
  EXPECT_EQ(GdtEntry(0xc09b, 0, 0xfffff), 0x00cf9b000000ffffu);
  EXPECT_EQ(GdtEntry(0xc093, 0, 0xfffff), 0x00cf93000000ffffu);
  EXPECT_EQ(GdtEntry(0x008b, 0x12345678, 0x67), 0x12008b345678'0067u);
}

TEST(Gdt, SegmentFromDescriptorDecodesEveryField) {
  const SegmentState code = SegmentFromDescriptor(0x10, 0x00af9b000000ffff);
  EXPECT_EQ(code.base, 0u);
  EXPECT_EQ(code.limit, 0xffffffffu);
  EXPECT_EQ(code.selector, 0x10);
  EXPECT_EQ(code.type, 0xb);
  EXPECT_EQ(code.present, 1);
  EXPECT_EQ(code.dpl, 0);
  EXPECT_EQ(code.db, 0);
  EXPECT_EQ(code.s, 1);
  EXPECT_EQ(code.l, 1);
  EXPECT_EQ(code.g, 1);
  EXPECT_EQ(code.unusable, 0);
  const SegmentState tss = SegmentFromDescriptor(0x20, GdtEntry(0x008b, 0x12345678, 0x67));
  EXPECT_EQ(tss.base, 0x12345678u);
  EXPECT_EQ(tss.limit, 0x67u);
  EXPECT_EQ(tss.g, 0);
  EXPECT_EQ(tss.s, 0);
}

TEST(LongMode, StateMatchesGdtInMemory) {
  auto memory = Memory();
  auto state = SetUpLongMode(*memory, 0x1000000);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->rip, 0x1000000u);
  EXPECT_EQ(state->rsp, base::kBootStackTop);
  EXPECT_EQ(state->rflags, 0x2u);
  EXPECT_EQ(state->cr0, 0x80000031u);
  EXPECT_EQ(state->cr3, base::kPageTables);
  EXPECT_EQ(state->cr4, 0x20u);
  EXPECT_EQ(state->efer, 0x500u);
  EXPECT_EQ(state->gdt.base, base::kGdtAddress);
  EXPECT_EQ(state->gdt.limit, 31);
  EXPECT_EQ(state->idt.base, base::kIdtAddress);
  EXPECT_EQ(state->idt.limit, 0);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(base::kGdtAddress), 0u);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(base::kGdtAddress + 8), 0u);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(base::kGdtAddress + 0x10), 0x00af9b000000ffffu);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(base::kGdtAddress + 0x18), 0x00cf93000000ffffu);
  EXPECT_EQ(state->cs.selector, 0x10);
  EXPECT_EQ(state->cs.l, 1);
  EXPECT_EQ(state->cs.db, 0);
  for (const SegmentState* data : {&state->ds, &state->es, &state->fs, &state->gs, &state->ss}) {
    EXPECT_EQ(data->selector, 0x18);
    EXPECT_EQ(data->type, 0x3);
    EXPECT_EQ(data->present, 1);
    EXPECT_EQ(data->s, 1);
    EXPECT_EQ(data->db, 1);
  }
  EXPECT_EQ(state->tr.type, 0xb);
  EXPECT_EQ(state->tr.present, 1);
  EXPECT_EQ(state->tr.s, 0);
}

TEST(ProtectedMode, FlatSegmentsAndPagingOff) {
  auto memory = Memory();
  auto state = SetUpProtectedMode(*memory, 0x100200);
  ASSERT_TRUE(state);
  EXPECT_EQ(state->rip, 0x100200u);
  EXPECT_EQ(state->cr0 & kCr0Pg, 0u);
  EXPECT_EQ(state->cr0 & kCr0Pe, kCr0Pe);
  EXPECT_EQ(state->cr4, 0u);
  EXPECT_EQ(state->efer, 0u);
  EXPECT_EQ(state->cs.db, 1);
  EXPECT_EQ(state->cs.l, 0);
  EXPECT_EQ(state->cs.limit, 0xffffffffu);
  EXPECT_EQ(state->ds.limit, 0xffffffffu);
  EXPECT_EQ(*memory->ReadObj<uint64_t>(base::kGdtAddress + 0x10), 0x00cf9b000000ffffu);
}

}  // namespace
}  // namespace firmware
