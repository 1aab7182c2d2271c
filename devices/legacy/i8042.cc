#include "devices/legacy/i8042.h"

#include <algorithm>

namespace devices {
namespace {

// Controller commands written to port 0x64.
constexpr uint8_t kCmdReadCtr = 0x20;
constexpr uint8_t kCmdWriteCtr = 0x60;
constexpr uint8_t kCmdAuxDisable = 0xa7;
constexpr uint8_t kCmdAuxEnable = 0xa8;
constexpr uint8_t kCmdAuxTest = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdKbdTest = 0xab;
constexpr uint8_t kCmdKbdDisable = 0xad;
constexpr uint8_t kCmdKbdEnable = 0xae;
constexpr uint8_t kCmdReadInput = 0xc0;
constexpr uint8_t kCmdReadOutput = 0xd0;
constexpr uint8_t kCmdWriteOutput = 0xd1;
constexpr uint8_t kCmdWriteKbdBuffer = 0xd2;
constexpr uint8_t kCmdWriteAuxBuffer = 0xd3;
constexpr uint8_t kCmdWriteAux = 0xd4;
constexpr uint8_t kSelfTestPassed = 0x55;

}  // namespace

I8042::I8042(std::function<void()> on_reset) : on_reset_(std::move(on_reset)) {}

void I8042::Read(const BusAccess& access, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mutex_);
  uint8_t value = 0;
  if (access.address == kCommandPort) {
    value = kStatusNotInhibited;
    if (obf_) value |= kStatusObf;
    if (obf_ && aux_obf_) value |= kStatusAuxObf;
    if (command_byte_ & kCtrSys) value |= kStatusSys;
    if (last_was_command_) value |= kStatusCommand;
  } else {
    value = output_buffer_;  // an empty buffer reads its last value
    obf_ = false;
    aux_obf_ = false;
  }
  std::fill(data.begin(), data.end(), value);
}

void I8042::Write(const BusAccess& access, std::span<const uint8_t> data) {
  if (data.empty()) return;
  bool reset = false;
  {
    std::lock_guard lock(mutex_);
    if (access.address == kCommandPort) {
      reset = CommandLocked(data[0]);
    } else {
      reset = DataLocked(data[0]);
    }
    if (reset) ++resets_;
  }
  if (reset && on_reset_) on_reset_();
}

bool I8042::CommandLocked(uint8_t command) {
  last_was_command_ = true;
  pending_command_ = 0;
  switch (command) {
    case kCmdReadCtr:
      ReplyLocked(command_byte_);
      return false;
    case kCmdWriteCtr:
    case kCmdWriteOutput:
    case kCmdWriteKbdBuffer:
    case kCmdWriteAuxBuffer:
    case kCmdWriteAux:
      pending_command_ = command;
      return false;
    case kCmdAuxDisable:
      command_byte_ |= kCtrAuxDisable;
      return false;
    case kCmdAuxEnable:
      command_byte_ &= static_cast<uint8_t>(~kCtrAuxDisable);
      return false;
    case kCmdAuxTest:
    case kCmdKbdTest:
      ReplyLocked(0x00);  // interface OK
      return false;
    case kCmdSelfTest:
      command_byte_ |= kCtrSys;  // a passed self-test sets the system flag
      ReplyLocked(kSelfTestPassed);
      return false;
    case kCmdKbdDisable:
      command_byte_ |= kCtrKbdDisable;
      return false;
    case kCmdKbdEnable:
      command_byte_ &= static_cast<uint8_t>(~kCtrKbdDisable);
      return false;
    case kCmdReadInput:
      ReplyLocked(0x00);
      return false;
    case kCmdReadOutput:
      ReplyLocked(output_port_);
      return false;
    default:
      break;
  }
  if (command >= 0xf0) {
    // Pulse output port bits whose mask bit is 0; bit 0 is the CPU reset line.
    return (command & 0x01) == 0;
  }
  log_.Warn("unsupported controller command {:#04x} ignored", command);
  return false;
}

bool I8042::DataLocked(uint8_t value) {
  last_was_command_ = false;
  const uint8_t command = pending_command_;
  pending_command_ = 0;
  switch (command) {
    case kCmdWriteCtr:
      command_byte_ = value;
      return false;
    case kCmdWriteOutput:
      output_port_ = value;
      // The CPU reset line is active low; software asserting it reboots.
      return (value & kOutResetDeasserted) == 0;
    case kCmdWriteKbdBuffer:
      ReplyLocked(value);
      return false;
    case kCmdWriteAuxBuffer:
      ReplyLocked(value, /*aux=*/true);
      return false;
    case kCmdWriteAux:
      log_.Warn("byte {:#04x} for the absent aux device ignored", value);
      return false;
    default:
      log_.Warn("byte {:#04x} for the absent keyboard ignored", value);
      return false;
  }
}

void I8042::ReplyLocked(uint8_t value, bool aux) {
  output_buffer_ = value;
  obf_ = true;
  aux_obf_ = aux;
}

uint64_t I8042::resets() const {
  std::lock_guard lock(mutex_);
  return resets_;
}

}  // namespace devices
