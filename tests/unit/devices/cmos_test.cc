#include "devices/legacy/cmos.h"

#include <gtest/gtest.h>

namespace devices {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;
// 2024-02-29 13:05:09 UTC, a Thursday.
constexpr std::time_t kFixedTime = 1709211909;

class CmosTest : public ::testing::Test {
 protected:
  uint8_t Get(Cmos& cmos, uint8_t index) {
    cmos.Write({0x70, 0, 0}, std::span(&index, 1));
    uint8_t value = 0;
    cmos.Read({0x71, 1, 0}, std::span(&value, 1));
    return value;
  }
  void Set(Cmos& cmos, uint8_t index, uint8_t value) {
    cmos.Write({0x70, 0, 0}, std::span(&index, 1));
    cmos.Write({0x71, 1, 0}, std::span(&value, 1));
  }
  std::time_t now_ = kFixedTime;
  Cmos cmos_{128 * kMiB, 0, [this] { return now_; }};
};

TEST_F(CmosTest, TimeReadsInBcdByDefault) {
  EXPECT_EQ(Get(cmos_, Cmos::kSeconds), 0x09);
  EXPECT_EQ(Get(cmos_, Cmos::kMinutes), 0x05);
  EXPECT_EQ(Get(cmos_, Cmos::kHours), 0x13);
  EXPECT_EQ(Get(cmos_, Cmos::kWeekday), 0x05);  // Thursday, 1 = Sunday
  EXPECT_EQ(Get(cmos_, Cmos::kDayOfMonth), 0x29);
  EXPECT_EQ(Get(cmos_, Cmos::kMonth), 0x02);
  EXPECT_EQ(Get(cmos_, Cmos::kYear), 0x24);
  EXPECT_EQ(Get(cmos_, Cmos::kCentury), 0x20);
}

TEST_F(CmosTest, TimeReadsInBinaryWhenDmIsSet) {
  Set(cmos_, Cmos::kRegB, Cmos::kRegB24Hour | Cmos::kRegBBinary);
  EXPECT_EQ(Get(cmos_, Cmos::kSeconds), 9);
  EXPECT_EQ(Get(cmos_, Cmos::kHours), 13);
  EXPECT_EQ(Get(cmos_, Cmos::kDayOfMonth), 29);
  EXPECT_EQ(Get(cmos_, Cmos::kYear), 24);
  EXPECT_EQ(Get(cmos_, Cmos::kCentury), 20);
}

TEST_F(CmosTest, TwelveHourModeSetsThePmBit) {
  Set(cmos_, Cmos::kRegB, 0);  // BCD, 12-hour
  EXPECT_EQ(Get(cmos_, Cmos::kHours), 0x80 | 0x01);
  now_ = kFixedTime - 13 * 3600;  // 00:05 -> 12 AM
  EXPECT_EQ(Get(cmos_, Cmos::kHours), 0x12);
}

TEST_F(CmosTest, ClockFollowsTheHostClock) {
  now_ += 30;
  EXPECT_EQ(Get(cmos_, Cmos::kSeconds), 0x39);
}

TEST_F(CmosTest, StatusRegistersNeverShowAnUpdateAndValidRam) {
  EXPECT_EQ(Get(cmos_, Cmos::kRegA), 0x26);
  Set(cmos_, Cmos::kRegA, 0xa6);
  EXPECT_EQ(Get(cmos_, Cmos::kRegA) & 0x80, 0);
  EXPECT_EQ(Get(cmos_, Cmos::kRegB), Cmos::kRegB24Hour);
  EXPECT_EQ(Get(cmos_, Cmos::kRegC), 0);
  EXPECT_EQ(Get(cmos_, Cmos::kRegD), 0x80);
}

TEST_F(CmosTest, MemorySizeBytesFollowTheQemuLayout) {
  // 128 MiB: 127 MiB extended (capped at 0xffff KiB), 112 MiB above 16 MiB.
  EXPECT_EQ(Get(cmos_, 0x15) | Get(cmos_, 0x16) << 8, 640);
  EXPECT_EQ(Get(cmos_, 0x17) | Get(cmos_, 0x18) << 8, 0xffff);
  EXPECT_EQ(Get(cmos_, 0x30) | Get(cmos_, 0x31) << 8, 0xffff);
  EXPECT_EQ(Get(cmos_, 0x34) | Get(cmos_, 0x35) << 8, 112 * 16);
  EXPECT_EQ(Get(cmos_, 0x5b) | Get(cmos_, 0x5c) << 8 | Get(cmos_, 0x5d) << 16, 0);
}

TEST_F(CmosTest, SmallAndLargeMemorySizes) {
  Cmos small(32 * kMiB, 0);
  EXPECT_EQ(Get(small, 0x17) | Get(small, 0x18) << 8, 31 * 1024);
  EXPECT_EQ(Get(small, 0x34) | Get(small, 0x35) << 8, 16 * 16);
  Cmos large(3072 * kMiB, 5ull * 1024 * kMiB);
  EXPECT_EQ(Get(large, 0x34) | Get(large, 0x35) << 8, (3072 - 16) * 16);
  EXPECT_EQ(Get(large, 0x5b) | Get(large, 0x5c) << 8 | Get(large, 0x5d) << 16, 5 * 1024 * 16);
}

TEST_F(CmosTest, RamBytesAreStoredAndIndexBit7IsIgnored) {
  Set(cmos_, 0x40, 0x99);
  EXPECT_EQ(Get(cmos_, 0x40), 0x99);
  EXPECT_EQ(Get(cmos_, 0xc0), 0x99);  // NMI-disable bit set in the index
}

TEST_F(CmosTest, GuestWriteToTimeMovesAnOffsetNotTheHostClock) {
  Set(cmos_, Cmos::kMinutes, 0x35);
  EXPECT_EQ(cmos_.offset(), 30 * 60);
  EXPECT_EQ(Get(cmos_, Cmos::kMinutes), 0x35);
  now_ += 60;
  EXPECT_EQ(Get(cmos_, Cmos::kMinutes), 0x36);
}

TEST_F(CmosTest, SetBitFreezesTimeAndCommitsOnClear) {
  Set(cmos_, Cmos::kRegB, Cmos::kRegBSet | Cmos::kRegB24Hour);
  Set(cmos_, Cmos::kYear, 0x30);
  Set(cmos_, Cmos::kMonth, 0x01);
  Set(cmos_, Cmos::kDayOfMonth, 0x01);
  Set(cmos_, Cmos::kHours, 0x00);
  Set(cmos_, Cmos::kMinutes, 0x00);
  Set(cmos_, Cmos::kSeconds, 0x00);
  now_ += 100;  // frozen while SET
  EXPECT_EQ(Get(cmos_, Cmos::kSeconds), 0x00);
  Set(cmos_, Cmos::kRegB, Cmos::kRegB24Hour);
  EXPECT_EQ(Get(cmos_, Cmos::kYear), 0x30);
  EXPECT_EQ(Get(cmos_, Cmos::kMonth), 0x01);
  EXPECT_EQ(now_ + cmos_.offset(), 1893456000);  // 2030-01-01 00:00:00 UTC
}

}  // namespace
}  // namespace devices
