#include "devices/legacy/serial.h"

#include <array>

namespace devices {

Serial::Serial(std::shared_ptr<IrqLine> irq, std::function<void(std::span<const uint8_t>)> output,
               std::string name)
    : name_(std::move(name)), irq_(std::move(irq)), output_(std::move(output)), log_(name_) {}

void Serial::Read(const BusAccess& access, std::span<uint8_t> data) {
  {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) {
      const uint64_t offset = access.offset + i;
      data[i] = offset < kRegisterCount ? ReadLocked(offset) : 0xff;
    }
    PublishIrqLocked();
  }
  ApplyIrq();
}

void Serial::Write(const BusAccess& access, std::span<const uint8_t> data) {
  // An `out` is at most 4 bytes; anything longer is a bus misuse, cut short.
  std::array<uint8_t, 8> sent{};
  size_t sent_count = 0;
  {
    std::lock_guard lock(mutex_);
    const size_t count = std::min(data.size(), sent.size());
    for (size_t i = 0; i < count; ++i) {
      const uint64_t offset = access.offset + i;
      if (offset >= kRegisterCount) continue;
      if (WriteLocked(offset, data[i])) sent[sent_count++] = data[i];
    }
    counters_.bytes_out += sent_count;
    PublishIrqLocked();
  }
  ApplyIrq();
  if (sent_count != 0 && output_) output_(std::span<const uint8_t>(sent.data(), sent_count));
}

uint8_t Serial::ReadLocked(uint64_t offset) {
  const bool dlab = (lcr_ & kLcrDlab) != 0;
  switch (offset) {
    case kRbrThr: {
      if (dlab) return dll_;
      if (rx_fifo_.empty()) return 0;
      const uint8_t byte = rx_fifo_.front();
      rx_fifo_.pop_front();
      RefillLocked();
      return byte;
    }
    case kIer:
      return dlab ? dlm_ : ier_;
    case kIirFcr: {
      const uint8_t iir = IirLocked();
      // PC16550D §8.4: reading IIR clears the THRE interrupt if it is the
      // source being reported.
      if (iir == kIirThre) thre_pending_ = false;
      return static_cast<uint8_t>(iir | ((fcr_ & kFcrEnable) ? kIirFifoEnabled : 0));
    }
    case kLcr:
      return lcr_;
    case kMcr:
      return mcr_;
    case kLsr: {
      uint8_t lsr = kLsrThre | kLsrTemt | lsr_errors_;
      if (!rx_fifo_.empty()) lsr |= kLsrDr;
      lsr_errors_ = 0;  // §8.5: OE/PE/FE/BI are reset by reading LSR
      return lsr;
    }
    case kMsr: {
      const uint8_t msr = static_cast<uint8_t>(ModemLinesLocked() | msr_deltas_);
      msr_deltas_ = 0;  // §8.7: delta bits reset by reading MSR
      return msr;
    }
    case kScr:
      return scr_;
  }
  return 0xff;
}

bool Serial::WriteLocked(uint64_t offset, uint8_t value) {
  const bool dlab = (lcr_ & kLcrDlab) != 0;
  switch (offset) {
    case kRbrThr:
      if (dlab) {
        dll_ = value;
        return false;
      }
      // §8.4: writing THR clears the THRE interrupt; the byte leaves at once
      // (infinite-speed line), so THR is empty again and THRE is re-armed.
      thre_pending_ = false;
      if (mcr_ & kMcrLoop) {
        // §8.6.4: in loopback the transmitter feeds the receiver directly.
        if (rx_fifo_.size() >= FifoCapacityLocked()) {
          lsr_errors_ |= kLsrOe;  // §8.5 bit 1: the new character is lost
          ++counters_.overruns;
        } else {
          rx_fifo_.push_back(value);
        }
      }
      thre_pending_ = (ier_ & kIerThre) != 0;
      return (mcr_ & kMcrLoop) == 0;
    case kIer: {
      if (dlab) {
        dlm_ = value;
        return false;
      }
      const uint8_t old = ier_;
      ier_ = value & 0x0f;  // bits 7:4 are always zero on a 16550
      // Enabling ETBEI while THR is empty raises THRE at once; Linux's 8250
      // probe relies on it (serial8250_do_startup's THRE test).
      if ((ier_ & kIerThre) && !(old & kIerThre)) thre_pending_ = true;
      if (!(ier_ & kIerThre)) thre_pending_ = false;
      return false;
    }
    case kIirFcr: {
      const uint8_t old = fcr_;
      // §8.3: other FCR bits only take effect while FCR0 is written as 1.
      fcr_ = (value & kFcrEnable) ? static_cast<uint8_t>(value & 0xc9) : 0;
      // Changing FCR0 clears both FIFOs; bit 1 clears the receive FIFO.
      if (((old ^ fcr_) & kFcrEnable) || (value & kFcrClearRx)) rx_fifo_.clear();
      // The transmit FIFO is always empty here; bit 2 has nothing to clear.
      RefillLocked();
      return false;
    }
    case kLcr:
      lcr_ = value;
      return false;
    case kMcr: {
      const uint8_t old_lines = ModemLinesLocked();
      const bool was_loop = (mcr_ & kMcrLoop) != 0;
      mcr_ = value & 0x1f;  // bits 7:5 are always zero on a 16550
      UpdateModemStatusLocked(old_lines);
      if (was_loop && !(mcr_ & kMcrLoop)) RefillLocked();
      return false;
    }
    case kLsr:
    case kMsr:
      // Factory-test registers on real parts; ignored here.
      log_.Warn("write {:#04x} to read-only register at offset {}", value, offset);
      return false;
    case kScr:
      scr_ = value;
      return false;
  }
  return false;
}

void Serial::RefillLocked() {
  if (mcr_ & kMcrLoop) return;  // the serial input is disconnected in loopback
  const size_t capacity = FifoCapacityLocked();
  while (rx_fifo_.size() < capacity && !host_queue_.empty()) {
    rx_fifo_.push_back(host_queue_.front());
    host_queue_.pop_front();
    ++counters_.bytes_in;
  }
}

size_t Serial::TriggerLevelLocked() const {
  static constexpr std::array<size_t, 4> kLevels = {1, 4, 8, 14};  // FCR bits 7:6
  return kLevels[fcr_ >> 6];
}

uint8_t Serial::IirLocked() const {
  // PC16550D Table IV: interrupt priority, highest first.
  if ((ier_ & kIerRls) && lsr_errors_) return kIirRls;
  if ((ier_ & kIerRda) && !rx_fifo_.empty()) {
    if (!(fcr_ & kFcrEnable)) return kIirRda;
    return rx_fifo_.size() >= TriggerLevelLocked() ? kIirRda : kIirTimeout;
  }
  if ((ier_ & kIerThre) && thre_pending_) return kIirThre;
  if ((ier_ & kIerMsi) && msr_deltas_) return kIirMsi;
  return kIirNone;
}

uint8_t Serial::ModemLinesLocked() const {
  if (!(mcr_ & kMcrLoop)) return kMsrCts | kMsrDsr | kMsrDcd;  // a terminal is attached
  // §8.6.4: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
  uint8_t lines = 0;
  if (mcr_ & kMcrDtr) lines |= kMsrDsr;
  if (mcr_ & kMcrRts) lines |= kMsrCts;
  if (mcr_ & kMcrOut1) lines |= kMsrRi;
  if (mcr_ & kMcrOut2) lines |= kMsrDcd;
  return lines;
}

void Serial::UpdateModemStatusLocked(uint8_t old_lines) {
  const uint8_t lines = ModemLinesLocked();
  const uint8_t changed = old_lines ^ lines;
  if (changed & kMsrCts) msr_deltas_ |= kMsrDcts;
  if (changed & kMsrDsr) msr_deltas_ |= kMsrDdsr;
  if (changed & kMsrDcd) msr_deltas_ |= kMsrDdcd;
  // TERI: trailing edge of RI (RI went from on to off).
  if ((old_lines & kMsrRi) && !(lines & kMsrRi)) msr_deltas_ |= kMsrTeri;
}

void Serial::PublishIrqLocked() {
  wanted_level_.store(IirLocked() != kIirNone, std::memory_order_release);
}

void Serial::ApplyIrq() {
  if (!irq_) return;
  std::lock_guard lock(irq_mutex_);
  // Whoever applies last reads the newest published level, so concurrent
  // updates from the vCPU and event-loop threads settle on the right value.
  const bool level = wanted_level_.load(std::memory_order_acquire);
  if (level == applied_level_) return;
  applied_level_ = level;
  irq_->SetLevel(level);
}

void Serial::QueueInput(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  {
    std::lock_guard lock(mutex_);
    host_queue_.insert(host_queue_.end(), bytes.begin(), bytes.end());
    RefillLocked();
    PublishIrqLocked();
  }
  ApplyIrq();
}

size_t Serial::PendingInput() const {
  std::lock_guard lock(mutex_);
  return host_queue_.size() + rx_fifo_.size();
}

Serial::Counters Serial::counters() const {
  std::lock_guard lock(mutex_);
  Counters counters = counters_;
  counters.guest_errors = log_.count();
  return counters;
}

}  // namespace devices
