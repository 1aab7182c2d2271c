#include "vmm/gdb/registers.h"

#include <gtest/gtest.h>

#include <regex>

namespace vmm::gdb {
namespace {

TEST(GdbRegisters, DescriptionNamesEveryRegisterInOrder) {
  const std::string xml(TargetXml());
  EXPECT_NE(xml.find("<architecture>i386:x86-64</architecture>"), std::string::npos);
  std::regex reg(R"re(<reg name="([a-z0-9_]+)" bitsize="(\d+)")re");
  std::vector<std::string> names;
  size_t n = 0;
  for (auto it = std::sregex_iterator(xml.begin(), xml.end(), reg); it != std::sregex_iterator();
       ++it, ++n) {
    names.push_back((*it)[1]);
    EXPECT_EQ(std::stoul((*it)[2]) / 8, RegisterSize(n)) << (*it)[1];
  }
  ASSERT_EQ(names.size(), kRegisterCount);
  EXPECT_EQ(names[0], "rax");
  EXPECT_EQ(names[16], "rip");
  EXPECT_EQ(names[17], "eflags");
  EXPECT_EQ(names[24], "st0");
  EXPECT_EQ(names[39], "fop");
  EXPECT_EQ(names[40], "fs_base");
  EXPECT_EQ(names[45], "cr3");
  EXPECT_EQ(names[48], "efer");
  EXPECT_EQ(RegisterSize(kRegisterCount), 0u);
}

TEST(GdbRegisters, EncodeDecodeRoundTrip) {
  X86Registers regs;
  for (size_t i = 0; i < 16; ++i) regs.gpr[i] = 0x0101010101010101ull * (i + 1);
  regs.rip = 0xffffffff81000000;
  regs.eflags = 0x246;
  regs.segment = {0x10, 0x18, 0x18, 0x18, 0, 0};
  regs.st[3][9] = 0x40;
  regs.x87_control[0] = 0x37f;
  regs.fs_base = 0x1234;
  regs.cr3 = 0x9000;
  regs.efer = 0xd01;
  const std::string hex = EncodeRegisters(regs);
  size_t total = 0;
  for (size_t n = 0; n < kRegisterCount; ++n) total += RegisterSize(n);
  EXPECT_EQ(hex.size(), total * 2);
  // Little-endian: rax = 0x0101010101010101 then rbx = 0x0202...
  EXPECT_EQ(hex.substr(0, 32), "01010101010101010202020202020202");
  X86Registers back;
  ASSERT_TRUE(DecodeRegisters(hex, back));
  EXPECT_EQ(EncodeRegisters(back), hex);
  EXPECT_EQ(back.efer, 0xd01u);
  EXPECT_EQ(back.st[3][9], 0x40);
}

TEST(GdbRegisters, BadPacketsChangeNothing) {
  X86Registers regs;
  regs.rip = 42;
  const std::string hex = EncodeRegisters(regs);
  EXPECT_FALSE(DecodeRegisters(hex.substr(2), regs));
  EXPECT_FALSE(DecodeRegisters(hex + "00", regs));
  std::string bad = hex;
  bad[10] = 'x';
  EXPECT_FALSE(DecodeRegisters(bad, regs));
  EXPECT_EQ(regs.rip, 42u);
  EXPECT_FALSE(DecodeRegister(regs, kRegisterCount, "00"));
  EXPECT_FALSE(DecodeRegister(regs, 16, "0010"));  // rip is 8 bytes
  ASSERT_TRUE(DecodeRegister(regs, 16, "0010000000000000"));
  EXPECT_EQ(regs.rip, 0x1000u);
  EXPECT_EQ(EncodeRegister(regs, 17), "00000000");
  EXPECT_FALSE(EncodeRegister(regs, 49));
}

}  // namespace
}  // namespace vmm::gdb
