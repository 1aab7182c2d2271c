#include "vmm/insn_name.h"

#include <gtest/gtest.h>

#include <vector>

namespace vmm {
namespace {

std::string Name(std::vector<uint8_t> bytes) { return DescribeInstruction(bytes); }

TEST(InsnName, NamesWhatTheEmulatorCannotRun) {
  EXPECT_EQ(Name({0xdb, 0xe3}), "fninit (x87)");
  EXPECT_EQ(Name({0x9b, 0xdb, 0xe3}), "finit (x87)");
  EXPECT_EQ(Name({0xdb, 0xe2}), "fnclex (x87)");
  EXPECT_EQ(Name({0x0f, 0x77}), "emms (MMX)");
  EXPECT_EQ(Name({0x48, 0x0f, 0xc7, 0x0e}), "cmpxchg16b");
  EXPECT_EQ(Name({0xf0, 0x48, 0x0f, 0xc7, 0x0e}), "cmpxchg16b");  // lock prefix
  EXPECT_EQ(Name({0x0f, 0xc7, 0x0e}), "cmpxchg8b");
  EXPECT_EQ(Name({0x0f, 0x01, 0xca}), "clac");
  EXPECT_EQ(Name({0xcc}), "int3");
  EXPECT_EQ(Name({0x0f, 0xae, 0x27}), "xsave");
  EXPECT_EQ(Name({0x48, 0x0f, 0xae, 0x2f}), "xrstor");
  EXPECT_EQ(Name({0x0f, 0xae, 0x00}), "fxsave");
  EXPECT_EQ(Name({0xc5, 0xf8, 0x77}), "AVX (VEX-encoded) instruction");
  EXPECT_EQ(Name({0x66, 0x0f, 0x6f, 0x00}), "SSE/MMX instruction");
}

TEST(InsnName, UnknownOrEmptyGivesNothing) {
  EXPECT_EQ(Name({}), "");
  EXPECT_EQ(Name({0x90}), "");
  EXPECT_EQ(Name({0x66, 0x66}), "");
  EXPECT_EQ(Name({0x0f}), "");
  EXPECT_EQ(Name({0x0f, 0xae}), "");
}

TEST(InsnName, HexBytes) {
  std::vector<uint8_t> bytes = {0x0f, 0x0b, 0xff};
  EXPECT_EQ(HexBytes(bytes), "0f 0b ff");
  EXPECT_EQ(HexBytes(bytes, 2), "0f 0b");
}

}  // namespace
}  // namespace vmm
