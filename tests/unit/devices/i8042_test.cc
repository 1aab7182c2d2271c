#include "devices/legacy/i8042.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "tests/unit/devices/fake_irq_line.h"

namespace devices {
namespace {

class I8042Test : public ::testing::Test {
 protected:
  I8042Test() : irq_(std::make_shared<FakeIrqLine>()), i8042_([this] { ++resets_; }, irq_) {}

  uint8_t Status() { return In(I8042::kCommandPort); }
  uint8_t Data() { return In(I8042::kDataPort); }
  uint8_t In(uint64_t port) {
    uint8_t value = 0;
    i8042_.Read({port, 0, 0}, std::span(&value, 1));
    return value;
  }
  void Command(uint8_t value) { i8042_.Write({I8042::kCommandPort, 0, 0}, std::span(&value, 1)); }
  void WriteData(uint8_t value) { i8042_.Write({I8042::kDataPort, 0, 0}, std::span(&value, 1)); }

  // Reads every byte the keyboard has queued, as a driver's IRQ handler would.
  std::vector<uint8_t> DrainKeyboard() {
    std::vector<uint8_t> bytes;
    while (Status() & I8042::kStatusObf) bytes.push_back(Data());
    return bytes;
  }

  int resets_ = 0;
  std::shared_ptr<FakeIrqLine> irq_;
  I8042 i8042_;
};

TEST_F(I8042Test, InjectedCtrlAltDelArrivesInOrderWithOneIrqEdgePerByte) {
  i8042_.InjectCtrlAltDel();  // translation is on by default: scancode set 1
  auto bytes = DrainKeyboard();
  EXPECT_EQ(bytes, std::vector<uint8_t>(std::begin(I8042::kCtrlAltDelSet1),
                                        std::end(I8042::kCtrlAltDelSet1)));
  EXPECT_EQ(irq_->raises(), static_cast<int>(bytes.size()));
  EXPECT_EQ(i8042_.PendingKeyboardBytes(), 0u);
}

TEST_F(I8042Test, CtrlAltDelUsesSet2WhenTranslationIsOff) {
  Command(0x60);
  WriteData(I8042::kCtrKbdInt | I8042::kCtrSys);  // translation off
  i8042_.InjectCtrlAltDel();
  EXPECT_EQ(DrainKeyboard(), std::vector<uint8_t>(std::begin(I8042::kCtrlAltDelSet2),
                                                  std::end(I8042::kCtrlAltDelSet2)));
}

TEST_F(I8042Test, InjectedKeysUseSet1WithTranslationOn) {
  const Ps2Key a{0x1e, 0x1c};
  const Ps2Key up{0x48, 0x75, true};
  i8042_.InjectKey(a, true);
  i8042_.InjectKey(a, false);
  i8042_.InjectKey(up, true);
  i8042_.InjectKey(up, false);
  EXPECT_EQ(DrainKeyboard(), (std::vector<uint8_t>{0x1e, 0x9e, 0xe0, 0x48, 0xe0, 0xc8}));
  EXPECT_EQ(irq_->raises(), 6);
}

TEST_F(I8042Test, InjectedKeysUseSet2WithTranslationOff) {
  Command(0x60);
  WriteData(I8042::kCtrKbdInt | I8042::kCtrSys);  // translation off
  const Ps2Key f7{0x41, 0x83};
  const Ps2Key right_ctrl{0x1d, 0x14, true};
  i8042_.InjectKey(f7, true);
  i8042_.InjectKey(f7, false);
  i8042_.InjectKey(right_ctrl, true);
  i8042_.InjectKey(right_ctrl, false);
  EXPECT_EQ(DrainKeyboard(),
            (std::vector<uint8_t>{0x83, 0xf0, 0x83, 0xe0, 0x14, 0xe0, 0xf0, 0x14}));
}

TEST_F(I8042Test, NoIrqWhenTheCommandByteDisablesIt) {
  Command(0x60);
  WriteData(I8042::kCtrSys | I8042::kCtrTranslate);  // keyboard interrupt off
  irq_->Clear();
  i8042_.InjectScancodes(std::vector<uint8_t>{0x1e, 0x9e});
  EXPECT_EQ(DrainKeyboard(), (std::vector<uint8_t>{0x1e, 0x9e}));  // still pollable
  EXPECT_EQ(irq_->raises(), 0);
}

TEST_F(I8042Test, KeyboardAnswersAProbe) {
  WriteData(0xff);  // reset
  EXPECT_EQ(DrainKeyboard(), (std::vector<uint8_t>{0xfa, 0xaa}));
  WriteData(0xf2);  // identify
  EXPECT_EQ(DrainKeyboard(), (std::vector<uint8_t>{0xfa, 0xab, 0x83}));
  WriteData(0xed);  // set LEDs, then its parameter
  EXPECT_EQ(DrainKeyboard(), (std::vector<uint8_t>{0xfa}));
  WriteData(0x07);
  EXPECT_EQ(DrainKeyboard(), (std::vector<uint8_t>{0xfa}));
  WriteData(0xee);
  EXPECT_EQ(DrainKeyboard(), (std::vector<uint8_t>{0xee}));
  WriteData(0xf4);  // enable
  EXPECT_EQ(DrainKeyboard(), (std::vector<uint8_t>{0xfa}));
}

TEST_F(I8042Test, DisabledKeyboardHoldsItsBytesUntilEnabled) {
  Command(0xad);
  i8042_.InjectScancodes(std::vector<uint8_t>{0x1e});
  EXPECT_FALSE(Status() & I8042::kStatusObf);
  Command(0xae);
  EXPECT_EQ(DrainKeyboard(), (std::vector<uint8_t>{0x1e}));
}

TEST_F(I8042Test, InjectionQueueIsBounded) {
  std::vector<uint8_t> flood(100000, 0x1e);
  i8042_.InjectScancodes(flood);
  EXPECT_LE(i8042_.PendingKeyboardBytes(), 4096u);
}

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
  WriteData(0xf4);  // to the keyboard, disabled by 0xad: its ACK waits
  EXPECT_FALSE(Status() & I8042::kStatusCommand);
  EXPECT_EQ(i8042_.guest_errors(), 0u);
  EXPECT_EQ(i8042_.PendingKeyboardBytes(), 1u);
  EXPECT_EQ(resets_, 0);
}

}  // namespace
}  // namespace devices
