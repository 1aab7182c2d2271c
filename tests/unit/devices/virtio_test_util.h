// Test-side virtio driver pieces: rings laid out in a GuestMemory, and an
// MMIO register driver that brings a transport up the way Linux does.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include "base/guest_memory.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/queue.h"

namespace devices::virtio::testing {

inline constexpr uint64_t kTestRam = 16 * base::MiB;

inline std::unique_ptr<base::GuestMemory> MakeMemory() {
  auto memory = base::GuestMemory::Create(kTestRam);
  EXPECT_TRUE(memory.has_value());
  return std::move(*memory);
}

// A split ring in guest memory at `base`: descriptors, then the available
// ring at +0x1000, the used ring at +0x2000 (room for 256 entries).
class TestRing {
 public:
  TestRing(const base::GuestMemory& memory, uint16_t size, uint64_t base)
      : memory_(memory), size_(size), desc_(base), avail_(base + 0x1000), used_(base + 0x2000) {
    EXPECT_TRUE(memory_.Fill(base, 0, 0x3000));
  }

  uint16_t size() const { return size_; }
  uint64_t desc() const { return desc_; }
  uint64_t avail() const { return avail_; }
  uint64_t used() const { return used_; }

  void SetDesc(uint16_t index, uint64_t addr, uint32_t len, uint16_t flags = 0, uint16_t next = 0) {
    SetDescAt(desc_, index, addr, len, flags, next);
  }
  // Writes a descriptor into any table (e.g. an indirect one).
  void SetDescAt(uint64_t table, uint32_t index, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next) {
    EXPECT_TRUE(memory_.WriteObj(table + 16ull * index, Descriptor{addr, len, flags, next}));
  }
  // Makes `head` available.
  void Publish(uint16_t head) {
    const uint16_t idx = AvailIdx();
    EXPECT_TRUE(memory_.WriteObj<uint16_t>(avail_ + 4 + 2ull * (idx % size_), head));
    SetAvailIdx(static_cast<uint16_t>(idx + 1));
  }
  uint16_t AvailIdx() const { return *memory_.ReadObj<uint16_t>(avail_ + 2); }
  void SetAvailIdx(uint16_t idx) { EXPECT_TRUE(memory_.WriteObj<uint16_t>(avail_ + 2, idx)); }
  void SetAvailFlags(uint16_t flags) { EXPECT_TRUE(memory_.WriteObj<uint16_t>(avail_, flags)); }
  void SetUsedEvent(uint16_t value) {
    EXPECT_TRUE(memory_.WriteObj<uint16_t>(avail_ + 4 + 2ull * size_, value));
  }
  uint16_t UsedIdx() const { return *memory_.ReadObj<uint16_t>(used_ + 2); }
  UsedElement Used(uint16_t slot) const {
    return *memory_.ReadObj<UsedElement>(used_ + 4 + 8ull * (slot % size_));
  }
  uint16_t AvailEvent() const { return *memory_.ReadObj<uint16_t>(used_ + 4 + 8ull * size_); }

  // A queue configured for this ring and activated.
  std::unique_ptr<Queue> MakeQueue(bool event_idx = false, bool indirect = true) const {
    auto queue = std::make_unique<Queue>(size_);
    queue->set_size(size_);
    queue->set_desc_table(desc_);
    queue->set_avail_ring(avail_);
    queue->set_used_ring(used_);
    queue->set_ready(true);
    EXPECT_TRUE(queue->Activate(memory_, event_idx, indirect));
    return queue;
  }

 private:
  const base::GuestMemory& memory_;
  uint16_t size_;
  uint64_t desc_;
  uint64_t avail_;
  uint64_t used_;
};

// Drives a VirtioMmio through its registers, as a guest driver would.
class MmioDriver {
 public:
  explicit MmioDriver(VirtioMmio& mmio) : mmio_(mmio) {}

  uint32_t Read(uint64_t offset) {
    uint32_t value = 0;
    mmio_.Read({0xd0000000 + offset, offset, 0}, std::span(reinterpret_cast<uint8_t*>(&value), 4));
    return value;
  }
  void Write(uint64_t offset, uint32_t value) {
    mmio_.Write({0xd0000000 + offset, offset, 0},
                std::span(reinterpret_cast<const uint8_t*>(&value), 4));
  }
  void SetStatus(uint32_t bits) {
    Write(VirtioMmio::kRegStatus, Read(VirtioMmio::kRegStatus) | bits);
  }
  uint64_t DeviceFeatures() {
    Write(VirtioMmio::kRegDeviceFeaturesSel, 0);
    uint64_t features = Read(VirtioMmio::kRegDeviceFeatures);
    Write(VirtioMmio::kRegDeviceFeaturesSel, 1);
    return features | static_cast<uint64_t>(Read(VirtioMmio::kRegDeviceFeatures)) << 32;
  }
  void WriteDriverFeatures(uint64_t features) {
    Write(VirtioMmio::kRegDriverFeaturesSel, 0);
    Write(VirtioMmio::kRegDriverFeatures, static_cast<uint32_t>(features));
    Write(VirtioMmio::kRegDriverFeaturesSel, 1);
    Write(VirtioMmio::kRegDriverFeatures, static_cast<uint32_t>(features >> 32));
  }
  // Reset, ACKNOWLEDGE, DRIVER, features; returns whether FEATURES_OK stuck.
  bool Negotiate(uint64_t features) {
    Write(VirtioMmio::kRegStatus, 0);
    SetStatus(kStatusAcknowledge);
    SetStatus(kStatusDriver);
    WriteDriverFeatures(features);
    SetStatus(kStatusFeaturesOk);
    return (Read(VirtioMmio::kRegStatus) & kStatusFeaturesOk) != 0;
  }
  void SetUpQueue(uint32_t index, const TestRing& ring) {
    Write(VirtioMmio::kRegQueueSel, index);
    Write(VirtioMmio::kRegQueueNum, ring.size());
    Write(VirtioMmio::kRegQueueDescLow, static_cast<uint32_t>(ring.desc()));
    Write(VirtioMmio::kRegQueueDescHigh, static_cast<uint32_t>(ring.desc() >> 32));
    Write(VirtioMmio::kRegQueueDriverLow, static_cast<uint32_t>(ring.avail()));
    Write(VirtioMmio::kRegQueueDriverHigh, static_cast<uint32_t>(ring.avail() >> 32));
    Write(VirtioMmio::kRegQueueDeviceLow, static_cast<uint32_t>(ring.used()));
    Write(VirtioMmio::kRegQueueDeviceHigh, static_cast<uint32_t>(ring.used() >> 32));
    Write(VirtioMmio::kRegQueueReady, 1);
  }
  // Negotiates everything offered and sets up `rings` (queue i = rings[i]).
  void BringUp(const std::vector<const TestRing*>& rings, uint64_t drop_features = 0) {
    ASSERT_TRUE(Negotiate(DeviceFeatures() & ~drop_features));
    for (size_t i = 0; i < rings.size(); ++i) SetUpQueue(static_cast<uint32_t>(i), *rings[i]);
    SetStatus(kStatusDriverOk);
    ASSERT_EQ(Read(VirtioMmio::kRegStatus) & kStatusNeedsReset, 0u);
  }
  void Notify(uint32_t queue) { Write(VirtioMmio::kRegQueueNotify, queue); }
  void AckAll() { Write(VirtioMmio::kRegInterruptAck, Read(VirtioMmio::kRegInterruptStatus)); }

 private:
  VirtioMmio& mmio_;
};

}  // namespace devices::virtio::testing
