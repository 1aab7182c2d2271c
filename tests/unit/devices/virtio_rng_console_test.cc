#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "devices/virtio/console/console.h"
#include "devices/virtio/rng/rng.h"
#include "tests/unit/devices/fake_irq_line.h"
#include "tests/unit/devices/virtio_test_util.h"

namespace devices::virtio {
namespace {

using testing::MakeMemory;
using testing::MmioDriver;
using testing::TestRing;

constexpr uint64_t kBuffer = 0x400000;

TEST(VirtioRng, FillsWritableBuffersFromTheSource) {
  auto memory = MakeMemory();
  auto rng = std::make_shared<Rng>([](std::span<uint8_t> out) -> base::Result<void> {
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(0x80 + i);
    return {};
  });
  auto mmio = VirtioMmio::Create(rng, *memory, nullptr);
  MmioDriver driver(*mmio);
  TestRing ring(*memory, 8, 0x100000);
  driver.BringUp({&ring});
  ring.SetDesc(0, kBuffer, 4, kDescWrite | kDescNext, 1);
  ring.SetDesc(1, kBuffer + 0x100, 4, kDescWrite);
  ring.Publish(0);
  driver.Notify(0);
  ASSERT_EQ(ring.UsedIdx(), 1);
  EXPECT_EQ(ring.Used(0).len, 8u);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(kBuffer), 0x80);
  EXPECT_EQ(*memory->ReadObj<uint8_t>(kBuffer + 0x103), 0x87);
  EXPECT_EQ(rng->bytes_served(), 8u);
}

TEST(VirtioRng, GetRandomFillsLargeBuffers) {
  std::vector<uint8_t> bytes(100000, 0);
  ASSERT_TRUE(GetRandom(bytes));
  size_t zeros = 0;
  for (uint8_t b : bytes) zeros += b == 0;
  EXPECT_LT(zeros, 1000u);
}

class VirtioConsoleTest : public ::testing::Test {
 protected:
  VirtioConsoleTest() {
    console_ = std::make_shared<Console>(
        [this](std::span<const uint8_t> bytes) { out_.append(bytes.begin(), bytes.end()); });
    mmio_ = VirtioMmio::Create(console_, *memory_, irq_);
    driver_ = std::make_unique<MmioDriver>(*mmio_);
  }

  std::unique_ptr<base::GuestMemory> memory_ = MakeMemory();
  std::shared_ptr<FakeIrqLine> irq_ = std::make_shared<FakeIrqLine>();
  std::shared_ptr<Console> console_;
  std::shared_ptr<VirtioMmio> mmio_;
  std::unique_ptr<MmioDriver> driver_;
  TestRing rx_{*memory_, 8, 0x100000};
  TestRing tx_{*memory_, 8, 0x110000};
  std::string out_;
};

TEST_F(VirtioConsoleTest, TransmittedBuffersReachTheOutput) {
  driver_->BringUp({&rx_, &tx_});
  ASSERT_TRUE(memory_->Write(kBuffer, std::span(reinterpret_cast<const uint8_t*>("hello "), 6)));
  ASSERT_TRUE(
      memory_->Write(kBuffer + 0x100, std::span(reinterpret_cast<const uint8_t*>("world"), 5)));
  tx_.SetDesc(0, kBuffer, 6, kDescNext, 1);
  tx_.SetDesc(1, kBuffer + 0x100, 5);
  tx_.Publish(0);
  driver_->Notify(Console::kTransmitQueue);
  EXPECT_EQ(out_, "hello world");
  EXPECT_EQ(tx_.UsedIdx(), 1);
  EXPECT_EQ(console_->bytes_out(), 11u);
}

// A guest keeping the transmit queue full must not keep the event loop in
// one handler: a service round does a bounded amount and posts the rest.
TEST(VirtioConsoleBudget, TransmitWorkIsBoundedPerRoundAndRescheduled) {
  auto memory = MakeMemory();
  std::string out;
  auto console = std::make_shared<Console>(
      [&](std::span<const uint8_t> bytes) { out.append(bytes.begin(), bytes.end()); });
  std::vector<std::function<void()>> tasks;
  auto mmio = VirtioMmio::Create(console, *memory, nullptr,
                                 [&](std::function<void()> task) { tasks.push_back(task); });
  MmioDriver driver(*mmio);
  TestRing rx(*memory, 256, 0x100000);
  TestRing tx(*memory, 256, 0x110000);
  driver.BringUp({&rx, &tx});
  ASSERT_TRUE(memory->Fill(kBuffer, 'x', 16));
  for (uint16_t i = 0; i < 128; ++i) {
    tx.SetDesc(i, kBuffer, 16);
    tx.Publish(i);
  }
  for (auto& task : std::exchange(tasks, {})) task();  // activation kicks
  // The notification's own round (run where the notify lands) is bounded,
  // and what it left is posted as a new round, not looped over.
  driver.Notify(Console::kTransmitQueue);
  EXPECT_LT(tx.UsedIdx(), 128) << "one round served every chain";
  EXPECT_GT(tx.UsedIdx(), 0);
  ASSERT_FALSE(tasks.empty()) << "the rest is not re-scheduled";
  for (int round = 0; round < 10 && !tasks.empty(); ++round) {
    for (auto& task : std::exchange(tasks, {})) task();
  }
  EXPECT_EQ(tx.UsedIdx(), 128);
  EXPECT_EQ(out.size(), 128u * 16);
}

TEST_F(VirtioConsoleTest, InputWaitsForReceiveBuffersAndArrivesWhole) {
  driver_->BringUp({&rx_, &tx_});
  std::string text(100, 'x');
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 26);
  console_->QueueInput(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  EXPECT_EQ(console_->PendingInput(), 100u) << "no receive buffers yet";
  std::string received;
  for (int round = 0; round < 4; ++round) {
    rx_.SetDesc(0, kBuffer, 32, kDescWrite);
    rx_.Publish(0);
    driver_->Notify(Console::kReceiveQueue);
    const UsedElement used = rx_.Used(static_cast<uint16_t>(rx_.UsedIdx() - 1));
    std::string chunk(used.len, '\0');
    ASSERT_TRUE(
        memory_->Read(kBuffer, std::span(reinterpret_cast<uint8_t*>(chunk.data()), used.len)));
    received += chunk;
  }
  EXPECT_EQ(received, text);
  EXPECT_EQ(console_->PendingInput(), 0u);
  EXPECT_TRUE(irq_->level());
}

TEST_F(VirtioConsoleTest, InputQueuedAfterActivationIsDeliveredByKick) {
  driver_->BringUp({&rx_, &tx_});
  rx_.SetDesc(0, kBuffer, 32, kDescWrite);
  rx_.Publish(0);
  driver_->Notify(Console::kReceiveQueue);  // nothing to deliver yet
  EXPECT_EQ(rx_.UsedIdx(), 0);
  const uint8_t key = 'k';
  console_->QueueInput(std::span(&key, 1));  // kicks the receive queue
  EXPECT_EQ(rx_.UsedIdx(), 1);
  EXPECT_EQ(*memory_->ReadObj<uint8_t>(kBuffer), 'k');
}

TEST_F(VirtioConsoleTest, EmergencyWriteOutputsOneByte) {
  EXPECT_TRUE(console_->device_features() & Console::kFeatureEmergWrite);
  uint32_t value = 'Z';
  mmio_->Write({0xd0000108, VirtioMmio::kConfigOffset + Console::kConfigEmergWr, 0},
               std::span(reinterpret_cast<const uint8_t*>(&value), 4));
  EXPECT_EQ(out_, "Z");
}

}  // namespace
}  // namespace devices::virtio
