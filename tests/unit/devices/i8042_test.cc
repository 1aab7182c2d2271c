#include "devices/legacy/i8042.h"

#include <gtest/gtest.h>

namespace devices {
namespace {

class I8042Test : public ::testing::Test {
 protected:
  I8042Test() : i8042_([this] { ++resets_; }) {}

  uint8_t Status() { return In(I8042::kCommandPort); }
  uint8_t Data() { return In(I8042::kDataPort); }
  uint8_t In(uint64_t port) {
    uint8_t value = 0;
    i8042_.Read({port, 0, 0}, std::span(&value, 1));
    return value;
  }
  void Command(uint8_t value) { i8042_.Write({I8042::kCommandPort, 0, 0}, std::span(&value, 1)); }
  void WriteData(uint8_t value) { i8042_.Write({I8042::kDataPort, 0, 0}, std::span(&value, 1)); }

  int resets_ = 0;
  I8042 i8042_;
};

TEST_F(I8042Test, ResetCommandCallsTheCallback) {
  Command(0xfe);
  EXPECT_EQ(resets_, 1);
  EXPECT_EQ(i8042_.resets(), 1u);
}

TEST_F(I8042Test, PulseCommandWithResetBitSetDoesNotReset) {
  Command(0xff);
  Command(0xfd);
  EXPECT_EQ(resets_, 0);
}

TEST_F(I8042Test, SelfTestAnswers0x55InTheOutputBuffer) {
  EXPECT_FALSE(Status() & I8042::kStatusObf);
  Command(0xaa);
  EXPECT_TRUE(Status() & I8042::kStatusObf);
  EXPECT_TRUE(Status() & I8042::kStatusSys);
  EXPECT_EQ(Data(), 0x55);
  EXPECT_FALSE(Status() & I8042::kStatusObf);
}

TEST_F(I8042Test, InterfaceTestsReportNoError) {
  Command(0xab);
  EXPECT_EQ(Data(), 0x00);
  Command(0xa9);
  EXPECT_EQ(Data(), 0x00);
}

TEST_F(I8042Test, CommandByteReadsBackWhatWasWritten) {
  Command(0x60);
  WriteData(0x47);
  Command(0x20);
  EXPECT_EQ(Data(), 0x47);
}

TEST_F(I8042Test, AuxEnableAndDisableFlipCommandByteBit5) {
  Command(0xa7);
  Command(0x20);
  EXPECT_TRUE(Data() & I8042::kCtrAuxDisable);
  Command(0xa8);
  Command(0x20);
  EXPECT_FALSE(Data() & I8042::kCtrAuxDisable);
}

TEST_F(I8042Test, AuxLoopEchoesWithAuxStatusBit) {
  Command(0xd3);
  WriteData(0x5a);
  EXPECT_TRUE(Status() & I8042::kStatusAuxObf);
  EXPECT_EQ(Data(), 0x5a);
}

TEST_F(I8042Test, OutputPortWriteWithBit0ClearResets) {
  Command(0xd0);
  EXPECT_EQ(Data() & I8042::kOutResetDeasserted, I8042::kOutResetDeasserted);
  Command(0xd1);
  WriteData(0x03);
  EXPECT_EQ(resets_, 0);
  Command(0xd1);
  WriteData(0x02);
  EXPECT_EQ(resets_, 1);
}

TEST_F(I8042Test, StatusTracksCommandVersusDataWrites) {
  Command(0xad);
  EXPECT_TRUE(Status() & I8042::kStatusCommand);
  WriteData(0xf4);  // to the absent keyboard
  EXPECT_FALSE(Status() & I8042::kStatusCommand);
  EXPECT_EQ(i8042_.guest_errors(), 1u);
  EXPECT_EQ(resets_, 0);
}

}  // namespace
}  // namespace devices
