#include "vmm/resource_allocator.h"

#include <algorithm>

#include "devices/virtio/mmio.h"

namespace vmm {

std::string MmioSlot::CommandLineWord() const {
  return devices::virtio::VirtioMmio::CommandLineWord(base, irq, size);
}

uint32_t ResourceAllocator::irq_limit() const { return std::min(limits_.irq_end, kIoapicPins); }

size_t ResourceAllocator::virtio_slots_left() const {
  const uint64_t next_base = limits_.mmio_base + allocated_ * limits_.mmio_stride;
  const uint64_t windows =
      next_base + kSlotSize > limits_.mmio_end || limits_.mmio_stride < kSlotSize
          ? 0
          : (limits_.mmio_end - next_base - kSlotSize) / limits_.mmio_stride + 1;
  const uint64_t next_irq = limits_.first_irq + allocated_;
  const uint64_t irqs = next_irq >= irq_limit() ? 0 : irq_limit() - next_irq;
  return static_cast<size_t>(std::min(windows, irqs));
}

base::Result<MmioSlot> ResourceAllocator::AllocateVirtioSlot() {
  const uint64_t base = limits_.mmio_base + allocated_ * limits_.mmio_stride;
  const uint64_t irq = limits_.first_irq + allocated_;
  if (irq >= irq_limit()) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "no interrupt line left for virtio device {}: lines {}..{} are in use",
                           allocated_, limits_.first_irq, irq_limit() - 1);
  }
  if (limits_.mmio_stride < kSlotSize || base + kSlotSize > limits_.mmio_end) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "no MMIO window left for virtio device {}: {:#x}..{:#x} is in use",
                           allocated_, limits_.mmio_base, limits_.mmio_end);
  }
  ++allocated_;
  return MmioSlot{base, kSlotSize, static_cast<uint32_t>(irq)};
}

}  // namespace vmm
