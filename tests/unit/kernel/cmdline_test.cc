#include "lib/cmdline.h"

#include <gtest/gtest.h>

#include <string>

#include "lib/string.h"

namespace {

TEST(Cmdline, FlagsAndKeysAreWords) {
  const lib::Cmdline c("  triple exit=3\thang ");
  EXPECT_TRUE(c.Has("triple"));
  EXPECT_TRUE(c.Has("exit"));
  EXPECT_TRUE(c.Has("hang"));
  EXPECT_FALSE(c.Has("tri"));
  EXPECT_FALSE(c.Has("exit=3"));
}

TEST(Cmdline, GetReturnsValueAfterFirstEquals) {
  const lib::Cmdline c("virtio_mmio.device=4K@0xd0000000:5 fault=gp");
  const char* v;
  size_t n;
  ASSERT_TRUE(c.Get("virtio_mmio.device", &v, &n));
  EXPECT_EQ(std::string(v, n), "4K@0xd0000000:5");
  EXPECT_TRUE(c.ValueIs("fault", "gp"));
  EXPECT_FALSE(c.ValueIs("fault", "g"));
  EXPECT_FALSE(c.Get("triple", &v, &n));
}

TEST(Cmdline, FlagWithoutValueHasNoValue) {
  const lib::Cmdline c("bench");
  const char* v;
  size_t n;
  EXPECT_TRUE(c.Has("bench"));
  EXPECT_FALSE(c.Get("bench", &v, &n));
  EXPECT_EQ(c.GetU64("bench", 1000), 1000u);
}

TEST(Cmdline, NumbersDecimalHexAndRejects) {
  const lib::Cmdline c("a=42 b=0x2A c=junk d= e=18446744073709551616 f=18446744073709551615");
  EXPECT_EQ(c.GetU64("a", 0), 42u);
  EXPECT_EQ(c.GetU64("b", 0), 42u);
  EXPECT_EQ(c.GetU64("c", 7), 7u);
  EXPECT_EQ(c.GetU64("d", 7), 7u);
  EXPECT_EQ(c.GetU64("e", 7), 7u);  // overflow
  EXPECT_EQ(c.GetU64("f", 7), UINT64_MAX);
}

TEST(Cmdline, EmptyAndNull) {
  EXPECT_FALSE(lib::Cmdline("").Has("x"));
  EXPECT_FALSE(lib::Cmdline().Has("x"));
  EXPECT_STREQ(lib::Cmdline().text(), "");
}

TEST(String, EqualNComparesWholeWord) {
  EXPECT_TRUE(lib::EqualN("abc", 3, "abc"));
  EXPECT_FALSE(lib::EqualN("abc", 2, "abc"));
  EXPECT_FALSE(lib::EqualN("abc", 3, "ab"));
  EXPECT_TRUE(lib::EqualN("", 0, ""));
}

}  // namespace
