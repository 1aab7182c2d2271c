#include "devices/legacy/boot_phase.h"

#include <algorithm>

namespace devices {

BootPhasePort::BootPhasePort(std::function<void(uint8_t)> on_phase)
    : on_phase_(std::move(on_phase)) {}

void BootPhasePort::Read(const BusAccess&, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), last_.load(std::memory_order_relaxed));
}

void BootPhasePort::Write(const BusAccess&, std::span<const uint8_t> data) {
  for (uint8_t code : data) {
    last_.store(code, std::memory_order_relaxed);
    writes_.fetch_add(1, std::memory_order_relaxed);
    if (on_phase_) on_phase_(code);
  }
}

}  // namespace devices
