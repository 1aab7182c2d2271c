// The AML encoder (firmware/aml.h): each term's bytes against the encoding
// ACPI 6.5 §20.2 and §6.4 give for it.
#include "firmware/aml.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace firmware::aml {
namespace {

Bytes B(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values) out.push_back(static_cast<uint8_t>(v));
  return out;
}

TEST(AmlPkgLength, OneByteUpTo63IncludingItself) {
  EXPECT_EQ(*PkgLength(0), B({0x01}));
  EXPECT_EQ(*PkgLength(62), B({0x3f}));
}

TEST(AmlPkgLength, LongerLengthsUseFollowBytesAndCountThem) {
  EXPECT_EQ(*PkgLength(63), B({0x41, 0x04}));                   // 65 = 0x041
  EXPECT_EQ(*PkgLength(4093), B({0x4f, 0xff}));                 // 4095 = 0xfff
  EXPECT_EQ(*PkgLength(4094), B({0x81, 0x00, 0x01}));           // 4097 = 0x1001
  EXPECT_EQ(*PkgLength(0xffffc), B({0x8f, 0xff, 0xff}));        // 0xfffff
  EXPECT_EQ(*PkgLength(0xffffd), B({0xc1, 0x00, 0x00, 0x01}));  // 0x100001
  EXPECT_EQ(*PkgLength(0xffffe), B({0xc2, 0x00, 0x00, 0x01}));
  EXPECT_EQ(*PkgLength(kMaxPkgLength - 4), B({0xcf, 0xff, 0xff, 0xff}));
}

TEST(AmlPkgLength, TooLongIsAnError) {
  auto result = PkgLength(kMaxPkgLength);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().message().find("PkgLength"), std::string::npos);
  EXPECT_FALSE(PkgLength(kMaxPkgLength - 3));  // 2^28 with its 4 bytes
  EXPECT_FALSE(PkgLength(UINT64_MAX));
}

TEST(AmlNameString, SegmentsArePaddedAndPrefixed) {
  EXPECT_EQ(*NameString("_SB"), B({'_', 'S', 'B', '_'}));
  EXPECT_EQ(*NameString("\\_SB"), B({'\\', '_', 'S', 'B', '_'}));
  EXPECT_EQ(*NameString("\\_SB.COM1"), B({'\\', 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1'}));
  EXPECT_EQ(*NameString("A.B.C"),
            B({0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_'}));
  EXPECT_EQ(*NameString("^^FOO"), B({'^', '^', 'F', 'O', 'O', '_'}));
  EXPECT_EQ(*NameString("\\"), B({'\\', 0x00}));
}

TEST(AmlNameString, BadNamesAreRejectedByName) {
  for (const char* bad : {"", "^", "1ABC", "ABCDE", "com1", "A..B", "A.", "\\.A", "A-B", "\\^A"}) {
    auto result = NameString(bad);
    EXPECT_FALSE(result) << bad;
    if (!result) {
      EXPECT_NE(result.error().message().find("AML name"), std::string::npos);
    }
  }
}

TEST(AmlInteger, ShortestEncoding) {
  EXPECT_EQ(Integer(0), B({0x00}));
  EXPECT_EQ(Integer(1), B({0x01}));
  EXPECT_EQ(Integer(2), B({0x0a, 0x02}));
  EXPECT_EQ(Integer(0xff), B({0x0a, 0xff}));
  EXPECT_EQ(Integer(0x100), B({0x0b, 0x00, 0x01}));
  EXPECT_EQ(Integer(0xffff), B({0x0b, 0xff, 0xff}));
  EXPECT_EQ(Integer(0x10000), B({0x0c, 0x00, 0x00, 0x01, 0x00}));
  EXPECT_EQ(Integer(0xffffffff), B({0x0c, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(Integer(0x100000000), B({0x0e, 0, 0, 0, 0, 1, 0, 0, 0}));
  EXPECT_EQ(Integer(UINT64_MAX), B({0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  EXPECT_EQ(DWord(1), B({0x0c, 0x01, 0x00, 0x00, 0x00}));
}

TEST(AmlString, AsciiWithNul) {
  EXPECT_EQ(*String("LNRO0005"), B({0x0d, 'L', 'N', 'R', 'O', '0', '0', '0', '5', 0}));
  EXPECT_EQ(*String(""), B({0x0d, 0}));
  EXPECT_FALSE(String("caf\xc3\xa9"));
  EXPECT_FALSE(String(std::string_view("a\0b", 3)));
}

TEST(AmlEisaId, CompressedAsAcpiTablesCarryIt) {
  // EISAID("PNP0501") is 0x0105D041 and EISAID("PNP0A03") 0x030AD041, the
  // values every PC DSDT carries.
  EXPECT_EQ(*EisaId("PNP0501"), B({0x0c, 0x41, 0xd0, 0x05, 0x01}));
  EXPECT_EQ(*EisaId("PNP0A03"), B({0x0c, 0x41, 0xd0, 0x0a, 0x03}));
  for (const char* bad : {"pnp0501", "PNP050G", "PNP05", "PNP05011", "P1P0501", "PNP0a03"}) {
    auto result = EisaId(bad);
    EXPECT_FALSE(result) << bad;
    if (!result) {
      EXPECT_NE(result.error().message().find(bad), std::string::npos);
    }
  }
}

TEST(AmlName, NameOpNameValue) {
  EXPECT_EQ(*Name("_UID", Integer(1)), B({0x08, '_', 'U', 'I', 'D', 0x01}));
  EXPECT_FALSE(Name("_uid", Integer(1)));
}

TEST(AmlDevice, ExtOpDeviceOpPkgLengthNameBody) {
  EXPECT_EQ(*Device("COM1", {}), B({0x5b, 0x82, 0x05, 'C', 'O', 'M', '1'}));
  const Bytes body = *Name("_UID", Integer(0));
  EXPECT_EQ(*Device("V000", body),
            B({0x5b, 0x82, 0x0b, 'V', '0', '0', '0', 0x08, '_', 'U', 'I', 'D', 0x00}));
  EXPECT_FALSE(Device("TOOLONG", {}));
}

TEST(AmlScope, ScopeOpPkgLengthNameBody) {
  EXPECT_EQ(*Scope("\\_SB", {}), B({0x10, 0x06, '\\', '_', 'S', 'B', '_'}));
  const Bytes big(100, 0xa5);
  const Bytes scope = *Scope("\\_SB", big);
  ASSERT_EQ(scope.size(), 1u + 2 + 5 + 100);
  EXPECT_EQ(scope[1], 0x40 | ((107 & 0xf)));  // 2-byte PkgLength of 107 = 0x6b
  EXPECT_EQ(scope[2], 107 >> 4);
}

TEST(AmlResources, DescriptorBytes) {
  EXPECT_EQ(Io(0x3f8, 0x3f8, 1, 8), B({0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08}));
  EXPECT_EQ(*IrqNoFlags(4), B({0x22, 0x10, 0x00}));
  EXPECT_EQ(*IrqNoFlags(15), B({0x22, 0x00, 0x80}));
  EXPECT_FALSE(IrqNoFlags(16));
  EXPECT_EQ(Memory32Fixed(true, 0xd0000000, 0x1000),
            B({0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00, 0x10, 0x00, 0x00}));
  EXPECT_EQ(Memory32Fixed(false, 1, 2), B({0x86, 0x09, 0x00, 0x00, 1, 0, 0, 0, 2, 0, 0, 0}));
  EXPECT_EQ(Interrupt(5), B({0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00}));
  EXPECT_EQ(Interrupt(0x12345678, {.edge = false, .active_low = true, .shared = true}),
            B({0x89, 0x06, 0x00, 0x0d, 0x01, 0x78, 0x56, 0x34, 0x12}));
}

TEST(AmlResources, TemplateIsABufferEndingInAnEndTag) {
  EXPECT_EQ(*ResourceTemplate({}), B({0x11, 0x05, 0x0a, 0x02, 0x79, 0x00}));
  const Bytes irq = *IrqNoFlags(4);
  EXPECT_EQ(*ResourceTemplate(irq), B({0x11, 0x08, 0x0a, 0x05, 0x22, 0x10, 0x00, 0x79, 0x00}));
}

}  // namespace
}  // namespace firmware::aml
