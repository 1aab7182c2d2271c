// 16550A UART (COM1 at 0x3f8, IRQ 4; firmware/layout.h).
//
// Register set per the TI/National PC16550D datasheet, §8 "Registers":
//
//   offset  DLAB=0 read  DLAB=0 write  DLAB=1
//   0       RBR          THR           DLL
//   1       IER          IER           DLM
//   2       IIR          FCR
//   3       LCR          LCR
//   4       MCR          MCR
//   5       LSR          (ignored)
//   6       MSR          (ignored)
//   7       SCR          SCR
//
// Model decisions (docs/devices.md, "16550A UART"):
//  - Infinite-speed line: a byte written to THR is handed to `output` at once,
//    so THR and the transmitter are always empty (LSR THRE and TEMT stay set).
//    The THR-empty interrupt is cleared by the THR write and set again right
//    after it (real hardware sets it again once the byte leaves the shift
//    register), so the level stays asserted while THRI is enabled until the
//    guest reads IIR or clears IER bit 1; no pulse is generated.
//  - Input has flow control: QueueInput() appends to an unbounded host-side
//    queue that refills the receive FIFO (16 bytes, or the 1-byte RBR with
//    FIFOs off) whenever the guest reads. Nothing is dropped, so a 64 KiB
//    paste arrives whole and in order. Host input is held back in loopback
//    mode (the serial input pin is disconnected there, §8.6.4).
//  - Overrun (LSR OE) only happens in loopback mode, where THR writes go to a
//    full receive FIFO: the new byte is lost and OE raises a line-status
//    interrupt.
//  - Receive interrupts: with FIFOs on, "received data available" (IIR 0x4)
//    while the FIFO holds at least the FCR trigger level and "character
//    timeout" (IIR 0xc) while it holds fewer; the timeout is taken to have
//    already expired (time passes, the line is idle). Both clear when the FIFO
//    is read empty (or below the trigger level for 0x4).
//  - MCR OUT2 does not gate the IRQ line. On a PC, OUT2 enables the ISA
//    interrupt buffer and Linux sets it, but QEMU, kvmtool and Firecracker
//    ignore it, and a guest that forgets it should still get interrupts.
//  - Modem lines: a connected terminal (CTS, DSR, DCD asserted; RI not). In
//    loopback mode MCR DTR/RTS/OUT1/OUT2 drive DSR/CTS/RI/DCD, with the delta
//    bits and the modem-status interrupt (Linux's probe checks MSR = 0x90
//    after writing MCR = LOOP|OUT2|RTS).
//
// Threads: Read/Write run on the vCPU thread, QueueInput on the event-loop
// thread. One mutex guards the register state. `output` and the IRQ line are
// called without holding it; IRQ updates are serialised by a second leaf
// mutex that is only ever taken after the state mutex was released, and that
// always applies the newest level (so concurrent updates cannot reorder).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/guest_log.h"
#include "devices/bus.h"

namespace devices {

class Serial : public BusDevice {
 public:
  // Register offsets (PC16550D datasheet, Table II).
  static constexpr uint64_t kRbrThr = 0;  // DLAB=1: DLL
  static constexpr uint64_t kIer = 1;     // DLAB=1: DLM
  static constexpr uint64_t kIirFcr = 2;
  static constexpr uint64_t kLcr = 3;
  static constexpr uint64_t kMcr = 4;
  static constexpr uint64_t kLsr = 5;
  static constexpr uint64_t kMsr = 6;
  static constexpr uint64_t kScr = 7;
  static constexpr uint64_t kRegisterCount = 8;  // bus length to register

  static constexpr size_t kFifoSize = 16;

  // IER bits.
  static constexpr uint8_t kIerRda = 0x01;   // ERBFI: received data available
  static constexpr uint8_t kIerThre = 0x02;  // ETBEI: THR empty
  static constexpr uint8_t kIerRls = 0x04;   // ELSI: receiver line status
  static constexpr uint8_t kIerMsi = 0x08;   // EDSSI: modem status
  // IIR values (bits 3:0) and FIFO bits, in priority order.
  static constexpr uint8_t kIirNone = 0x01;
  static constexpr uint8_t kIirRls = 0x06;
  static constexpr uint8_t kIirRda = 0x04;
  static constexpr uint8_t kIirTimeout = 0x0c;
  static constexpr uint8_t kIirThre = 0x02;
  static constexpr uint8_t kIirMsi = 0x00;
  static constexpr uint8_t kIirFifoEnabled = 0xc0;
  // FCR bits.
  static constexpr uint8_t kFcrEnable = 0x01;
  static constexpr uint8_t kFcrClearRx = 0x02;
  static constexpr uint8_t kFcrClearTx = 0x04;
  // LCR / MCR bits.
  static constexpr uint8_t kLcrDlab = 0x80;
  static constexpr uint8_t kMcrDtr = 0x01;
  static constexpr uint8_t kMcrRts = 0x02;
  static constexpr uint8_t kMcrOut1 = 0x04;
  static constexpr uint8_t kMcrOut2 = 0x08;
  static constexpr uint8_t kMcrLoop = 0x10;
  // LSR bits.
  static constexpr uint8_t kLsrDr = 0x01;
  static constexpr uint8_t kLsrOe = 0x02;
  static constexpr uint8_t kLsrThre = 0x20;
  static constexpr uint8_t kLsrTemt = 0x40;
  // MSR bits.
  static constexpr uint8_t kMsrDcts = 0x01;
  static constexpr uint8_t kMsrDdsr = 0x02;
  static constexpr uint8_t kMsrTeri = 0x04;
  static constexpr uint8_t kMsrDdcd = 0x08;
  static constexpr uint8_t kMsrCts = 0x10;
  static constexpr uint8_t kMsrDsr = 0x20;
  static constexpr uint8_t kMsrRi = 0x40;
  static constexpr uint8_t kMsrDcd = 0x80;

  struct Counters {
    uint64_t bytes_out = 0;     // bytes handed to `output`
    uint64_t bytes_in = 0;      // host bytes moved into the receive FIFO
    uint64_t overruns = 0;      // bytes lost to a full FIFO (loopback only)
    uint64_t guest_errors = 0;  // odd accesses (writes to LSR/MSR, bad widths)
  };

  // `irq` may be null (no interrupts). `output` is called on the vCPU thread
  // with each transmitted byte run; it must not call back into this device.
  Serial(std::shared_ptr<IrqLine> irq, std::function<void(std::span<const uint8_t>)> output,
         std::string name = "com1");

  std::string_view name() const override { return name_; }
  // Accesses wider than one byte are split into consecutive byte accesses
  // (an 8-bit ISA device on a 16/32-bit `in`/`out`).
  void Read(const BusAccess& access, std::span<uint8_t> data) override;
  void Write(const BusAccess& access, std::span<const uint8_t> data) override;

  // Host -> guest bytes (event-loop thread, or any thread). Never drops.
  void QueueInput(std::span<const uint8_t> bytes);
  // Bytes queued or in the receive FIFO that the guest has not read yet.
  size_t PendingInput() const;

  Counters counters() const;

 private:
  // All Locked* helpers need mutex_ held.
  uint8_t ReadLocked(uint64_t offset);
  // Returns true when `value` was transmitted to the host (THR, no loopback).
  bool WriteLocked(uint64_t offset, uint8_t value);
  void RefillLocked();
  uint8_t IirLocked() const;         // highest-priority pending source, or kIirNone
  uint8_t ModemLinesLocked() const;  // MSR bits 7:4
  void UpdateModemStatusLocked(uint8_t old_lines);
  size_t FifoCapacityLocked() const { return (fcr_ & kFcrEnable) ? kFifoSize : 1; }
  size_t TriggerLevelLocked() const;
  // Publishes the current IRQ level; call ApplyIrq() after unlocking.
  void PublishIrqLocked();
  void ApplyIrq();

  const std::string name_;
  const std::shared_ptr<IrqLine> irq_;
  const std::function<void(std::span<const uint8_t>)> output_;
  base::GuestLog log_;

  mutable std::mutex mutex_;  // guards everything below up to irq_mutex_
  uint8_t ier_ = 0;
  uint8_t fcr_ = 0;  // last written FCR (bits 0, 7:6 matter)
  uint8_t lcr_ = 0;
  uint8_t mcr_ = 0;
  uint8_t lsr_errors_ = 0;  // LSR OE (sticky until LSR is read)
  uint8_t msr_deltas_ = 0;  // MSR bits 3:0 (sticky until MSR is read)
  uint8_t scr_ = 0;
  uint8_t dll_ = 0x0c;  // 9600 baud from a 1.8432 MHz clock
  uint8_t dlm_ = 0;
  bool thre_pending_ = false;  // THR-empty interrupt latched
  std::deque<uint8_t> rx_fifo_;
  std::deque<uint8_t> host_queue_;
  Counters counters_;

  // Leaf lock: taken only without mutex_ held; calls irq_->SetLevel.
  std::mutex irq_mutex_;
  std::atomic<bool> wanted_level_{false};
  bool applied_level_ = false;  // guarded by irq_mutex_
};

}  // namespace devices
