#include "devices/legacy/serial.h"

#include <gtest/gtest.h>

#include <numeric>
#include <thread>
#include <vector>

#include "tests/unit/devices/fake_irq_line.h"

namespace devices {
namespace {

class SerialTest : public ::testing::Test {
 protected:
  SerialTest()
      : irq_(std::make_shared<FakeIrqLine>()),
        serial_(irq_, [this](std::span<const uint8_t> bytes) {
          out_.insert(out_.end(), bytes.begin(), bytes.end());
        }) {}

  uint8_t In(uint64_t offset) {
    uint8_t value = 0;
    serial_.Read({0x3f8 + offset, offset, 0}, std::span(&value, 1));
    return value;
  }
  void Out(uint64_t offset, uint8_t value) {
    serial_.Write({0x3f8 + offset, offset, 0}, std::span(&value, 1));
  }
  void Queue(std::string_view text) {
    serial_.QueueInput(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }
  uint8_t IirId() { return In(Serial::kIirFcr) & 0x0f; }

  std::shared_ptr<FakeIrqLine> irq_;
  std::vector<uint8_t> out_;
  Serial serial_;
};

TEST_F(SerialTest, ResetStateLooksLikeAnIdle16550) {
  EXPECT_EQ(In(Serial::kIer), 0);
  EXPECT_EQ(In(Serial::kIirFcr), Serial::kIirNone);
  EXPECT_EQ(In(Serial::kLsr), Serial::kLsrThre | Serial::kLsrTemt);
  EXPECT_EQ(In(Serial::kMsr), Serial::kMsrCts | Serial::kMsrDsr | Serial::kMsrDcd);
  EXPECT_EQ(serial_.name(), "com1");
  EXPECT_FALSE(irq_->level());
}

TEST_F(SerialTest, TransmittedBytesReachOutputAndAreCounted) {
  Out(Serial::kRbrThr, 'h');
  Out(Serial::kRbrThr, 'i');
  EXPECT_EQ(out_, (std::vector<uint8_t>{'h', 'i'}));
  EXPECT_EQ(serial_.counters().bytes_out, 2u);
  EXPECT_EQ(In(Serial::kLsr) & (Serial::kLsrThre | Serial::kLsrTemt),
            Serial::kLsrThre | Serial::kLsrTemt);
}

TEST_F(SerialTest, ScratchRegisterHoldsItsValue) {
  Out(Serial::kScr, 0xa5);
  EXPECT_EQ(In(Serial::kScr), 0xa5);
}

TEST_F(SerialTest, IerKeepsOnlyTheFourDefinedBits) {
  Out(Serial::kIer, 0xff);
  EXPECT_EQ(In(Serial::kIer), 0x0f);
  Out(Serial::kIer, 0);
  EXPECT_EQ(In(Serial::kIer), 0);
}

TEST_F(SerialTest, DlabSwitchesOffsetsZeroAndOneToTheDivisorLatch) {
  Out(Serial::kIer, 0x05);
  Out(Serial::kLcr, Serial::kLcrDlab | 0x03);
  Out(Serial::kRbrThr, 0x01);  // DLL
  Out(Serial::kIer, 0x02);     // DLM
  EXPECT_EQ(In(Serial::kRbrThr), 0x01);
  EXPECT_EQ(In(Serial::kIer), 0x02);
  EXPECT_TRUE(out_.empty()) << "a DLL write is not a transmitted byte";
  Out(Serial::kLcr, 0x03);
  EXPECT_EQ(In(Serial::kIer), 0x05);
  EXPECT_EQ(In(Serial::kLcr), 0x03);
}

TEST_F(SerialTest, ReceivedDataSetsDrAndReadsBackInOrder) {
  Queue("ab");
  EXPECT_TRUE(In(Serial::kLsr) & Serial::kLsrDr);
  EXPECT_EQ(In(Serial::kRbrThr), 'a');
  EXPECT_EQ(In(Serial::kRbrThr), 'b');
  EXPECT_FALSE(In(Serial::kLsr) & Serial::kLsrDr);
  EXPECT_EQ(serial_.counters().bytes_in, 2u);
  EXPECT_EQ(serial_.PendingInput(), 0u);
}

TEST_F(SerialTest, ReceivedDataInterruptOnlyWhenEnabledAndClearedByReadingRbr) {
  Queue("x");
  EXPECT_FALSE(irq_->level());
  EXPECT_EQ(IirId(), Serial::kIirNone);
  Out(Serial::kIer, Serial::kIerRda);
  EXPECT_TRUE(irq_->level());
  EXPECT_EQ(IirId(), Serial::kIirRda);
  EXPECT_EQ(In(Serial::kRbrThr), 'x');
  EXPECT_FALSE(irq_->level());
  EXPECT_EQ(IirId(), Serial::kIirNone);
}

TEST_F(SerialTest, DisablingAnInterruptDropsTheLine) {
  Queue("x");
  Out(Serial::kIer, Serial::kIerRda);
  EXPECT_TRUE(irq_->level());
  Out(Serial::kIer, 0);
  EXPECT_FALSE(irq_->level());
}

TEST_F(SerialTest, FifoModeReportsTimeoutBelowTriggerAndDataAvailableAtIt) {
  Out(Serial::kIirFcr, Serial::kFcrEnable | 0x80);  // trigger level 8
  EXPECT_EQ(In(Serial::kIirFcr) & 0xc0, Serial::kIirFifoEnabled);
  Out(Serial::kIer, Serial::kIerRda);
  Queue("1234");
  EXPECT_EQ(IirId(), Serial::kIirTimeout);
  Queue("5678");
  EXPECT_EQ(IirId(), Serial::kIirRda);
  In(Serial::kRbrThr);
  EXPECT_EQ(IirId(), Serial::kIirTimeout);
}

TEST_F(SerialTest, EnablingThreInterruptRaisesItImmediately) {
  Out(Serial::kIer, Serial::kIerThre);
  EXPECT_TRUE(irq_->level());
  EXPECT_EQ(IirId(), Serial::kIirThre);
}

TEST_F(SerialTest, ReadingIirClearsThreWhenItIsTheReportedSource) {
  Out(Serial::kIer, Serial::kIerThre);
  EXPECT_EQ(IirId(), Serial::kIirThre);
  EXPECT_FALSE(irq_->level());
  EXPECT_EQ(IirId(), Serial::kIirNone);
}

TEST_F(SerialTest, ReadingIirDoesNotClearThreWhenAHigherSourceIsReported) {
  Queue("x");
  Out(Serial::kIer, Serial::kIerRda | Serial::kIerThre);
  EXPECT_EQ(IirId(), Serial::kIirRda);
  In(Serial::kRbrThr);
  EXPECT_EQ(IirId(), Serial::kIirThre) << "THRE must survive the IIR read that reported RDA";
  EXPECT_EQ(IirId(), Serial::kIirNone);
}

TEST_F(SerialTest, WritingThrRearmsThreOnTheInfiniteSpeedLine) {
  Out(Serial::kIer, Serial::kIerThre);
  EXPECT_EQ(IirId(), Serial::kIirThre);
  EXPECT_EQ(IirId(), Serial::kIirNone);
  Out(Serial::kRbrThr, 'z');
  EXPECT_EQ(IirId(), Serial::kIirThre);
  EXPECT_TRUE(out_.size() == 1 && out_[0] == 'z');
}

TEST_F(SerialTest, LinuxThreProbeSeesAnInterruptBothTimes) {
  // serial8250_do_startup: IER=THRI, read IIR, IER=0, IER=THRI, read IIR.
  Out(Serial::kIer, Serial::kIerThre);
  const uint8_t iir1 = In(Serial::kIirFcr);
  Out(Serial::kIer, 0);
  Out(Serial::kIer, Serial::kIerThre);
  const uint8_t iir2 = In(Serial::kIirFcr);
  EXPECT_FALSE(iir1 & Serial::kIirNone);
  EXPECT_FALSE(iir2 & Serial::kIirNone);
}

TEST_F(SerialTest, InterruptPriorityIsLineStatusThenDataThenThreThenModem) {
  Out(Serial::kIirFcr, Serial::kFcrEnable);  // trigger level 1
  Out(Serial::kMcr, Serial::kMcrLoop);
  for (int i = 0; i < 17; ++i) Out(Serial::kRbrThr, static_cast<uint8_t>(i));  // overrun
  Out(Serial::kMcr, Serial::kMcrLoop | Serial::kMcrDtr);                       // DSR delta
  Out(Serial::kIer, 0x0f);
  EXPECT_EQ(IirId(), Serial::kIirRls);
  EXPECT_TRUE(In(Serial::kLsr) & Serial::kLsrOe);  // clears OE
  EXPECT_EQ(IirId(), Serial::kIirRda);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(In(Serial::kRbrThr), i);
  EXPECT_EQ(IirId(), Serial::kIirThre);  // reading it clears THRE
  EXPECT_EQ(IirId(), Serial::kIirMsi);
  EXPECT_TRUE(In(Serial::kMsr) & Serial::kMsrDdsr);  // clears the deltas
  EXPECT_EQ(IirId(), Serial::kIirNone);
  EXPECT_FALSE(irq_->level());
}

TEST_F(SerialTest, LoopbackRoutesThrToRbrAndNotToOutput) {
  Out(Serial::kMcr, Serial::kMcrLoop);
  Out(Serial::kRbrThr, 0x5a);
  EXPECT_TRUE(out_.empty());
  EXPECT_TRUE(In(Serial::kLsr) & Serial::kLsrDr);
  EXPECT_EQ(In(Serial::kRbrThr), 0x5a);
}

TEST_F(SerialTest, LoopbackDrivesModemStatusFromMcrAsLinuxProbeExpects) {
  Out(Serial::kMcr, Serial::kMcrLoop | Serial::kMcrOut2 | Serial::kMcrRts);
  EXPECT_EQ(In(Serial::kMsr) & 0xf0, 0x90);
  Out(Serial::kMcr, Serial::kMcrLoop | Serial::kMcrDtr | Serial::kMcrOut1);
  EXPECT_EQ(In(Serial::kMsr) & 0xf0, Serial::kMsrDsr | Serial::kMsrRi);
}

TEST_F(SerialTest, RiTrailingEdgeSetsTeri) {
  Out(Serial::kMcr, Serial::kMcrLoop | Serial::kMcrOut1);
  In(Serial::kMsr);
  Out(Serial::kMcr, Serial::kMcrLoop);
  EXPECT_TRUE(In(Serial::kMsr) & Serial::kMsrTeri);
  EXPECT_FALSE(In(Serial::kMsr) & Serial::kMsrTeri) << "deltas clear on read";
}

TEST_F(SerialTest, LoopbackHoldsBackHostInputUntilItEnds) {
  Out(Serial::kMcr, Serial::kMcrLoop);
  Queue("host");
  EXPECT_FALSE(In(Serial::kLsr) & Serial::kLsrDr);
  Out(Serial::kMcr, 0);
  EXPECT_EQ(In(Serial::kRbrThr), 'h');
}

TEST_F(SerialTest, OverrunInLoopbackLosesTheNewByteAndSetsOeUntilLsrRead) {
  Out(Serial::kMcr, Serial::kMcrLoop);  // FIFOs off: 1-byte RBR
  Out(Serial::kRbrThr, 1);
  Out(Serial::kRbrThr, 2);
  EXPECT_EQ(serial_.counters().overruns, 1u);
  EXPECT_TRUE(In(Serial::kLsr) & Serial::kLsrOe);
  EXPECT_FALSE(In(Serial::kLsr) & Serial::kLsrOe);
  EXPECT_EQ(In(Serial::kRbrThr), 1);
}

TEST_F(SerialTest, LineStatusInterruptOnOverrunClearedByLsrRead) {
  Out(Serial::kIer, Serial::kIerRls);
  Out(Serial::kMcr, Serial::kMcrLoop);
  Out(Serial::kRbrThr, 1);
  EXPECT_FALSE(irq_->level());
  Out(Serial::kRbrThr, 2);
  EXPECT_TRUE(irq_->level());
  In(Serial::kLsr);
  EXPECT_FALSE(irq_->level());
}

TEST_F(SerialTest, ModemStatusInterruptClearedByMsrRead) {
  Out(Serial::kIer, Serial::kIerMsi);
  Out(Serial::kMcr, Serial::kMcrLoop | Serial::kMcrRts);
  EXPECT_TRUE(irq_->level());
  EXPECT_EQ(IirId(), Serial::kIirMsi);
  In(Serial::kMsr);
  EXPECT_FALSE(irq_->level());
}

TEST_F(SerialTest, FifoResetDiscardsReceivedBytesThenRefillsFromHostQueue) {
  Out(Serial::kIirFcr, Serial::kFcrEnable);
  std::vector<uint8_t> bytes(20);
  std::iota(bytes.begin(), bytes.end(), uint8_t{0});
  serial_.QueueInput(bytes);
  EXPECT_EQ(serial_.PendingInput(), 20u);
  Out(Serial::kIirFcr, Serial::kFcrEnable | Serial::kFcrClearRx);
  // The 16 bytes in the FIFO are gone; the 4 still held back by flow control arrive.
  EXPECT_EQ(serial_.PendingInput(), 4u);
  EXPECT_EQ(In(Serial::kRbrThr), 16);
}

TEST_F(SerialTest, TogglingFifoEnableClearsTheFifo) {
  Out(Serial::kIirFcr, Serial::kFcrEnable);
  Out(Serial::kMcr, Serial::kMcrLoop);
  Out(Serial::kRbrThr, 7);
  Out(Serial::kIirFcr, 0);
  EXPECT_FALSE(In(Serial::kLsr) & Serial::kLsrDr);
  EXPECT_EQ(In(Serial::kIirFcr) & 0xc0, 0);
}

TEST_F(SerialTest, SixtyFourKiBPasteArrivesWholeAndInOrder) {
  Out(Serial::kIirFcr, Serial::kFcrEnable | 0xc0);
  std::vector<uint8_t> paste(64 * 1024);
  for (size_t i = 0; i < paste.size(); ++i) paste[i] = static_cast<uint8_t>(i * 7 + i / 256);
  serial_.QueueInput(paste);
  std::vector<uint8_t> got;
  while (In(Serial::kLsr) & Serial::kLsrDr) got.push_back(In(Serial::kRbrThr));
  EXPECT_EQ(got, paste);
  EXPECT_EQ(serial_.counters().bytes_in, paste.size());
  EXPECT_EQ(serial_.counters().overruns, 0u);
}

TEST_F(SerialTest, InputQueuedFromAnotherThreadArrivesWhole) {
  std::vector<uint8_t> chunk(1000, 'q');
  std::thread producer([&] {
    for (int i = 0; i < 50; ++i) serial_.QueueInput(chunk);
  });
  size_t received = 0;
  while (received < 50 * chunk.size()) {
    if (In(Serial::kLsr) & Serial::kLsrDr) {
      EXPECT_EQ(In(Serial::kRbrThr), 'q');
      ++received;
    }
  }
  producer.join();
  EXPECT_EQ(serial_.PendingInput(), 0u);
}

TEST_F(SerialTest, WritesToReadOnlyRegistersAreCountedNotFatal) {
  Out(Serial::kLsr, 0);
  Out(Serial::kMsr, 0);
  EXPECT_EQ(serial_.counters().guest_errors, 2u);
  EXPECT_EQ(In(Serial::kLsr), Serial::kLsrThre | Serial::kLsrTemt);
}

TEST_F(SerialTest, WideAccessIsSplitIntoBytes) {
  const uint8_t word[2] = {0xab, 0x03};  // outw to 0x3fb: LCR, then MCR
  serial_.Write({0x3fb, Serial::kLcr, 0}, std::span(word, 2));
  EXPECT_EQ(In(Serial::kLcr), 0xab);
  EXPECT_EQ(In(Serial::kMcr), 0x03);
}

TEST_F(SerialTest, IrqLineReportsOnlyChanges) {
  Out(Serial::kIer, Serial::kIerThre);
  Out(Serial::kRbrThr, 'a');
  Out(Serial::kRbrThr, 'b');
  EXPECT_EQ(irq_->history(), std::vector<bool>{true});
}

TEST(Serial, WorksWithoutAnIrqLineOrOutput) {
  Serial serial(nullptr, nullptr, "com2");
  uint8_t value = 'a';
  serial.Write({0x2f8, 0, 0}, std::span(&value, 1));
  value = Serial::kIerThre;
  serial.Write({0x2f9, 1, 0}, std::span(&value, 1));
  EXPECT_EQ(serial.name(), "com2");
  EXPECT_EQ(serial.counters().bytes_out, 1u);
}

}  // namespace
}  // namespace devices
