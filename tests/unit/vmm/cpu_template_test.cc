#include "vmm/cpu_template.h"

#include <gtest/gtest.h>

namespace vmm {
namespace {

kvm_cpuid_entry2 Entry(uint32_t function, uint32_t index, uint32_t eax, uint32_t ebx, uint32_t ecx,
                       uint32_t edx) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = index;
  e.eax = eax;
  e.ebx = ebx;
  e.ecx = ecx;
  e.edx = edx;
  return e;
}

std::vector<kvm_cpuid_entry2> FullHost() {
  return {Entry(0x1, 0, 0x806f8, 0xff000800, 0xffffffff, 0xffffffff),
          Entry(0x7, 0, 1, 0xffffffff, 0xffffffff, 0xffffffff),
          Entry(0xb, 0, 1, 2, 0x100, 7),
          Entry(0xb, 1, 4, 8, 0x201, 7),
          Entry(0xd, 0, 0x7, 0x340, 0x340, 0),
          Entry(0x80000001, 0, 0, 0, 0xffffffff, 0xffffffff)};
}

const kvm_cpuid_entry2& Find(const std::vector<kvm_cpuid_entry2>& v, uint32_t f, uint32_t i = 0) {
  for (const auto& e : v)
    if (e.function == f && e.index == i) return e;
  static kvm_cpuid_entry2 none{};
  return none;
}

TEST(CpuTemplate, EmulatedHidesWhatTheEmulatorCannotRun) {
  auto cpuid = FullHost();
  ApplyCpuTemplate(CpuTemplate::kEmulated, 0, 1, cpuid);
  const auto& leaf1 = Find(cpuid, 1);
  EXPECT_EQ(leaf1.ecx & (1u << 13), 0u) << "CX16";
  EXPECT_EQ(leaf1.ecx & (1u << 26), 0u) << "XSAVE";
  EXPECT_EQ(leaf1.ecx & (1u << 28), 0u) << "AVX";
  EXPECT_EQ(leaf1.ecx & (1u << 30), 0u) << "RDRAND";
  EXPECT_EQ(leaf1.ecx & (1u << 17), 0u) << "PCID";
  EXPECT_NE(leaf1.ecx & (1u << 21), 0u) << "x2APIC stays";
  EXPECT_NE(leaf1.ecx & (1u << 31), 0u) << "hypervisor bit";
  const auto& leaf7 = Find(cpuid, 7);
  EXPECT_EQ(leaf7.ebx, 0u) << "SMEP, SMAP, FSGSBASE, AVX2, ERMS... hidden";
  EXPECT_EQ(leaf7.ecx, 0u) << "PKU hidden";
  EXPECT_EQ(Find(cpuid, 0xd).eax, 0u) << "no XSAVE leaf";
}

TEST(CpuTemplate, HostKeepsFeaturesButNormalisesTopology) {
  auto cpuid = FullHost();
  ApplyCpuTemplate(CpuTemplate::kHost, 0, 1, cpuid);
  const auto& leaf1 = Find(cpuid, 1);
  EXPECT_NE(leaf1.ecx & (1u << 13), 0u);
  EXPECT_EQ(leaf1.ebx >> 24, 0u);
  EXPECT_EQ((leaf1.ebx >> 16) & 0xff, 1u);
}

TEST(CpuTemplate, ApicIdsFollowTheVcpu) {
  auto cpuid = FullHost();
  ApplyCpuTemplate(CpuTemplate::kHost, 3, 4, cpuid);
  EXPECT_EQ(Find(cpuid, 1).ebx >> 24, 3u);
  EXPECT_EQ(Find(cpuid, 0xb, 0).edx, 3u);
  EXPECT_EQ(Find(cpuid, 0xb, 1).ebx, 4u);
  EXPECT_EQ(Find(cpuid, 0xb, 1).eax, 2u);
}

TEST(CpuTemplate, NoOverridesWhenKvmKeepsTheTable) {
  auto set = FullHost();
  ApplyCpuTemplate(CpuTemplate::kEmulated, 0, 1, set);
  EXPECT_TRUE(FindCpuidOverrides(set, set).empty());
}

TEST(CpuTemplate, OverridesNameTheBitsKvmPutBack) {
  auto set = FullHost();
  ApplyCpuTemplate(CpuTemplate::kEmulated, 0, 1, set);
  auto held = set;
  // As seen on a software KVM: XSAVE (leaf 1 ECX bit 26) and SMEP (leaf 7 EBX
  // bit 7) come back; HTT, OSXSAVE and the subleaf count are not flags.
  for (auto& e : held) {
    if (e.function == 0x1) e.ecx |= (1u << 26) | (1u << 27), e.edx |= 1u << 28;
    if (e.function == 0x7) e.ebx |= 1u << 7, e.eax = 2;
  }
  auto overrides = FindCpuidOverrides(set, held);
  ASSERT_EQ(overrides.size(), 2u);
  EXPECT_EQ(overrides[0].function, 0x1u);
  EXPECT_EQ(overrides[0].reg, 'c');
  EXPECT_EQ(overrides[0].added_bits, 1u << 26);
  EXPECT_EQ(overrides[1].function, 0x7u);
  EXPECT_EQ(overrides[1].index, 0u);
  EXPECT_EQ(overrides[1].reg, 'b');
  EXPECT_EQ(overrides[1].added_bits, 1u << 7);
}

TEST(CpuTemplate, NamesParse) {
  EXPECT_EQ(*ParseCpuTemplate("host"), CpuTemplate::kHost);
  EXPECT_EQ(*ParseCpuTemplate("emulated"), CpuTemplate::kEmulated);
  EXPECT_EQ(*ParseCpuTemplate("auto"), CpuTemplate::kAuto);
  EXPECT_FALSE(ParseCpuTemplate("fast"));
  EXPECT_NE(ResolveCpuTemplate(CpuTemplate::kAuto), CpuTemplate::kAuto);
}

TEST(CpuTemplate, BootMsrsEnableMtrrsAndFastStrings) {
  auto msrs = BootMsrs();
  bool mtrr = false, misc = false;
  for (auto [index, value] : msrs) {
    if (index == 0x2ff) mtrr = value == ((1u << 11) | 6);
    if (index == 0x1a0) misc = value == 1;
  }
  EXPECT_TRUE(mtrr);
  EXPECT_TRUE(misc);
}

}  // namespace
}  // namespace vmm
