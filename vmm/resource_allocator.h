// Hands out the guest resources a virtio-mmio device needs: a 4 KiB MMIO
// window (kVirtioMmioBase + n * kVirtioMmioStride, base/layout.h), an
// interrupt line (from kVirtioMmioFirstIrq up), and the
// `virtio_mmio.device=4K@0x...:IRQ` word that tells Linux where they are
// (docs/virtio.md). Errors when either runs out. Owned by the DeviceManager
// (vmm/device_manager.h); used on the main thread while the VM is built.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/error.h"
#include "base/layout.h"

namespace vmm {

// One device's resources.
struct MmioSlot {
  uint64_t base = 0;
  uint64_t size = 0;
  uint32_t irq = 0;
  // "virtio_mmio.device=4K@0xd0000000:5"
  std::string CommandLineWord() const;
};

class ResourceAllocator {
 public:
  // The IOAPIC's input pins: no interrupt line may be at or above this.
  static constexpr uint32_t kIoapicPins = 24;
  // Linux's virtio-mmio command-line form needs IRQs routed by the MP
  // table's ISA entries (pins 0-15): devices use IRQ 5..12, so 8 devices.
  static constexpr size_t kDefaultVirtioDevices = 8;

  // The register window of one virtio-mmio device (the command line's "4K").
  static constexpr uint64_t kSlotSize = 0x1000;

  struct Limits {
    uint64_t mmio_base = base::kVirtioMmioBase;
    uint64_t mmio_stride = base::kVirtioMmioStride;
    uint64_t mmio_end = base::kVirtioMmioBase + kDefaultVirtioDevices * base::kVirtioMmioStride;
    uint32_t first_irq = base::kVirtioMmioFirstIrq;
    uint32_t irq_end = base::kVirtioMmioFirstIrq + kDefaultVirtioDevices;  // exclusive
  };

  ResourceAllocator() : ResourceAllocator(Limits{}) {}
  explicit ResourceAllocator(const Limits& limits) : limits_(limits) {}

  // The next slot; kConfig errors when the MMIO window or the IRQ lines
  // (bounded by irq_end and by the IOAPIC's 24 pins) are used up.
  [[nodiscard]] base::Result<MmioSlot> AllocateVirtioSlot();

  // How many more AllocateVirtioSlot() calls would succeed.
  size_t virtio_slots_left() const;
  size_t allocated() const { return allocated_; }

 private:
  uint32_t irq_limit() const;

  Limits limits_;
  size_t allocated_ = 0;
};

}  // namespace vmm
