// CMOS RAM and MC146818 real-time clock at ports 0x70 (index) and 0x71
// (data); register one device with length 2 (firmware/layout.h kCmosPort).
//
// Registers (Motorola MC146818A datasheet, "Address map"; the PC/AT CMOS map
// as QEMU's hw/rtc/mc146818rtc.c and pc.c fill it for SeaBIOS):
//   0x00-0x09  seconds, alarm s, minutes, alarm m, hours, alarm h, weekday
//              (1 = Sunday), day of month, month, year (two digits)
//   0x0a  A: UIP (bit 7, always reads 0 so guests never spin), divider
//         (6:4) and rate (3:0) select, stored; default 0x26 (32.768 kHz, 1 kHz)
//   0x0b  B: SET (7), PIE/AIE/UIE (6:4), SQWE (3), DM (2: 1 = binary,
//         0 = BCD), 24/12 (1: 1 = 24-hour), DSE (0); default 0x02
//   0x0c  C: interrupt flags, always 0 (no RTC interrupts are modelled)
//   0x0d  D: VRT (bit 7) set: the battery is fine
//   0x15/0x16  base memory in KiB (640)
//   0x17/0x18 and 0x30/0x31  extended memory above 1 MiB in KiB, capped at
//              0xffff (as QEMU)
//   0x32  century (BCD or binary, like the other time registers)
//   0x34/0x35  memory between 16 MiB and 4 GiB in 64 KiB units, capped 0xffff
//   0x5b-0x5d  memory above 4 GiB in 64 KiB units (24 bits)
// All other bytes are plain RAM (reads 0 until written).
//
// Time comes from `clock` (UTC, seconds since the epoch) plus an offset:
// guest writes to the time registers move the offset, so the guest may set
// its clock without touching the host's. While B.SET is 1 the time reads
// frozen and writes collect in a buffer committed when SET is cleared (how
// Linux's mc146818_set_time sets the clock); with SET 0 each write commits
// at once. The index register's bit 7 (NMI disable) is ignored.
//
// Thread-safe (one mutex; no callbacks). Called on vCPU threads.
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>

#include "devices/bus.h"

namespace devices {

class Cmos : public BusDevice {
 public:
  static constexpr uint64_t kLength = 2;  // bus length to register

  static constexpr uint8_t kSeconds = 0x00;
  static constexpr uint8_t kMinutes = 0x02;
  static constexpr uint8_t kHours = 0x04;
  static constexpr uint8_t kWeekday = 0x06;
  static constexpr uint8_t kDayOfMonth = 0x07;
  static constexpr uint8_t kMonth = 0x08;
  static constexpr uint8_t kYear = 0x09;
  static constexpr uint8_t kRegA = 0x0a;
  static constexpr uint8_t kRegB = 0x0b;
  static constexpr uint8_t kRegC = 0x0c;
  static constexpr uint8_t kRegD = 0x0d;
  static constexpr uint8_t kCentury = 0x32;

  static constexpr uint8_t kRegBSet = 0x80;
  static constexpr uint8_t kRegBBinary = 0x04;  // DM
  static constexpr uint8_t kRegB24Hour = 0x02;

  // ram_below_4g: guest RAM bytes below 4 GiB (including the first MiB);
  // ram_above_4g: bytes from 4 GiB up.
  Cmos(
      uint64_t ram_below_4g, uint64_t ram_above_4g,
      std::function<std::time_t()> clock = [] { return std::time(nullptr); });

  std::string_view name() const override { return "cmos"; }
  void Read(const BusAccess& access, std::span<uint8_t> data) override;
  void Write(const BusAccess& access, std::span<const uint8_t> data) override;

  // Seconds added to `clock` by guest writes to the time registers.
  std::time_t offset() const;

 private:
  uint8_t ReadRegisterLocked(uint8_t index);
  void WriteRegisterLocked(uint8_t index, uint8_t value);
  std::tm NowLocked() const;              // clock + offset, broken down (UTC)
  uint8_t EncodeLocked(int value) const;  // binary or BCD per DM
  int DecodeLocked(uint8_t value) const;
  uint8_t EncodeHourLocked(int hour) const;  // 12/24h per B bit 1
  int DecodeHourLocked(uint8_t value) const;
  uint8_t TimeFieldLocked(const std::tm& tm, uint8_t index) const;
  void SetTimeFieldLocked(std::tm* tm, uint8_t index, uint8_t value) const;
  void CommitLocked(std::tm tm);  // sets offset_ so the clock reads tm

  const std::function<std::time_t()> clock_;
  mutable std::mutex mutex_;
  uint8_t index_ = 0;
  std::array<uint8_t, 128> ram_{};
  std::time_t offset_ = 0;
  std::tm frozen_{};  // the time being set while B.SET is 1
};

}  // namespace devices
