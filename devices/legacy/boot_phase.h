// The boot-phase port (0x80, the PC POST-code port; firmware/layout.h
// kBootPhasePort). The bundled kernel writes phase codes here (0x40 kernel
// entry, 0x41 user space ready); the integrator timestamps them in
// `on_phase` for --boot-trace.
//
// Note: Linux also uses port 0x80 as its I/O delay (`outb %al, $0x80`, the
// default io_delay), so `on_phase` may see many writes of arbitrary values
// from a Linux guest: keep it cheap and filter the codes you care about.
//
// `on_phase` is called on the writing vCPU thread for every byte written
// (a wider write reports each byte in order). Reads return the last byte
// written (0 before any write), as POST-code latches do.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "devices/bus.h"

namespace devices {

class BootPhasePort : public BusDevice {
 public:
  static constexpr uint64_t kLength = 1;  // bus length to register

  explicit BootPhasePort(std::function<void(uint8_t)> on_phase);

  std::string_view name() const override { return "boot-phase"; }
  void Read(const BusAccess& access, std::span<uint8_t> data) override;
  void Write(const BusAccess& access, std::span<const uint8_t> data) override;

  uint64_t writes() const { return writes_.load(std::memory_order_relaxed); }

 private:
  const std::function<void(uint8_t)> on_phase_;
  std::atomic<uint8_t> last_{0};
  std::atomic<uint64_t> writes_{0};
};

}  // namespace devices
