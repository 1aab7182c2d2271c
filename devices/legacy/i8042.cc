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

// Keyboard commands (IBM PS/2 Technical Reference, "Keyboard and Auxiliary
// Device Controller", keyboard command set).
constexpr uint8_t kKbdAck = 0xfa;
constexpr uint8_t kKbdSetLeds = 0xed;
constexpr uint8_t kKbdEcho = 0xee;
constexpr uint8_t kKbdScancodeSet = 0xf0;
constexpr uint8_t kKbdIdentify = 0xf2;
constexpr uint8_t kKbdTypematic = 0xf3;
constexpr uint8_t kKbdReset = 0xff;
constexpr uint8_t kKbdSelfTestPassed = 0xaa;
// Bounded so that a flood of injected keys cannot grow host memory.
constexpr size_t kMaxKeyboardQueue = 4096;

I8042::I8042(std::function<void()> on_reset, std::shared_ptr<IrqLine> kbd_irq)
    : on_reset_(std::move(on_reset)), kbd_irq_(std::move(kbd_irq)) {}

void I8042::InjectScancodes(std::span<const uint8_t> bytes) {
  bool pulse = false;
  {
    std::lock_guard lock(mutex_);
    for (uint8_t byte : bytes) {
      if (kbd_queue_.size() >= kMaxKeyboardQueue) break;
      kbd_queue_.push_back(byte);
    }
    pulse = RefillLocked();
  }
  if (pulse) PulseIrq();
}

void I8042::InjectCtrlAltDel() {
  bool translate;
  {
    std::lock_guard lock(mutex_);
    translate = (command_byte_ & kCtrTranslate) != 0;
  }
  if (translate) {
    InjectScancodes(kCtrlAltDelSet1);
  } else {
    InjectScancodes(kCtrlAltDelSet2);
  }
}

void I8042::InjectKey(const Ps2Key& key, bool down) {
  bool translate;
  {
    std::lock_guard lock(mutex_);
    translate = (command_byte_ & kCtrTranslate) != 0;
  }
  uint8_t bytes[3];
  size_t n = 0;
  if (key.extended) bytes[n++] = 0xe0;
  if (translate) {
    bytes[n++] = down ? key.set1 : static_cast<uint8_t>(key.set1 | 0x80);
  } else {
    if (!down) bytes[n++] = 0xf0;
    bytes[n++] = key.set2;
  }
  InjectScancodes(std::span<const uint8_t>(bytes, n));
}

size_t I8042::PendingKeyboardBytes() const {
  std::lock_guard lock(mutex_);
  return kbd_queue_.size();
}

bool I8042::RefillLocked() {
  if (obf_ || kbd_queue_.empty() || (command_byte_ & kCtrKbdDisable)) return false;
  output_buffer_ = kbd_queue_.front();
  kbd_queue_.pop_front();
  obf_ = true;
  aux_obf_ = false;
  return (command_byte_ & kCtrKbdInt) != 0;
}

void I8042::PulseIrq() {
  if (!kbd_irq_) return;
  kbd_irq_->SetLevel(false);
  kbd_irq_->SetLevel(true);
}

void I8042::KeyboardCommandLocked(uint8_t value) {
  if (kbd_pending_param_ != 0) {  // the parameter of 0xed/0xf0/0xf3
    kbd_pending_param_ = 0;
    kbd_queue_.push_back(kKbdAck);
    return;
  }
  kbd_queue_.clear();  // a command flushes the keyboard's buffer
  switch (value) {
    case kKbdReset:
      kbd_queue_.push_back(kKbdAck);
      kbd_queue_.push_back(kKbdSelfTestPassed);
      break;
    case kKbdIdentify:  // MF2 keyboard
      kbd_queue_.push_back(kKbdAck);
      kbd_queue_.push_back(0xab);
      kbd_queue_.push_back(0x83);
      break;
    case kKbdEcho:
      kbd_queue_.push_back(kKbdEcho);
      break;
    case kKbdSetLeds:
    case kKbdScancodeSet:
    case kKbdTypematic:
      kbd_pending_param_ = value;
      kbd_queue_.push_back(kKbdAck);
      break;
    default:  // enable, disable, set defaults, ...
      kbd_queue_.push_back(kKbdAck);
      break;
  }
}

void I8042::Read(const BusAccess& access, std::span<uint8_t> data) {
  if (data.empty()) return;
  bool pulse = false;
  std::unique_lock lock(mutex_);
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
    pulse = RefillLocked();
  }
  lock.unlock();
  std::fill(data.begin(), data.end(), value);
  if (pulse) PulseIrq();
}

void I8042::Write(const BusAccess& access, std::span<const uint8_t> data) {
  if (data.empty()) return;
  bool reset = false;
  bool pulse = false;
  {
    std::lock_guard lock(mutex_);
    if (access.address == kCommandPort) {
      reset = CommandLocked(data[0]);
    } else {
      reset = DataLocked(data[0]);
    }
    if (reset) ++resets_;
    pulse = RefillLocked();
  }
  if (pulse) PulseIrq();
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
      KeyboardCommandLocked(value);
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
