#include "vmm/resource_allocator.h"

#include <gtest/gtest.h>

namespace vmm {
namespace {

TEST(ResourceAllocator, HandsOutSlotsInOrder) {
  ResourceAllocator allocator;
  EXPECT_EQ(allocator.virtio_slots_left(), 8u);
  auto first = allocator.AllocateVirtioSlot();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->base, base::kVirtioMmioBase);
  EXPECT_EQ(first->irq, base::kVirtioMmioFirstIrq);
  EXPECT_EQ(first->CommandLineWord(), "virtio_mmio.device=4K@0xd0000000:5");
  auto second = allocator.AllocateVirtioSlot();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->base, base::kVirtioMmioBase + base::kVirtioMmioStride);
  EXPECT_EQ(second->irq, base::kVirtioMmioFirstIrq + 1);
  EXPECT_EQ(second->CommandLineWord(), "virtio_mmio.device=4K@0xd0001000:6");
  EXPECT_EQ(allocator.allocated(), 2u);
  EXPECT_EQ(allocator.virtio_slots_left(), 6u);
}

TEST(ResourceAllocator, DefaultRunsOutAfterEightDevices) {
  ResourceAllocator allocator;
  for (int n = 0; n < 8; ++n) {
    auto slot = allocator.AllocateVirtioSlot();
    ASSERT_TRUE(slot) << n;
    EXPECT_EQ(slot->irq, 5u + n);
  }
  EXPECT_EQ(allocator.virtio_slots_left(), 0u);
  auto ninth = allocator.AllocateVirtioSlot();
  ASSERT_FALSE(ninth);
  EXPECT_EQ(ninth.error().kind(), base::ErrorKind::kConfig);
}

TEST(ResourceAllocator, IrqLinesStopAtTheIoapicsPins) {
  ResourceAllocator::Limits limits;
  limits.mmio_end = limits.mmio_base + 100 * limits.mmio_stride;
  limits.first_irq = 20;
  limits.irq_end = 40;  // beyond the IOAPIC: capped at 24
  ResourceAllocator allocator(limits);
  EXPECT_EQ(allocator.virtio_slots_left(), 4u);
  for (uint32_t irq = 20; irq < 24; ++irq) {
    auto slot = allocator.AllocateVirtioSlot();
    ASSERT_TRUE(slot);
    EXPECT_EQ(slot->irq, irq);
  }
  auto next = allocator.AllocateVirtioSlot();
  ASSERT_FALSE(next);
  EXPECT_NE(next.error().message().find("interrupt line"), std::string::npos)
      << next.error().message();
}

TEST(ResourceAllocator, MmioWindowRunsOut) {
  ResourceAllocator::Limits limits;
  limits.mmio_end = limits.mmio_base + 2 * limits.mmio_stride;
  ResourceAllocator allocator(limits);
  EXPECT_EQ(allocator.virtio_slots_left(), 2u);
  ASSERT_TRUE(allocator.AllocateVirtioSlot());
  ASSERT_TRUE(allocator.AllocateVirtioSlot());
  auto next = allocator.AllocateVirtioSlot();
  ASSERT_FALSE(next);
  EXPECT_NE(next.error().message().find("MMIO window"), std::string::npos)
      << next.error().message();
}

}  // namespace
}  // namespace vmm
