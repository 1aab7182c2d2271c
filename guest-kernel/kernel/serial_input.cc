#include "kernel/serial_input.h"

#include "arch/x86_64/apic.h"
#include "arch/x86_64/cpu.h"
#include "kernel/console.h"
#include "kernel/ipc.h"

namespace kernel {
namespace {

// 16550A (PC16550D datasheet): RBR 0, IER 1, IIR 2, MCR 4, LSR 5.
constexpr uint16_t kCom1 = 0x3f8;
constexpr uint8_t kIrq = 4;
constexpr uint8_t kIerRxAvailable = 0x01;
constexpr uint8_t kMcrNormal = 0x0b;    // DTR, RTS, OUT2
constexpr uint8_t kMcrLoopback = 0x1b;  // + LOOP

// Lossless: when the ring is full the RX interrupt is switched off, the
// UART's FIFO fills and the host waits; SerialRead switches it on again.
constinit char g_ring[8192];
constinit bool g_rx_paused = false;
constinit Notification* g_notify = nullptr;
constinit uint32_t g_head = 0, g_tail = 0;
constinit uint64_t g_irqs = 0;
constinit bool g_echo = true;

// Moves what the UART holds into the ring (echoing it while no program has
// bound the input).
void Collect();

}  // namespace

void SerialInputCollectEarly() { Collect(); }

void SerialInputInit() {
  arch::IoApicRoute(kIrq);
  // Keep what was typed before the kernel got here (e.g. commands piped into
  // vmm's stdin): it goes into the ring like later input, for the shell.
  Collect();
  if (!g_rx_paused) arch::Outb(kCom1 + 1, kIerRxAvailable);
}

void SerialIrq() {
  ++g_irqs;
  Collect();
  if (g_notify != nullptr && g_head != g_tail) Signal(g_notify, 1);
}

namespace {

void Collect() {
  // Drain until the UART has nothing more (its FIFO refills from the host
  // as it is read): the IOAPIC pin is edge-triggered, so a line left high
  // would never interrupt again. A full ring switches the interrupt off
  // instead (the line drops; SerialRead raises it again).
  while ((arch::Inb(kCom1 + 5) & 1) != 0) {
    if (g_head - g_tail >= sizeof(g_ring)) {
      g_rx_paused = true;
      arch::Outb(kCom1 + 1, 0);
      break;
    }
    const char c = static_cast<char>(arch::Inb(kCom1));
    g_ring[g_head++ % sizeof(g_ring)] = c;
    if (g_echo) {
      if (c == '\r') {
        ConsoleWrite("\r\n", 2);
      } else {
        ConsoleWrite(&c, 1);
      }
      ConsoleFlush();
    }
  }
}

}  // namespace

size_t SerialRead(char* buf, size_t cap) {
  size_t n = 0;
  while (n < cap && g_tail != g_head) buf[n++] = g_ring[g_tail++ % sizeof(g_ring)];
  if (g_rx_paused && g_head - g_tail < sizeof(g_ring) / 2) {
    g_rx_paused = false;
    arch::Outb(kCom1 + 1, kIerRxAvailable);
  }
  return n;
}

void SerialBindNotification(Notification* n) {
  g_notify = n;
  g_echo = false;
  if (g_notify != nullptr && g_head != g_tail) Signal(g_notify, 1);  // typed before the bind
}

uint64_t SerialIrqCount() { return g_irqs; }

void SerialLoopback(bool on) {
  g_echo = !on;
  arch::Outb(kCom1 + 4, on ? kMcrLoopback : kMcrNormal);
}

bool SerialDataReady() { return (arch::Inb(kCom1 + 5) & 1) != 0; }

}  // namespace kernel
