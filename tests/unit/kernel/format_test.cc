#include "lib/format.h"

#include <gtest/gtest.h>

#include <string>

namespace {

template <typename... Args>
std::string F(const char* fmt, Args... args) {
  char buf[256];
  lib::FormatBuffer(buf, sizeof(buf), fmt, args...);
  return buf;
}

TEST(Format, PlainTextPassesThrough) { EXPECT_EQ(F("hello } world"), "hello } world"); }

TEST(Format, EmptyFormatGivesEmptyString) { EXPECT_EQ(F(""), ""); }

TEST(Format, DecimalSignedAndUnsigned) {
  EXPECT_EQ(F("{} {} {}", 0, -42, 18446744073709551615ull), "0 -42 18446744073709551615");
  EXPECT_EQ(F("{}", static_cast<long long>(INT64_MIN)), "-9223372036854775808");
}

TEST(Format, HexWithPrefixAndPadding) {
  EXPECT_EQ(F("{:x} {:#x} {:016x}", 255u, 255u, 0xdeadu), "ff 0xff 000000000000dead");
  EXPECT_EQ(F("0x{:016x}", UINT64_MAX), "0xffffffffffffffff");
}

TEST(Format, WidthAndLeftAlignment) {
  EXPECT_EQ(F("[{:5}]", 42), "[   42]");
  EXPECT_EQ(F("[{:<5}]", "ab"), "[ab   ]");
  EXPECT_EQ(F("[{:05}]", 42), "[00042]");
  EXPECT_EQ(F("[{:40}]", 1).size(), 42u);
}

TEST(Format, StringsCharsBoolsPointers) {
  const char* null_str = nullptr;
  EXPECT_EQ(F("{} {} {} {}", "s", 'c', true, null_str), "s c true (null)");
  EXPECT_EQ(F("{}", reinterpret_cast<void*>(0x1000)), "0x1000");
}

TEST(Format, EscapedBraceAndMissingArgument) {
  EXPECT_EQ(F("{{}} {}"), "{}} {?}");
  EXPECT_EQ(F("{} {}", 1), "1 {?}");
}

TEST(Format, UnterminatedFieldAtEnd) { EXPECT_EQ(F("a{", 7), "a7"); }

TEST(Format, BufferTruncatesAndReportsFullLength) {
  char buf[8];
  EXPECT_EQ(lib::FormatBuffer(buf, sizeof(buf), "{}-{}", 12345, 67890), 11u);
  EXPECT_STREQ(buf, "12345-6");
  EXPECT_EQ(lib::FormatBuffer(buf, 0, "xyz"), 3u);
}

}  // namespace
