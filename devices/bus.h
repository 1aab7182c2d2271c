// PIO and MMIO buses: address ranges mapped to devices.
//
// A Bus holds sorted, non-overlapping [base, base + length) ranges (as
// Firecracker's vstate/bus.rs and Zircon's trap_map.cc); lookup is a
// std::map upper_bound. Ranges are inserted while the VM is built, on one
// thread, before any vCPU runs; afterwards the bus is read-only and lookups
// need no lock. Devices do their own locking: Read/Write are called on the
// exiting vCPU thread, and a device may also be touched from the event-loop
// thread (console input, timers).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/error.h"

namespace devices {

// Where a guest access landed. `offset` is relative to the device's base.
struct BusAccess {
  uint64_t address;
  uint64_t offset;
  uint32_t vcpu;
};

// A device reached by port I/O or MMIO. Called on the exiting vCPU thread.
// Guest misbehaviour is logged (rate-limited) and counted, never fatal.
class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual std::string_view name() const = 0;
  virtual void Read(const BusAccess& access, std::span<uint8_t> data) = 0;
  virtual void Write(const BusAccess& access, std::span<const uint8_t> data) = 0;
};

// An interrupt line into the guest's interrupt controller. The VMM implements
// it with KVM_IRQ_LINE or an irqfd; tests implement it with a recorder.
// Thread-safe: may be called from any thread.
class IrqLine {
 public:
  virtual ~IrqLine() = default;
  // Level-triggered semantics: asserted while the device has a pending
  // interrupt condition. Edge-only backends raise on a false->true change.
  virtual void SetLevel(bool asserted) = 0;
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  // Fails (kInternal) on zero length, wrap-around past UINT64_MAX, or overlap
  // with an existing range; the message names both devices and ranges.
  [[nodiscard]] base::Result<void> Insert(std::shared_ptr<BusDevice> device, uint64_t base,
                                          uint64_t length);

  struct Entry {
    uint64_t base;
    uint64_t length;
    std::shared_ptr<BusDevice> device;
  };
  // The range containing `address`, or nullptr.
  const Entry* Find(uint64_t address) const;

  // Dispatch an access. Returns false when no device claims the address (the
  // caller decides: reads of unclaimed ports return all-ones, writes are
  // dropped; both are counted).
  bool Read(uint64_t address, std::span<uint8_t> data, uint32_t vcpu = 0) const;
  bool Write(uint64_t address, std::span<const uint8_t> data, uint32_t vcpu = 0) const;

  const std::string& name() const { return name_; }
  size_t size() const { return ranges_.size(); }

 private:
  std::string name_;
  std::map<uint64_t, Entry> ranges_;  // keyed by base
};

}  // namespace devices
