#include "vmm/insn_assist.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace vmm {
namespace {

constexpr int kRax = 0, kRcx = 1, kRsp = 4, kRbp = 5, kRsi = 6, kR12 = 12, kR13 = 13;

AssistCpu LongMode() {
  AssistCpu cpu;
  cpu.long_mode = true;
  for (int r = 0; r < 16; ++r) cpu.gpr[static_cast<size_t>(r)] = 0x1000u * (r + 1);
  cpu.rip = 0xffffffff81000000ull;
  cpu.seg_base[4] = 0x7f0000000000ull;      // FS
  cpu.seg_base[5] = 0xffff888000000000ull;  // GS
  return cpu;
}

std::optional<AssistInsn> Decode(std::vector<uint8_t> bytes, const AssistCpu& cpu = LongMode()) {
  return DecodeAssist(bytes, cpu);
}

TEST(InsnAssist, DecodesLdmxcsrWithSibAndDisp8) {
  // ldmxcsr 0x4(%rsp): 0f ae 54 24 04 (Linux 6.1 kernel_fpu_begin_mask)
  auto insn = Decode({0x0f, 0xae, 0x54, 0x24, 0x04, 0x83, 0xe3});
  ASSERT_TRUE(insn);
  EXPECT_EQ(insn->op, AssistOp::kLdmxcsr);
  EXPECT_EQ(insn->length, 5);
  EXPECT_EQ(insn->linear, LongMode().gpr[kRsp] + 4);
}

TEST(InsnAssist, DecodesStmxcsrAndRexForms) {
  auto st = Decode({0x0f, 0xae, 0x19});  // stmxcsr (%rcx)
  ASSERT_TRUE(st);
  EXPECT_EQ(st->op, AssistOp::kStmxcsr);
  EXPECT_EQ(st->linear, LongMode().gpr[kRcx]);
  EXPECT_EQ(st->length, 3);

  auto r12 = Decode({0x41, 0x0f, 0xae, 0x5c, 0x24, 0x10});  // stmxcsr 0x10(%r12)
  ASSERT_TRUE(r12);
  EXPECT_EQ(r12->op, AssistOp::kStmxcsr);
  EXPECT_EQ(r12->linear, LongMode().gpr[kR12] + 0x10);
  EXPECT_EQ(r12->length, 6);
}

TEST(InsnAssist, RipRelativeCountsFromTheNextInstruction) {
  // ldmxcsr 0x100(%rip): 0f ae 15 00 01 00 00, 7 bytes
  auto insn = Decode({0x0f, 0xae, 0x15, 0x00, 0x01, 0x00, 0x00});
  ASSERT_TRUE(insn);
  EXPECT_EQ(insn->length, 7);
  EXPECT_EQ(insn->linear, LongMode().rip + 7 + 0x100);
}

TEST(InsnAssist, NegativeDisp32IndexScaleAndGsOverride) {
  // stmxcsr %gs:-0x10(%rbp,%rsi,8): 65 0f ae 9c f5 f0 ff ff ff
  auto insn = Decode({0x65, 0x0f, 0xae, 0x9c, 0xf5, 0xf0, 0xff, 0xff, 0xff});
  ASSERT_TRUE(insn);
  EXPECT_EQ(insn->length, 9);
  const AssistCpu cpu = LongMode();
  EXPECT_EQ(insn->linear, cpu.seg_base[5] + cpu.gpr[kRbp] + cpu.gpr[kRsi] * 8 - 0x10);
}

TEST(InsnAssist, SibWithoutBaseAndRexExtendedRegisters) {
  // ldmxcsr 0x20(,%rax,4): 0f ae 14 85 20 00 00 00
  auto insn = Decode({0x0f, 0xae, 0x14, 0x85, 0x20, 0x00, 0x00, 0x00});
  ASSERT_TRUE(insn);
  EXPECT_EQ(insn->linear, LongMode().gpr[kRax] * 4 + 0x20);
  // ldmxcsr (%r13): r13 as a base needs mod=01 disp8 0: 41 0f ae 55 00
  auto r13 = Decode({0x41, 0x0f, 0xae, 0x55, 0x00});
  ASSERT_TRUE(r13);
  EXPECT_EQ(r13->linear, LongMode().gpr[kR13]);
}

TEST(InsnAssist, AddressSizeOverrideTruncates) {
  AssistCpu cpu = LongMode();
  cpu.gpr[kRcx] = 0x1234567890ull;
  auto insn = Decode({0x67, 0x0f, 0xae, 0x11}, cpu);  // ldmxcsr (%ecx)
  ASSERT_TRUE(insn);
  EXPECT_EQ(insn->linear, 0x34567890ull);
}

TEST(InsnAssist, ProtectedModeUsesSegmentBasesAndAbsoluteDisp32) {
  AssistCpu cpu;
  cpu.long_mode = false;
  cpu.default32 = true;
  cpu.seg_base[3] = 0x10000;  // DS
  cpu.seg_base[2] = 0x20000;  // SS
  cpu.gpr[kRbp] = 0x100;
  auto abs = Decode({0x0f, 0xae, 0x15, 0x00, 0x30, 0x00, 0x00}, cpu);  // ldmxcsr 0x3000
  ASSERT_TRUE(abs);
  EXPECT_EQ(abs->linear, 0x13000u);
  auto stack = Decode({0x0f, 0xae, 0x55, 0x08}, cpu);  // ldmxcsr 8(%ebp): SS
  ASSERT_TRUE(stack);
  EXPECT_EQ(stack->linear, 0x20108u);
}

TEST(InsnAssist, SixteenBitAddressingIsLeftToKvm) {
  AssistCpu cpu;  // protected mode with a 16-bit code segment (CS.D clear)
  EXPECT_FALSE(Decode({0x0f, 0xae, 0x16, 0x00, 0x30}, cpu));
  auto with_67 = Decode({0x67, 0x0f, 0xae, 0x15, 0x00, 0x30, 0x00, 0x00}, cpu);  // 32-bit form
  ASSERT_TRUE(with_67);
  EXPECT_EQ(with_67->linear, 0x3000u);
  cpu.default32 = true;
  EXPECT_FALSE(Decode({0x67, 0x0f, 0xae, 0x16, 0x00, 0x30}, cpu)) << "67 in 32-bit code: 16-bit";
}

TEST(InsnAssist, RejectsEverythingElse) {
  EXPECT_FALSE(Decode({0x0f, 0xae, 0xf0}));              // mfence (register form)
  EXPECT_FALSE(Decode({0x0f, 0xae, 0x38}));              // clflush (/7)
  EXPECT_FALSE(Decode({0x0f, 0xae, 0x28}));              // xrstor (/5)
  EXPECT_FALSE(Decode({0x66, 0x0f, 0xae, 0x38}));        // clflushopt
  EXPECT_FALSE(Decode({0xf3, 0x48, 0x0f, 0xae, 0xc0}));  // rdfsbase
  EXPECT_FALSE(Decode({0xf0, 0x0f, 0xae, 0x10}));        // lock: #UD
  EXPECT_FALSE(Decode({0x48, 0x0f, 0xc7, 0x0e}));        // cmpxchg16b
  EXPECT_FALSE(Decode({0x0f, 0xae, 0x54, 0x24}));        // cut short
  EXPECT_FALSE(Decode({}));
  std::vector<uint8_t> prefixes(20, 0x3e);  // longer than 15 bytes
  EXPECT_FALSE(Decode(prefixes));
}

// Page tables built in a GuestMemory: PML4 at 0x1000, PDPT 0x2000, PD 0x3000,
// PT 0x4000. Linear 0x400000 (PD[2] -> PT) maps 4 KiB pages; 0x200000 a 2 MiB page.
class PageWalkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto created = base::GuestMemory::Create(16 * 1024 * 1024);
    ASSERT_TRUE(created);
    memory_ = std::move(*created);
    Set(0x1000, 0x2000 | 7);               // PML4[0] -> PDPT, P|W|U
    Set(0x2000, 0x3000 | 7);               // PDPT[0] -> PD
    Set(0x3000 + 1 * 8, 0x200000 | 0x83);  // PD[1]: 2 MiB page, P|W, supervisor
    Set(0x3000 + 2 * 8, 0x4000 | 7);       // PD[2] -> PT
    Set(0x4000 + 0 * 8, 0x9000 | 7);       // 0x400000 -> 0x9000, user, writable
    Set(0x4000 + 1 * 8, 0xa000 | 5);       // 0x401000 -> 0xa000, user, read-only
    Set(0x4000 + 2 * 8, 0xb000 | 3);       // 0x402000 -> 0xb000, supervisor
    paging_.cr0 = (1ull << 31) | 1;        // PG|PE
    paging_.cr3 = 0x1000;
    paging_.cr4 = 1ull << 5;  // PAE
    paging_.efer = (1ull << 10) | (1ull << 8);
  }
  void Set(uint64_t gpa, uint64_t value) { ASSERT_TRUE(memory_->WriteObj(gpa, value)); }
  uint64_t GetEntry(uint64_t gpa) { return *memory_->ReadObj<uint64_t>(gpa); }
  PageWalk Walk(uint64_t linear, bool write) {
    auto walk = WalkGuestPage(*memory_, paging_, linear, write);
    EXPECT_TRUE(walk) << walk.error().message();
    return walk ? *walk : PageWalk{};
  }
  std::unique_ptr<base::GuestMemory> memory_;
  PagingState paging_;
};

TEST_F(PageWalkTest, TranslatesSmallAndLargePagesAndSetsAccessedDirty) {
  auto small = Walk(0x400123, true);
  ASSERT_TRUE(small.ok);
  EXPECT_EQ(small.gpa, 0x9123u);
  EXPECT_TRUE(GetEntry(0x4000) & (1u << 6)) << "dirty on the written leaf";
  EXPECT_TRUE(GetEntry(0x1000) & (1u << 5)) << "accessed on the PML4 entry";
  auto large = Walk(0x2abcde, false);
  ASSERT_TRUE(large.ok);
  EXPECT_EQ(large.gpa, 0x2abcdeu);
  EXPECT_FALSE(GetEntry(0x3008) & (1u << 6)) << "a read does not dirty";
}

TEST_F(PageWalkTest, NotPresentFaultsWithTheRightErrorCode) {
  auto walk = Walk(0x403000, true);
  EXPECT_FALSE(walk.ok);
  EXPECT_EQ(walk.error_code, 2u);  // not present, write, supervisor
  paging_.user = true;
  walk = Walk(0x40000000, false);  // PDPT[1] empty
  EXPECT_FALSE(walk.ok);
  EXPECT_EQ(walk.error_code, 4u);
}

TEST_F(PageWalkTest, UserCannotTouchSupervisorOrWriteReadOnly) {
  paging_.user = true;
  auto supervisor = Walk(0x402000, false);
  EXPECT_FALSE(supervisor.ok);
  EXPECT_EQ(supervisor.error_code, 1u | 4u);
  auto read_only = Walk(0x401000, true);
  EXPECT_FALSE(read_only.ok);
  EXPECT_EQ(read_only.error_code, 1u | 2u | 4u);
  EXPECT_TRUE(Walk(0x401000, false).ok);
}

TEST_F(PageWalkTest, SupervisorWritesHonourWpAndSmap) {
  EXPECT_TRUE(Walk(0x401000, true).ok) << "CR0.WP clear: supervisor may write read-only pages";
  paging_.cr0 |= 1ull << 16;
  EXPECT_FALSE(Walk(0x401000, true).ok);
  paging_.cr4 |= 1ull << 21;  // SMAP
  EXPECT_FALSE(Walk(0x400000, false).ok);
  paging_.rflags_ac = true;
  EXPECT_TRUE(Walk(0x400000, false).ok);
}

TEST_F(PageWalkTest, PagingOffIsIdentityAndBadTablesAreErrors) {
  PagingState off;
  auto walk = WalkGuestPage(*memory_, off, 0x123456, true);
  ASSERT_TRUE(walk);
  EXPECT_EQ(walk->gpa, 0x123456u);
  Set(0x1000 + 8, 0x7ff0000000ull | 7);  // PML4[1] -> beyond guest RAM
  auto bad = WalkGuestPage(*memory_, paging_, 1ull << 39, false);
  EXPECT_FALSE(bad);
}

}  // namespace
}  // namespace vmm
