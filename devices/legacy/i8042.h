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
// A minimal PS/2 keyboard sits on the first port: it answers the commands a
// driver's probe sends (0xff reset -> FA AA, 0xf2 identify -> FA AB 83, 0xee
// echo, 0xed/0xf0/0xf3 with their parameter byte, others -> FA) and takes
// injected scancodes (InjectScancodes: the control API's SendCtrlAltDel;
// InjectKey: the VNC client's keys, vmm/vnc.h).
// Keyboard bytes wait in a queue behind the one-byte output buffer; each byte
// that enters the buffer pulses IRQ 1 (when the command byte enables it), so
// an edge-triggered IOAPIC pin sees one edge per byte. Mouse commands (0xd4)
// go to an absent device and are ignored (counted).
//
// The aux port has no interrupt, so Linux's AUX IRQ delivery test fails after
// its 250 ms timeout; boot Linux with `i8042.noaux` (as Firecracker recommends).
// `on_reset` and the IRQ line are called without the lock held (on the vCPU
// thread, or on the caller's thread for InjectScancodes).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>

#include "base/guest_log.h"
#include "devices/bus.h"

namespace devices {

// One key of a PS/2 keyboard: its make code in scancode set 1 and in set 2,
// and whether it is an extended key (sent behind 0xe0 in both sets). The
// break code is set 1's make | 0x80, or 0xf0 then set 2's make.
struct Ps2Key {
  uint8_t set1;
  uint8_t set2;
  bool extended = false;
};

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

  // `kbd_irq` (IRQ 1) may be null: keyboard bytes are then only polled.
  explicit I8042(std::function<void()> on_reset, std::shared_ptr<IrqLine> kbd_irq = nullptr);

  // Ctrl-Alt-Del, make and break codes, in scancode set 1 (what the guest
  // reads with translation on, the BIOS default) and set 2 (translation off).
  static constexpr uint8_t kCtrlAltDelSet1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
  static constexpr uint8_t kCtrlAltDelSet2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
                                                0x71, 0xf0, 0x11, 0xf0, 0x14};

  // Queues keyboard bytes for the guest. Any thread.
  void InjectScancodes(std::span<const uint8_t> bytes);
  // Ctrl-Alt-Del in the scancode set the guest currently reads.
  void InjectCtrlAltDel();
  // One key pressed (`down`) or released, in the scancode set the guest
  // currently reads (set 1 with the command byte's translation on, else 2).
  void InjectKey(const Ps2Key& key, bool down);
  size_t PendingKeyboardBytes() const;

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
  void KeyboardCommandLocked(uint8_t value);
  // Moves the next queued keyboard byte into an empty output buffer; returns
  // true when IRQ 1 must be pulsed for it.
  bool RefillLocked();
  void PulseIrq();

  const std::function<void()> on_reset_;
  base::GuestLog log_{"i8042"};

  mutable std::mutex mutex_;
  uint8_t command_byte_ = kCtrKbdInt | kCtrSys | kCtrTranslate;  // what a BIOS leaves
  uint8_t output_port_ = kOutResetDeasserted | kOutA20;
  uint8_t output_buffer_ = 0;
  bool obf_ = false;
  bool aux_obf_ = false;
  bool last_was_command_ = false;
  uint8_t pending_command_ = 0;  // command awaiting its data byte, or 0
  uint64_t resets_ = 0;
  std::shared_ptr<IrqLine> kbd_irq_;
  std::deque<uint8_t> kbd_queue_;
  uint8_t kbd_pending_param_ = 0;  // keyboard command awaiting its parameter, or 0
};

}  // namespace devices
