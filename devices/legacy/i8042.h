// Intel 8042 keyboard controller, controller only (no keyboard, no mouse, no
// IRQ lines). Registered twice on the PIO bus: the data port 0x60 and the
// status/command port 0x64 (firmware/layout.h), each 1 byte long; Read/Write
// tell them apart by access.address.
//
// What is modelled (IBM PS/2 Technical Reference, "Keyboard/Auxiliary Device
// Controller"; Linux drivers/input/serio/i8042.[ch] as the client to satisfy):
//  - status register: OBF, SYS flag (from command byte bit 2), A2 (last
//    write was a command), INH (bit 4, 1 = keyboard not inhibited), AUX OBF;
//  - 0x20 read command byte, 0x60 write command byte (next data write);
//  - 0xa7/0xa8 disable/enable aux (command byte bit 5), 0xad/0xae
//    disable/enable keyboard (bit 4);
//  - 0xaa self-test -> 0x55, 0xab keyboard interface test -> 0x00,
//    0xa9 aux interface test -> 0x00;
//  - 0xc0 read input port, 0xd0/0xd1 read/write output port (bit 0 clear
//    resets the machine, bit 1 is the A20 gate), 0xd2/0xd3 write keyboard/aux
//    output buffer (the echo that Linux's AUX_LOOP probe uses);
//  - 0xf0-0xfe "pulse output port": a low nibble with bit 0 clear pulses
//    the reset line, so 0xfe (the classic reboot) calls `on_reset`.
// Keyboard and mouse commands (data writes without a pending controller
// command, 0xd4) go to absent devices and are ignored (counted).
//
// There are no interrupts, so Linux's AUX IRQ delivery test fails after its
// 250 ms timeout; boot Linux with `i8042.noaux` (as Firecracker recommends).
// `on_reset` is called on the vCPU thread, without the lock held.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>

#include "devices/bus.h"
#include "devices/legacy/guest_log.h"

namespace devices {

class I8042 : public BusDevice {
 public:
  static constexpr uint64_t kDataPort = 0x60;
  static constexpr uint64_t kCommandPort = 0x64;

  // Status register bits.
  static constexpr uint8_t kStatusObf = 0x01;
  static constexpr uint8_t kStatusIbf = 0x02;
  static constexpr uint8_t kStatusSys = 0x04;
  static constexpr uint8_t kStatusCommand = 0x08;
  static constexpr uint8_t kStatusNotInhibited = 0x10;
  static constexpr uint8_t kStatusAuxObf = 0x20;
  // Command byte bits.
  static constexpr uint8_t kCtrKbdInt = 0x01;
  static constexpr uint8_t kCtrAuxInt = 0x02;
  static constexpr uint8_t kCtrSys = 0x04;
  static constexpr uint8_t kCtrKbdDisable = 0x10;
  static constexpr uint8_t kCtrAuxDisable = 0x20;
  static constexpr uint8_t kCtrTranslate = 0x40;
  // Output port bits.
  static constexpr uint8_t kOutResetDeasserted = 0x01;
  static constexpr uint8_t kOutA20 = 0x02;

  explicit I8042(std::function<void()> on_reset);

  std::string_view name() const override { return "i8042"; }
  void Read(const BusAccess& access, std::span<uint8_t> data) override;
  void Write(const BusAccess& access, std::span<const uint8_t> data) override;

  uint64_t resets() const;
  uint64_t guest_errors() const { return log_.count(); }

 private:
  // Both need mutex_ held. Command/data writes return true to request reset.
  bool CommandLocked(uint8_t command);
  bool DataLocked(uint8_t value);
  void ReplyLocked(uint8_t value, bool aux = false);

  const std::function<void()> on_reset_;
  GuestLog log_{"i8042"};

  mutable std::mutex mutex_;
  uint8_t command_byte_ = kCtrKbdInt | kCtrSys | kCtrTranslate;  // what a BIOS leaves
  uint8_t output_port_ = kOutResetDeasserted | kOutA20;
  uint8_t output_buffer_ = 0;
  bool obf_ = false;
  bool aux_obf_ = false;
  bool last_was_command_ = false;
  uint8_t pending_command_ = 0;  // command awaiting its data byte, or 0
  uint64_t resets_ = 0;
};

}  // namespace devices
