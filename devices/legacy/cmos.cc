#include "devices/legacy/cmos.h"

#include <algorithm>

namespace devices {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t k1MiB = 1024 * kKiB;
constexpr uint64_t k16MiB = 16 * k1MiB;
constexpr uint64_t k64KiB = 64 * kKiB;

constexpr uint8_t kRegADefault = 0x26;  // 32.768 kHz time base, 1024 Hz rate
constexpr uint8_t kRegAUip = 0x80;
constexpr uint8_t kRegDVrt = 0x80;
constexpr uint8_t kRegBDefault = Cmos::kRegB24Hour;

bool IsTimeRegister(uint8_t index) {
  switch (index) {
    case Cmos::kSeconds:
    case Cmos::kMinutes:
    case Cmos::kHours:
    case Cmos::kWeekday:
    case Cmos::kDayOfMonth:
    case Cmos::kMonth:
    case Cmos::kYear:
    case Cmos::kCentury:
      return true;
    default:
      return false;
  }
}

}  // namespace

Cmos::Cmos(uint64_t ram_below_4g, uint64_t ram_above_4g, std::function<std::time_t()> clock)
    : clock_(std::move(clock)) {
  auto put16 = [this](uint8_t index, uint64_t value) {
    ram_[index] = static_cast<uint8_t>(value);
    ram_[index + 1] = static_cast<uint8_t>(value >> 8);
  };
  // Base memory: 640 KiB (the PC/AT conventional memory).
  put16(0x15, 640);
  // Extended memory above 1 MiB in KiB, capped at 0xffff (about 64 MiB).
  const uint64_t extended_kib =
      ram_below_4g > k1MiB ? std::min<uint64_t>((ram_below_4g - k1MiB) / kKiB, 0xffff) : 0;
  put16(0x17, extended_kib);
  put16(0x30, extended_kib);
  // Memory above 16 MiB (below 4 GiB) in 64 KiB units, capped at 0xffff.
  const uint64_t above_16m =
      ram_below_4g > k16MiB ? std::min<uint64_t>((ram_below_4g - k16MiB) / k64KiB, 0xffff) : 0;
  put16(0x34, above_16m);
  // Memory above 4 GiB in 64 KiB units, 24 bits (QEMU pc.c, read by SeaBIOS).
  const uint64_t above_4g = std::min<uint64_t>(ram_above_4g / k64KiB, 0xffffff);
  ram_[0x5b] = static_cast<uint8_t>(above_4g);
  ram_[0x5c] = static_cast<uint8_t>(above_4g >> 8);
  ram_[0x5d] = static_cast<uint8_t>(above_4g >> 16);
  ram_[kRegA] = kRegADefault;
  ram_[kRegB] = kRegBDefault;
  ram_[kRegD] = kRegDVrt;
}

void Cmos::Read(const BusAccess& access, std::span<uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t offset = access.offset + i;
    if (offset == 1) {
      data[i] = ReadRegisterLocked(index_);
    } else {
      data[i] = 0xff;  // the index register is write-only
    }
  }
}

void Cmos::Write(const BusAccess& access, std::span<const uint8_t> data) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < data.size(); ++i) {
    const uint64_t offset = access.offset + i;
    if (offset == 0) {
      index_ = data[i] & 0x7f;  // bit 7 is the NMI mask on PCs; ignored
    } else if (offset == 1) {
      WriteRegisterLocked(index_, data[i]);
    }
  }
}

std::time_t Cmos::offset() const {
  std::lock_guard lock(mutex_);
  return offset_;
}

uint8_t Cmos::ReadRegisterLocked(uint8_t index) {
  if (IsTimeRegister(index)) {
    const std::tm tm = (ram_[kRegB] & kRegBSet) ? frozen_ : NowLocked();
    return TimeFieldLocked(tm, index);
  }
  switch (index) {
    case kRegA:
      // MC146818 "Register A": UIP reads 0, so the time can always be read
      // (an update never appears to be in progress).
      return ram_[kRegA] & static_cast<uint8_t>(~kRegAUip);
    case kRegC:
      return 0;  // no interrupt flags: no RTC interrupts are modelled
    case kRegD:
      return kRegDVrt;
    default:
      return ram_[index];
  }
}

void Cmos::WriteRegisterLocked(uint8_t index, uint8_t value) {
  if (IsTimeRegister(index)) {
    if (index == kWeekday) return;  // derived from the date
    if (ram_[kRegB] & kRegBSet) {
      SetTimeFieldLocked(&frozen_, index, value);
    } else {
      std::tm tm = NowLocked();
      SetTimeFieldLocked(&tm, index, value);
      CommitLocked(tm);
    }
    return;
  }
  switch (index) {
    case kRegA:
      ram_[kRegA] = value & static_cast<uint8_t>(~kRegAUip);
      return;
    case kRegB: {
      const bool was_set = (ram_[kRegB] & kRegBSet) != 0;
      const bool set = (value & kRegBSet) != 0;
      if (!was_set && set) frozen_ = NowLocked();
      ram_[kRegB] = value;
      if (was_set && !set) CommitLocked(frozen_);
      return;
    }
    case kRegC:
    case kRegD:
      return;  // read-only
    default:
      ram_[index] = value;
  }
}

std::tm Cmos::NowLocked() const {
  const std::time_t now = clock_() + offset_;
  std::tm tm{};
  gmtime_r(&now, &tm);
  return tm;
}

uint8_t Cmos::EncodeLocked(int value) const {
  if (ram_[kRegB] & kRegBBinary) return static_cast<uint8_t>(value);
  return static_cast<uint8_t>(((value / 10) % 10) << 4 | (value % 10));
}

int Cmos::DecodeLocked(uint8_t value) const {
  if (ram_[kRegB] & kRegBBinary) return value;
  return (value >> 4) * 10 + (value & 0x0f);
}

uint8_t Cmos::EncodeHourLocked(int hour) const {
  if (ram_[kRegB] & kRegB24Hour) return EncodeLocked(hour);
  // 12-hour mode: 12, 1..11 with bit 7 set for PM.
  int hour12 = hour % 12;
  if (hour12 == 0) hour12 = 12;
  return static_cast<uint8_t>(EncodeLocked(hour12) | (hour >= 12 ? 0x80 : 0));
}

int Cmos::DecodeHourLocked(uint8_t value) const {
  if (ram_[kRegB] & kRegB24Hour) return DecodeLocked(value);
  const int hour12 = DecodeLocked(value & 0x7f) % 12;
  return (value & 0x80) ? hour12 + 12 : hour12;
}

uint8_t Cmos::TimeFieldLocked(const std::tm& tm, uint8_t index) const {
  const int year = tm.tm_year + 1900;
  switch (index) {
    case kSeconds:
      return EncodeLocked(tm.tm_sec);
    case kMinutes:
      return EncodeLocked(tm.tm_min);
    case kHours:
      return EncodeHourLocked(tm.tm_hour);
    case kWeekday:
      return EncodeLocked(tm.tm_wday + 1);  // 1 = Sunday
    case kDayOfMonth:
      return EncodeLocked(tm.tm_mday);
    case kMonth:
      return EncodeLocked(tm.tm_mon + 1);
    case kYear:
      return EncodeLocked(year % 100);
    case kCentury:
      return EncodeLocked(year / 100);
  }
  return 0;
}

void Cmos::SetTimeFieldLocked(std::tm* tm, uint8_t index, uint8_t value) const {
  const int year = tm->tm_year + 1900;
  switch (index) {
    case kSeconds:
      tm->tm_sec = DecodeLocked(value);
      break;
    case kMinutes:
      tm->tm_min = DecodeLocked(value);
      break;
    case kHours:
      tm->tm_hour = DecodeHourLocked(value);
      break;
    case kDayOfMonth:
      tm->tm_mday = DecodeLocked(value);
      break;
    case kMonth:
      tm->tm_mon = DecodeLocked(value) - 1;
      break;
    case kYear:
      tm->tm_year = (year / 100) * 100 + DecodeLocked(value) - 1900;
      break;
    case kCentury:
      tm->tm_year = DecodeLocked(value) * 100 + year % 100 - 1900;
      break;
  }
}

void Cmos::CommitLocked(std::tm tm) {
  // timegm normalises out-of-range fields (a guest may write garbage); the
  // clock then reads the normalised time.
  const std::time_t wanted = timegm(&tm);
  if (wanted == static_cast<std::time_t>(-1)) return;
  offset_ = wanted - clock_();
}

}  // namespace devices
