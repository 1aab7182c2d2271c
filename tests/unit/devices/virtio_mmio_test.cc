#include <gtest/gtest.h>

#include <functional>
#include <random>
#include <vector>

#include "devices/virtio/mmio.h"
#include "tests/unit/devices/fake_irq_line.h"
#include "tests/unit/devices/virtio_test_util.h"

namespace devices::virtio {
namespace {

using testing::MakeMemory;
using testing::MmioDriver;
using testing::TestRing;

constexpr uint64_t kData = 0x400000;

// A device that records what the transport does to it. Queue 0 completes
// every chain with used length 1; a chain the queue rejects is reported.
class FakeDevice : public VirtioDevice {
 public:
  static constexpr uint64_t kFeatureA = 1ull << 0;
  static constexpr uint64_t kFeatureB = 1ull << 40;

  std::string_view name() const override { return "fake"; }
  uint32_t device_id() const override { return 42; }
  uint64_t device_features() const override { return kCommonFeatures | kFeatureA | kFeatureB; }
  size_t queue_count() const override { return 2; }
  uint16_t queue_max_size(size_t queue) const override { return queue == 0 ? 16 : 8; }
  void ReadConfig(uint64_t offset, std::span<uint8_t> data) override {
    for (size_t i = 0; i < data.size(); ++i) {
      data[i] = offset + i < config.size() ? config[offset + i] : 0;
    }
  }
  void WriteConfig(uint64_t offset, std::span<const uint8_t> data) override {
    for (size_t i = 0; i < data.size() && offset + i < config.size(); ++i) {
      config[offset + i] = data[i];
    }
  }
  base::Result<void> Activate(const base::GuestMemory&, std::span<Queue> queues, uint64_t features,
                              VirtioHost& host) override {
    ++activations;
    acked = features;
    queues_ = queues;
    host_ = &host;
    return {};
  }
  void Reset() override {
    ++resets;
    queues_ = {};
    host_ = nullptr;
  }
  void ProcessQueue(size_t queue) override {
    processed.push_back(queue);
    if (queue != 0) return;
    bool used = false;
    for (;;) {
      auto chain = queues_[0].PopOrEnableNotification();
      if (!chain) {
        host_->QueueFailed(0, chain.error());
        return;
      }
      if (!chain->has_value()) break;
      (void)queues_[0].AddUsed((*chain)->head, 1);
      used = true;
    }
    if (used) host_->SignalUsed(0);
  }
  void ChangeConfig() { host_->SignalConfigChange(); }

  std::vector<uint8_t> config = std::vector<uint8_t>(8, 0x11);
  int activations = 0;
  int resets = 0;
  uint64_t acked = 0;
  std::vector<size_t> processed;

 private:
  std::span<Queue> queues_;
  VirtioHost* host_ = nullptr;
};

class VirtioMmioTest : public ::testing::Test {
 protected:
  VirtioMmioTest()
      : memory_(MakeMemory()),
        device_(std::make_shared<FakeDevice>()),
        irq_(std::make_shared<FakeIrqLine>()),
        mmio_(VirtioMmio::Create(device_, *memory_, irq_)),
        driver_(*mmio_),
        ring0_(*memory_, 16, 0x100000),
        ring1_(*memory_, 8, 0x110000) {}

  uint32_t Status() { return driver_.Read(VirtioMmio::kRegStatus); }

  std::unique_ptr<base::GuestMemory> memory_;
  std::shared_ptr<FakeDevice> device_;
  std::shared_ptr<FakeIrqLine> irq_;
  std::shared_ptr<VirtioMmio> mmio_;
  MmioDriver driver_;
  TestRing ring0_;
  TestRing ring1_;
};

TEST_F(VirtioMmioTest, IdentificationRegisters) {
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegMagic), 0x74726976u);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegVersion), 2u);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegDeviceId), 42u);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegVendorId), VirtioMmio::kVendorId);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegShmLenLow), 0xffffffffu);
  EXPECT_EQ(mmio_->name(), "virtio-mmio-fake");
}

TEST_F(VirtioMmioTest, DeviceFeaturesArePagedBySelector) {
  EXPECT_EQ(driver_.DeviceFeatures(), device_->device_features());
  driver_.Write(VirtioMmio::kRegDeviceFeaturesSel, 2);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegDeviceFeatures), 0u);
}

TEST_F(VirtioMmioTest, QueueNumMaxPerQueueAndZeroForMissingQueue) {
  driver_.Write(VirtioMmio::kRegQueueSel, 0);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegQueueNumMax), 16u);
  driver_.Write(VirtioMmio::kRegQueueSel, 1);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegQueueNumMax), 8u);
  driver_.Write(VirtioMmio::kRegQueueSel, 2);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegQueueNumMax), 0u);
}

TEST_F(VirtioMmioTest, FeaturesOkAcceptedForOfferedFeatures) {
  EXPECT_TRUE(driver_.Negotiate(kFeatureVersion1 | FakeDevice::kFeatureB));
}

TEST_F(VirtioMmioTest, FeaturesOkRefusedForFeaturesNotOffered) {
  EXPECT_FALSE(driver_.Negotiate(kFeatureVersion1 | (1ull << 7)));
  EXPECT_EQ(Status(), kStatusAcknowledge | kStatusDriver);
  EXPECT_GT(mmio_->guest_errors(), 0u);
}

TEST_F(VirtioMmioTest, FeaturesOkRefusedWithoutVersion1) {
  EXPECT_FALSE(driver_.Negotiate(FakeDevice::kFeatureA));
}

TEST_F(VirtioMmioTest, DriverFeaturesIgnoredOutsideTheirWindow) {
  ASSERT_TRUE(driver_.Negotiate(kFeatureVersion1));
  driver_.WriteDriverFeatures(kFeatureVersion1 | FakeDevice::kFeatureA);  // after FEATURES_OK
  ASSERT_NO_FATAL_FAILURE(driver_.SetUpQueue(0, ring0_));
  driver_.SetStatus(kStatusDriverOk);
  EXPECT_EQ(device_->acked, kFeatureVersion1);
}

TEST_F(VirtioMmioTest, StatusBitsOutOfOrderAreIgnored) {
  driver_.Write(VirtioMmio::kRegStatus, kStatusDriver);
  EXPECT_EQ(Status(), 0u) << "DRIVER before ACKNOWLEDGE";
  driver_.Write(VirtioMmio::kRegStatus, kStatusAcknowledge | kStatusDriverOk);
  EXPECT_EQ(Status(), kStatusAcknowledge) << "DRIVER_OK before FEATURES_OK";
  EXPECT_EQ(device_->activations, 0);
}

TEST_F(VirtioMmioTest, ClearingAStatusBitIsIgnored) {
  ASSERT_TRUE(driver_.Negotiate(kFeatureVersion1));
  driver_.Write(VirtioMmio::kRegStatus, kStatusAcknowledge);
  EXPECT_EQ(Status(), kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
}

TEST_F(VirtioMmioTest, QueueSetUpBeforeFeaturesOkIsIgnored) {
  driver_.SetStatus(kStatusAcknowledge);
  driver_.SetStatus(kStatusDriver);
  driver_.SetUpQueue(0, ring0_);
  driver_.Write(VirtioMmio::kRegQueueSel, 0);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegQueueReady), 0u);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegQueueDescLow), 0u);
}

TEST_F(VirtioMmioTest, QueueReadyRefusedForSizeNotAPowerOfTwoOrAboveMax) {
  ASSERT_TRUE(driver_.Negotiate(kFeatureVersion1));
  driver_.Write(VirtioMmio::kRegQueueSel, 0);
  driver_.Write(VirtioMmio::kRegQueueNum, 12);
  driver_.Write(VirtioMmio::kRegQueueReady, 1);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegQueueReady), 0u);
  driver_.Write(VirtioMmio::kRegQueueNum, 32);
  driver_.Write(VirtioMmio::kRegQueueReady, 1);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegQueueReady), 0u);
  driver_.Write(VirtioMmio::kRegQueueNum, 0x10010);
  driver_.Write(VirtioMmio::kRegQueueReady, 1);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegQueueReady), 0u);
  driver_.Write(VirtioMmio::kRegQueueNum, 4);
  driver_.Write(VirtioMmio::kRegQueueReady, 1);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegQueueReady), 1u);
}

TEST_F(VirtioMmioTest, QueueRegistersLockedWhileReadyAndAfterDriverOk) {
  ASSERT_TRUE(driver_.Negotiate(kFeatureVersion1));
  driver_.SetUpQueue(0, ring0_);
  driver_.Write(VirtioMmio::kRegQueueDescLow, 0x5000);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegQueueDescLow), ring0_.desc());
  driver_.SetStatus(kStatusDriverOk);
  driver_.Write(VirtioMmio::kRegQueueReady, 0);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegQueueReady), 1u);
}

TEST_F(VirtioMmioTest, DriverOkActivatesAndNotifyProcessesTheQueue) {
  driver_.BringUp({&ring0_, &ring1_});
  EXPECT_EQ(device_->activations, 1);
  EXPECT_EQ(device_->acked, device_->device_features());
  ring0_.SetDesc(0, kData, 16, kDescWrite);
  ring0_.Publish(0);
  driver_.Notify(0);
  EXPECT_EQ(ring0_.UsedIdx(), 1);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegInterruptStatus), kInterruptUsedBuffer);
  EXPECT_TRUE(irq_->level());
  driver_.AckAll();
  EXPECT_FALSE(irq_->level());
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegInterruptStatus), 0u);
}

TEST_F(VirtioMmioTest, NotifyWriteIsPostedToTheExecutorNotRunOnTheVcpu) {
  std::vector<std::function<void()>> tasks;
  auto mmio = VirtioMmio::Create(device_, *memory_, irq_,
                                 [&](std::function<void()> task) { tasks.push_back(task); });
  MmioDriver driver(*mmio);
  driver.BringUp({&ring0_, &ring1_});
  for (auto& task : tasks) task();  // the activation kicks
  tasks.clear();
  device_->processed.clear();
  driver.Notify(0);
  EXPECT_TRUE(device_->processed.empty()) << "device work ran on the writing thread";
  ASSERT_EQ(tasks.size(), 1u);
  tasks[0]();
  EXPECT_EQ(device_->processed, std::vector<size_t>{0});
}

TEST_F(VirtioMmioTest, IoeventfdPathCallsNotifyQueueDirectly) {
  driver_.BringUp({&ring0_, &ring1_});
  device_->processed.clear();
  mmio_->NotifyQueue(1);
  mmio_->NotifyQueue(7);  // no such queue: counted, ignored
  EXPECT_EQ(device_->processed, std::vector<size_t>{1});
  EXPECT_EQ(mmio_->notifications(), 2u);
}

TEST_F(VirtioMmioTest, NotifyBeforeDriverOkIsIgnored) {
  ASSERT_TRUE(driver_.Negotiate(kFeatureVersion1));
  driver_.SetUpQueue(0, ring0_);
  driver_.Notify(0);
  EXPECT_TRUE(device_->processed.empty());
}

TEST_F(VirtioMmioTest, ResetClearsStatusQueuesAndInterrupts) {
  driver_.BringUp({&ring0_, &ring1_});
  ring0_.SetDesc(0, kData, 16, kDescWrite);
  ring0_.Publish(0);
  driver_.Notify(0);
  ASSERT_TRUE(irq_->level());
  driver_.Write(VirtioMmio::kRegStatus, 0);
  EXPECT_EQ(Status(), 0u);
  EXPECT_EQ(device_->resets, 1);
  EXPECT_FALSE(irq_->level());
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegInterruptStatus), 0u);
  driver_.Write(VirtioMmio::kRegQueueSel, 0);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegQueueReady), 0u);
  // And the device comes up again.
  driver_.BringUp({&ring0_, &ring1_});
  EXPECT_EQ(device_->activations, 2);
}

TEST_F(VirtioMmioTest, BrokenQueueSetsNeedsResetAndRaisesConfigInterrupt) {
  driver_.BringUp({&ring0_, &ring1_});
  ring0_.SetDesc(0, kData, 16, kDescNext, 0);  // self loop
  ring0_.Publish(0);
  driver_.Notify(0);
  EXPECT_TRUE(Status() & kStatusNeedsReset);
  EXPECT_TRUE(driver_.Read(VirtioMmio::kRegInterruptStatus) & kInterruptConfigChange);
  EXPECT_TRUE(irq_->level());
  EXPECT_EQ(mmio_->queue_stats(0).loops, 1u);
  // No more device work until reset.
  device_->processed.clear();
  driver_.Notify(0);
  EXPECT_TRUE(device_->processed.empty());
  driver_.Write(VirtioMmio::kRegStatus, 0);
  EXPECT_EQ(Status(), 0u);
}

TEST_F(VirtioMmioTest, RingsOutsideRamAtDriverOkSetNeedsReset) {
  ASSERT_TRUE(driver_.Negotiate(kFeatureVersion1));
  TestRing bad(*memory_, 16, 0x100000);
  driver_.Write(VirtioMmio::kRegQueueSel, 0);
  driver_.Write(VirtioMmio::kRegQueueNum, 16);
  driver_.Write(VirtioMmio::kRegQueueDescLow, 0);
  driver_.Write(VirtioMmio::kRegQueueDescHigh, 0x10);  // 64 GiB
  driver_.Write(VirtioMmio::kRegQueueReady, 1);
  driver_.SetStatus(kStatusDriverOk);
  EXPECT_TRUE(Status() & kStatusNeedsReset);
  EXPECT_EQ(device_->activations, 0);
}

TEST_F(VirtioMmioTest, ConfigSpaceAnyWidthAndGenerationCountsChanges) {
  driver_.BringUp({&ring0_, &ring1_});
  uint8_t byte = 0x22;
  mmio_->Write({0xd0000101, 0x101, 0}, std::span(&byte, 1));
  uint16_t half = 0;
  mmio_->Read({0xd0000100, 0x100, 0}, std::span(reinterpret_cast<uint8_t*>(&half), 2));
  EXPECT_EQ(half, 0x2211);
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegConfigGeneration), 0u);
  device_->ChangeConfig();  // as a device would, on its own thread
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegConfigGeneration), 1u);
}

TEST_F(VirtioMmioTest, NonWordRegisterAccessIsIgnoredAndCounted) {
  uint8_t byte = 0;
  mmio_->Read({0xd0000000, 0, 0}, std::span(&byte, 1));
  EXPECT_EQ(byte, 0);
  byte = kStatusAcknowledge;
  mmio_->Write({0xd0000070, 0x70, 0}, std::span(&byte, 1));
  EXPECT_EQ(Status(), 0u);
  uint32_t word = 1;
  mmio_->Write({0xd0000072, 0x72, 0}, std::span(reinterpret_cast<uint8_t*>(&word), 4));
  EXPECT_EQ(Status(), 0u);
  EXPECT_EQ(mmio_->guest_errors(), 3u);
}

TEST_F(VirtioMmioTest, RegisterScribblingNeverHurtsTheVmm) {
  // A guest writing random values to random registers, including mid-setup.
  std::mt19937 random(1234);
  driver_.BringUp({&ring0_, &ring1_});
  for (int i = 0; i < 20000; ++i) {
    const uint64_t offset = (random() % (VirtioMmio::kSize / 4)) * 4;
    uint32_t value = static_cast<uint32_t>(random());
    if (random() % 4 == 0) value &= 0xff;  // plausible status values too
    driver_.Write(offset, value);
    (void)driver_.Read(offset);
  }
  mmio_->NotifyQueue(0);
  mmio_->NotifyQueue(1);
  SUCCEED();
}

// Interrupt delivery: one irq event per notification (edge per event), so a
// driver that has not acknowledged yet still hears about later completions.
TEST_F(VirtioMmioTest, EveryCompletionFiresTheIrqEvenBeforeTheDriverAcks) {
  driver_.BringUp({&ring0_, &ring1_}, kFeatureEventIdx);
  irq_->Clear();
  for (uint16_t i = 0; i < 3; ++i) {
    ring0_.SetDesc(i, kData, 16, kDescWrite);
    ring0_.Publish(i);
    driver_.Notify(0);
  }
  EXPECT_EQ(ring0_.UsedIdx(), 3);
  EXPECT_EQ(irq_->raises(), 3) << "completions after the first were lost until an ACK";
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegInterruptStatus), kInterruptUsedBuffer);
  EXPECT_EQ(mmio_->stats().interrupts, 3u);
  driver_.AckAll();
  EXPECT_FALSE(irq_->level());
  EXPECT_EQ(irq_->history().back(), false);
}

TEST_F(VirtioMmioTest, AckReleasesTheLineOnlyWhenNoBitIsLeft) {
  driver_.BringUp({&ring0_, &ring1_});
  ring0_.SetDesc(0, kData, 16, kDescWrite);
  ring0_.Publish(0);
  driver_.Notify(0);
  device_->ChangeConfig();
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegInterruptStatus),
            kInterruptUsedBuffer | kInterruptConfigChange);
  driver_.Write(VirtioMmio::kRegInterruptAck, kInterruptUsedBuffer);
  EXPECT_TRUE(irq_->level());
  EXPECT_EQ(driver_.Read(VirtioMmio::kRegInterruptStatus), kInterruptConfigChange);
  driver_.Write(VirtioMmio::kRegInterruptAck, kInterruptConfigChange);
  EXPECT_FALSE(irq_->level());
}

TEST_F(VirtioMmioTest, EventIdxUsedEventSuppressesInterrupts) {
  driver_.BringUp({&ring0_, &ring1_});  // EVENT_IDX negotiated
  irq_->Clear();
  ring0_.SetUsedEvent(2);  // "interrupt me when used idx passes 2"
  for (uint16_t i = 0; i < 2; ++i) {
    ring0_.SetDesc(i, kData, 16, kDescWrite);
    ring0_.Publish(i);
    driver_.Notify(0);
  }
  EXPECT_EQ(ring0_.UsedIdx(), 2);
  EXPECT_EQ(irq_->raises(), 0);
  EXPECT_EQ(mmio_->stats().interrupts_suppressed, 2u);
  ring0_.SetDesc(2, kData, 16, kDescWrite);
  ring0_.Publish(2);
  driver_.Notify(0);  // used idx 2 -> 3 crosses used_event 2
  EXPECT_EQ(irq_->raises(), 1);
}

TEST_F(VirtioMmioTest, NoInterruptFlagSuppressesWithoutEventIdx) {
  driver_.BringUp({&ring0_, &ring1_}, kFeatureEventIdx);
  irq_->Clear();
  ring0_.SetAvailFlags(kAvailNoInterrupt);
  ring0_.SetDesc(0, kData, 16, kDescWrite);
  ring0_.Publish(0);
  driver_.Notify(0);
  EXPECT_EQ(ring0_.UsedIdx(), 1);
  EXPECT_EQ(irq_->raises(), 0);
  ring0_.SetAvailFlags(0);
  ring0_.SetDesc(1, kData, 16, kDescWrite);
  ring0_.Publish(1);
  driver_.Notify(0);
  EXPECT_EQ(irq_->raises(), 1);
}

TEST_F(VirtioMmioTest, ResetReleasesTheIrqAndCountsInStats) {
  driver_.BringUp({&ring0_, &ring1_});
  ring0_.SetDesc(0, kData, 16, kDescWrite);
  ring0_.Publish(0);
  driver_.Notify(0);
  ASSERT_TRUE(irq_->level());
  const uint64_t resets_before = mmio_->stats().resets;  // BringUp resets first
  driver_.Write(VirtioMmio::kRegStatus, 0);
  EXPECT_FALSE(irq_->level());
  const VirtioMmio::Stats stats = mmio_->stats();
  EXPECT_EQ(stats.resets, resets_before + 1);
  EXPECT_FALSE(stats.needs_reset);
  EXPECT_EQ(stats.notifications, 1u);
}

TEST(VirtioMmio, CommandLineWordAnnouncesTheDevice) {
  EXPECT_EQ(VirtioMmio::CommandLineWord(0xd0000000, 5), "virtio_mmio.device=4K@0xd0000000:5");
  EXPECT_EQ(VirtioMmio::CommandLineWord(0xd0001000, 6, 0x200),
            "virtio_mmio.device=512@0xd0001000:6");
}

}  // namespace
}  // namespace devices::virtio
