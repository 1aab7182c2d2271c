// The exit port (0xf4, 4 bytes; firmware/layout.h kExitPort): isa-debug-exit's
// place, so kvm-unit-tests style guests find it. A write of value v asks the
// VMM to end with status v (docs/architecture.md, "Exit status").
//
// Stateless: `on_exit` is called on the writing vCPU thread with the written
// value (1, 2 or 4 bytes, little-endian, wherever in the 4-byte window the
// write lands). The callback decides what to do (the integrator stops the VM);
// it may be called again if another vCPU writes before the VM is stopped.
// Reads return 0. Other write widths are counted and ignored.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "base/guest_log.h"
#include "devices/bus.h"

namespace devices {

class DebugExit : public BusDevice {
 public:
  static constexpr uint64_t kLength = 4;  // bus length to register

  explicit DebugExit(std::function<void(uint32_t)> on_exit);

  std::string_view name() const override { return "debug-exit"; }
  void Read(const BusAccess& access, std::span<uint8_t> data) override;
  void Write(const BusAccess& access, std::span<const uint8_t> data) override;

  uint64_t guest_errors() const { return log_.count(); }

 private:
  const std::function<void(uint32_t)> on_exit_;
  base::GuestLog log_{"debug-exit"};
};

}  // namespace devices
